"""Embedding shards: one (steps x dim) sequence per video and modality.

Every function batches across the videos of the shard (images in (video, step) order, audio
clips and texts sorted by length), and records the encoder's identity (model, weights, layer,
pooling, library versions: `encoder.identity()`) in `ShardResult.meta`; `shard_metadata` is
what `mepr embed` (what the workflow runs) stores in the shard next to the config section.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from mepr import shards
from mepr.config import EncoderParams
from mepr.labels import IMAGE_MODALITIES
from mepr.shards import ShardResult

# wav2vec2's conv stack needs ~25 ms of signal: shorter tracks are stored as one masked step
MIN_AUDIO_S = 0.1
# the frames shard's column of each frame's further crops (detect.faces: all)
MORE_CROPS = {"face": "more_faces", "body": "more_bodies"}


def embedding_row(video_id: str, values: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float32)
    return {
        "video_id": video_id,
        "n_steps": int(values.shape[0]),
        "dim": int(values.shape[1]),
        "values": list(values),  # rows as numpy arrays: Arrow converts them without Python floats
        "step_mask": [bool(m) for m in mask],
    }


def _read_columns(
    source: str | Path | pa.Table, schema: shards.ShardSchema, columns: list[str]
) -> pa.Table:
    """shards.read_table's checks, reading only `columns` (crops of other modalities stay on disk).

    A table already in memory (`mepr predict`'s batch, built with the shard's schema) is used
    as it is: the same rows as the shard file it would have been written to."""
    if isinstance(source, pa.Table):
        return source.select(columns)
    p = Path(source)
    meta = (pq.read_schema(p).metadata or {}) if p.exists() else {}
    if (
        meta.get(b"mepr.schema") != schema.name.encode()
        or meta.get(b"mepr.schema_version") != str(schema.version).encode()
    ):
        return shards.read_table(p, schema).select(columns)  # raises the usual ShardError
    return pq.read_table(p, columns=columns)


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


# ---------------------------------------------------------------------------------------------
# images


def _prefetched(chunks: list, work) -> Iterator:
    """work(chunk) for each chunk, the next one computed in a background thread while the
    caller uses the current one (JPEG decoding and numpy release the GIL)."""
    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(work, chunks[0])
        for nxt in chunks[1:]:
            done = pending.result()
            pending = pool.submit(work, nxt)
            yield done
        yield pending.result()


def _crop_slots(
    table: pa.Table, column: str, more: str | None, order: np.ndarray
) -> tuple[list, list[str]]:
    """A video's steps in sequence order: per frame its crop (None: a masked step), then its
    further crops (`more`), each an Arrow scalar of JPEG bytes; and each step's video id.
    Without further crops there is one step per frame, in (video, step) order."""
    ids = table.column("video_id").to_pylist()
    jpegs = table.column(column).combine_chunks()  # stays in Arrow: bytes made per batch
    valid = jpegs.is_valid().to_numpy(zero_copy_only=False)
    extra, starts, counts = None, None, None
    if more is not None:
        lists = table.column(more).combine_chunks()
        counts = lists.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        extra = lists.flatten().field("jpeg")
    slots: list = []
    vids: list[str] = []
    for r in order.tolist():
        slots.append(jpegs[r] if valid[r] else None)
        vids.append(ids[r])
        if extra is not None:
            for j in range(int(starts[r]), int(starts[r] + counts[r])):
                slots.append(extra[j])
                vids.append(ids[r])
    return slots, vids


def embed_image_shard(
    frames_shard: str | Path | pa.Table,
    modality: str,
    params: EncoderParams,
    encoder=None,
    threads: int = 1,
    progress: bool = True,
) -> ShardResult:
    """face / body / scene crops -> CLIP embeddings; steps without a crop are zeros, masked.

    Crops are decoded batch by batch (never the whole shard at once), by `threads` threads,
    while the encoder runs the previous batch; `encoder` reuses a loaded ClipImageEncoder.
    `frames_shard` is a frames shard file or its table; `progress` False: no progress bar."""
    from mepr.embed.image import ClipImageEncoder

    if modality not in IMAGE_MODALITIES:
        raise ValueError(f"not an image modality: {modality}")
    result = ShardResult()
    column, more = f"{modality}_jpeg", MORE_CROPS.get(modality)
    table = _read_columns(
        frames_shard, shards.FRAMES, ["video_id", "step", column, *([more] if more else [])]
    )
    # visit rows by video, then step, without copying the JPEG column into sorted order
    order = pc.sort_indices(
        table.select(["video_id", "step"]), [("video_id", "ascending"), ("step", "ascending")]
    ).to_numpy()
    encoder = encoder or ClipImageEncoder(params)
    result.meta["encoder_identity"] = encoder.identity()
    slots, vids = _crop_slots(table, column, more, order)
    have = np.flatnonzero([s is not None for s in slots])  # positions in visiting order
    vectors = np.zeros((len(slots), encoder.dim), np.float32)
    mask = np.zeros(len(slots), bool)
    b = encoder.batch_size
    chunks = [have[i : i + b] for i in range(0, len(have), b)]
    workers = max(1, threads)

    with ThreadPoolExecutor(max_workers=workers) as pool:

        def prepare(rows: np.ndarray):  # decode + centre-crop, in the background
            data = [slots[int(i)].as_py() for i in rows]
            return encoder.prepare_jpegs(data, pool, workers)

        desc = f"{modality} embeddings"
        with tqdm(total=len(have), desc=desc, unit="crop", disable=not progress) as bar:
            for rows, batch in zip(chunks, _prefetched(chunks, prepare), strict=True):
                vectors[rows], mask[rows] = encoder.forward(batch), True
                bar.update(len(rows))
    start = 0
    for end in range(1, len(vids) + 1):  # visited by video, then step: one run per video
        if end == len(vids) or vids[end] != vids[start]:
            result.rows.append(embedding_row(vids[start], vectors[start:end], mask[start:end]))
            start = end
    return result


# ---------------------------------------------------------------------------------------------
# audio


def embed_audio_shard(
    audio_shard: str | Path | pa.Table,
    params: EncoderParams,
    encoder=None,
    progress: bool = True,
) -> ShardResult:
    """Audio tracks -> Wav2Vec2 windows, batched across videos (see mepr.embed.audio).

    `audio_shard` is an audio shard file or its table; `progress` False: no progress bar."""
    from mepr.embed.audio import Wav2Vec2Encoder

    result = ShardResult()
    audio = _sorted(
        _read_columns(audio_shard, shards.AUDIO, shards.AUDIO.arrow.names), ["video_id"]
    )
    encoder = encoder or Wav2Vec2Encoder(params)
    result.meta["encoder_identity"] = encoder.identity()
    rows: dict[str, dict[str, Any]] = {}
    clips: list[np.ndarray] = []
    clip_ids: list[str] = []
    for row in audio.to_pylist():
        vid = row["video_id"]
        if row["sample_rate"] != encoder.sample_rate:
            result.fail(
                vid,
                "embed_audio",
                f"audio at {row['sample_rate']} Hz, encoder wants {encoder.sample_rate}",
            )
            continue
        pcm = np.frombuffer(row["pcm_s16le"], dtype="<i2").astype(np.float32) / 32768.0
        if pcm.size < encoder.sample_rate * MIN_AUDIO_S:  # no track, or too short to encode
            rows[vid] = embedding_row(vid, np.zeros((1, encoder.dim)), np.zeros(1, bool))
            continue
        rows[vid] = {}
        clips.append(pcm)
        clip_ids.append(vid)
    del audio
    plan = encoder.batch_plan([len(c) for c in clips])

    def prepare(batch: list[int]):  # normalise + pad
        return encoder.prepare([clips[i] for i in batch])

    # beside a GPU the next batch is prepared while the current one runs; on a CPU the model
    # already uses every core, and a second thread only slows it down
    prepared = _prefetched(plan, prepare) if encoder.device == "cuda" else map(prepare, plan)
    with tqdm(total=len(clips), desc="audio embeddings", unit="clip", disable=not progress) as bar:
        for batch, (values, mask) in zip(plan, prepared, strict=True):
            hidden = encoder.forward(values, mask)
            for i, pooled in zip(batch, encoder.pool(hidden, [len(clips[i]) for i in batch]), strict=True):  # fmt: skip
                rows[clip_ids[i]] = embedding_row(clip_ids[i], pooled, np.ones(len(pooled), bool))
            bar.update(len(batch))
    result.rows.extend(rows[v] for v in sorted(rows))
    return result


# ---------------------------------------------------------------------------------------------
# text


def embed_text_shard(
    transcripts_shard: str | Path | pa.Table, params: EncoderParams, encoder=None
) -> ShardResult:
    """Transcripts -> token (or pooled) vectors; an empty transcript is one masked step set.

    `transcripts_shard` is a transcripts shard file or its table (draws no progress bar)."""
    from mepr.embed.text import TextEncoder

    result = ShardResult()
    table = _sorted(
        _read_columns(transcripts_shard, shards.TRANSCRIPTS, ["video_id", "text"]), ["video_id"]
    )
    encoder = encoder or TextEncoder(params)
    result.meta["encoder_identity"] = encoder.identity()
    ids = table.column("video_id").to_pylist()
    texts = [t or "" for t in table.column("text").to_pylist()]
    for vid, text, values in zip(ids, texts, encoder.encode(texts), strict=True):
        mask = np.full(len(values), bool(text.strip()))
        result.rows.append(embedding_row(vid, values, mask))
    return result


# ---------------------------------------------------------------------------------------------
# one shard, end to end


def embed_shard(
    modality: str, input_shard: str | Path, params: EncoderParams, threads: int = 1
) -> ShardResult:
    if modality in IMAGE_MODALITIES:
        return embed_image_shard(input_shard, modality, params, threads=threads)
    if modality == "audio":
        return embed_audio_shard(input_shard, params)
    if modality == "text":
        return embed_text_shard(input_shard, params)
    raise ValueError(f"unknown modality '{modality}'")


def shard_metadata(modality: str, params: EncoderParams, result: ShardResult) -> dict[str, Any]:
    """What an embedding shard's metadata holds: the config section and the encoder identity."""
    return {"modality": modality, "encoder": vars(params), **result.meta}
