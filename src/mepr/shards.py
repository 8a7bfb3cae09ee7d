"""The files stages exchange: versioned Parquet schemas, atomic writes, stable shard membership.

Every stage output is a Parquet file whose schema is declared here.  The file metadata
carries the schema name and version plus the parameters that produced it (encoder name,
sampling settings, ...), so a reader can refuse a file it does not understand and a human
can see where a file came from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mepr import __version__
from mepr.files import atomic_path


@dataclass(frozen=True)
class ShardSchema:
    name: str
    version: int
    arrow: pa.Schema


_F32 = pa.float32()
_BOX = pa.list_(_F32)  # x0, y0, x1, y1 in [0, 1] of the full frame
# one more crop of a frame (detect.faces: all): the JPEG, its box and the detector's score
_CROP = pa.struct([("jpeg", pa.binary()), ("box", _BOX), ("score", _F32)])

MANIFEST = ShardSchema(
    "manifest",
    2,
    pa.schema(
        [
            ("video_id", pa.string()),
            ("corpus", pa.string()),
            ("path", pa.string()),
            ("split", pa.string()),
            ("task", pa.string()),
            ("size_bytes", pa.int64()),
            ("shard", pa.int32()),
            # 7 emotion intensities (MOSEI-like rows) or null
            ("emotion", pa.list_(_F32)),
            # 5 trait scores in [0, 1] (FIv2-like rows) or null
            ("traits", pa.list_(_F32)),
            ("transcript", pa.string()),
            # seconds: the row is [start, end) of the video at `path` (a segment of a longer
            # video, e.g. a CMU-MOSEI utterance in its full video); null: the whole video
            ("start", pa.float64()),
            ("end", pa.float64()),
        ]
    ),
)

# One row per sampled frame. Version 2: a frame may yield several faces (detect.faces: all)
# and bodies (detect.body_box: person_at_face pairs one with each face inside a person box):
# the first of each sits in face_* / body_*, the others in more_faces / more_bodies, in
# order. The embedding stage reads a video's face (body) sequence as each frame's crops in
# turn, so it may be longer than the frames, as the reference concatenates them; training
# subsamples any sequence longer than train.max_steps uniformly. *_stand_in names what stands
# in for a missing detection (person_at_face: "person" box, whole "frame"); null: detected.
FRAMES = ShardSchema(
    "frames",
    2,
    pa.schema(
        [
            ("video_id", pa.string()),
            ("step", pa.int32()),  # 0..n_frames-1, the order models see
            ("frame_index", pa.int32()),  # index in the decoded stream
            ("timestamp", _F32),  # seconds
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("scene_jpeg", pa.binary()),
            ("face_jpeg", pa.binary()),  # null when no face was found
            ("face_box", _BOX),
            ("face_score", _F32),
            ("body_jpeg", pa.binary()),  # null when no person was found
            ("body_box", _BOX),
            ("body_score", _F32),
            ("face_stand_in", pa.string()),
            ("body_stand_in", pa.string()),
            ("more_faces", pa.list_(_CROP)),
            ("more_bodies", pa.list_(_CROP)),
        ]
    ),
)

AUDIO = ShardSchema(
    "audio",
    1,
    pa.schema(
        [
            ("video_id", pa.string()),
            ("sample_rate", pa.int32()),
            ("n_samples", pa.int64()),
            ("has_audio", pa.bool_()),
            ("pcm_s16le", pa.binary()),  # mono, little-endian int16
        ]
    ),
)

WORD = pa.struct([("word", pa.string()), ("start", _F32), ("end", _F32)])

TRANSCRIPTS = ShardSchema(
    "transcripts",
    1,
    pa.schema(
        [
            ("video_id", pa.string()),
            ("text", pa.string()),
            ("source", pa.string()),  # "corpus" or the ASR backend name
            ("words", pa.list_(WORD)),
        ]
    ),
)

EMBEDDINGS = ShardSchema(
    "embeddings",
    1,
    pa.schema(
        [
            ("video_id", pa.string()),
            ("n_steps", pa.int32()),
            ("dim", pa.int32()),
            # n_steps x dim, one row per frame / audio window / token
            ("values", pa.list_(pa.list_(_F32))),
            # False where the step holds no signal (no face in that frame, padding, ...)
            ("step_mask", pa.list_(pa.bool_())),
        ]
    ),
)

FAILURES = ShardSchema(
    "failures",
    1,
    pa.schema(
        [
            ("video_id", pa.string()),
            ("stage", pa.string()),
            ("reason", pa.string()),
        ]
    ),
)

SCHEMAS = {s.name: s for s in (MANIFEST, FRAMES, AUDIO, TRANSCRIPTS, EMBEDDINGS, FAILURES)}


class ShardError(ValueError):
    """A shard file is missing, of another schema, or of an unsupported version."""


def shard_of(video_id: str, n_shards: int) -> int:
    """Stable shard index: depends only on the id, so adding a video touches one shard."""
    digest = hashlib.sha1(video_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


def _metadata(schema: ShardSchema, params: Mapping[str, Any] | None) -> dict[bytes, bytes]:
    return {
        b"mepr.schema": schema.name.encode(),
        b"mepr.schema_version": str(schema.version).encode(),
        b"mepr.version": __version__.encode(),
        b"mepr.params": json.dumps(params or {}, sort_keys=True).encode(),
    }


def write_table(
    rows: list[dict[str, Any]] | pa.Table,
    schema: ShardSchema,
    path: str | os.PathLike,
    params: Mapping[str, Any] | None = None,
) -> Path:
    """Write rows with the declared schema; temp file + rename so readers never see half a file."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema.arrow)
    table = table.cast(schema.arrow).replace_schema_metadata(_metadata(schema, params))
    out = Path(path)
    with atomic_path(out) as tmp:  # shareable permissions, never half a file
        pq.write_table(table, tmp, compression="zstd")
    return out


def read_table(path: str | os.PathLike, schema: ShardSchema) -> pa.Table:
    """Read a shard and check it is the schema (and version) this code understands."""
    p = Path(path)
    if not p.exists():
        raise ShardError(f"{p}: no such shard")
    meta = pq.read_schema(p).metadata or {}
    name = meta.get(b"mepr.schema", b"").decode()
    version = int(meta.get(b"mepr.schema_version", b"0"))
    if name != schema.name:
        raise ShardError(f"{p}: expected a '{schema.name}' shard, found '{name or 'unknown'}'")
    if version != schema.version:
        raise ShardError(
            f"{p}: '{name}' schema version {version}, this mepr reads version {schema.version}; "
            "re-run the stage that wrote it"
        )
    return pq.read_table(p)


def read_params(path: str | os.PathLike) -> dict[str, Any]:
    """The producing parameters stored in a shard's metadata."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"mepr.params", b"{}"))


def read_many(paths: list[str | os.PathLike], schema: ShardSchema) -> pa.Table:
    tables = [read_table(p, schema) for p in paths]
    if not tables:
        return schema.arrow.empty_table()
    return pa.concat_tables([t.replace_schema_metadata(None) for t in tables])


@functools.lru_cache(maxsize=64)
def _fingerprints(path: str, mtime_ns: int, n_shards: int) -> dict[int, str]:
    del mtime_ns  # part of the cache key only: a rewritten manifest is read again
    table = read_table(path, MANIFEST).select(["video_id", "path", "size_bytes", "shard"])
    rows = sorted(table.to_pylist(), key=lambda r: r["video_id"])
    digests = {k: hashlib.sha1() for k in range(n_shards)}
    for r in rows:
        digests[r["shard"]].update(f"{r['video_id']}\t{r['path']}\t{r['size_bytes']}\n".encode())
    return {k: d.hexdigest() for k, d in digests.items()}


def shard_fingerprint(manifest: str | os.PathLike, shard: int, n_shards: int) -> str:
    """What a shard's media extraction depends on: its videos' ids, paths and sizes.

    Extraction rules take this as a Snakemake param (and the manifest as `ancient`), so a
    new or changed video re-runs its own shard only, while a relabelled corpus re-runs
    nothing upstream of training.
    """
    p = Path(manifest)
    return _fingerprints(str(p), p.stat().st_mtime_ns, n_shards)[shard]


@dataclass
class ShardResult:
    """What a stage computed for one shard: its rows, the videos it could not process (with
    the reason) and extra metadata for the shard file (e.g. the encoder's identity)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def fail(self, video_id: str, stage: str, reason: str) -> None:
        self.failures.append({"video_id": video_id, "stage": stage, "reason": reason})


def write_stage_result(result, schema: ShardSchema, out, failures, params: Mapping[str, Any]):
    """A stage's rows as its shard and its problems as the shard's failures table (both with
    the stage's parameters in their metadata); says on stderr how many problems there were."""
    write_table(result.rows, schema, out, params=params)
    write_table(result.failures, FAILURES, failures, params=params)
    if result.failures:
        print(f"{len(result.failures)} problem(s) recorded in {failures}", file=sys.stderr)
