"""Step 2 of a prediction, per batch: embedding sequences, the way the workflow makes them.

The batch's rows go, in memory, through the DAG's own shard functions
(:mod:`mepr.embed.shard`: the tables they would read from a frames/audio/transcripts shard),
so the masking rules (missing crops, silent or short audio, empty transcripts) cannot drift
apart; the embedding rows are then subsampled and padded by the training loader's
:func:`mepr.train.data.pack_sequences`, exactly as :func:`~mepr.train.data.load_sequences`
does for a shard file.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from mepr import shards
from mepr.config import EncoderParams
from mepr.labels import IMAGE_MODALITIES
from mepr.predict.errors import PredictError
from mepr.predict.extraction import Extraction
from mepr.predict.spec import Pipeline


class Encoders:
    """Encoders loaded once per run; modalities with the same parameters share one (face, body
    and scene use the same CLIP)."""

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}

    def get(self, params: EncoderParams):
        key = json.dumps(dataclasses.asdict(params), sort_keys=True)
        if key not in self._loaded:
            if params.kind == "open_clip":
                from mepr.embed.image import ClipImageEncoder as Encoder
            elif params.kind == "wav2vec2":
                from mepr.embed.audio import Wav2Vec2Encoder as Encoder
            else:
                from mepr.embed.text import TextEncoder as Encoder
            self._loaded[key] = Encoder(params)
        return self._loaded[key]


def _table(rows: list[dict[str, Any]], schema: shards.ShardSchema):
    """The rows as the table a shard of `schema` holds (what shards.write_table would store)."""
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=schema.arrow)


def _sequences(rows: list[dict[str, Any]], ids: list[str], max_steps: int):
    """Embedding rows (mepr.embed.shard.embedding_row) to the loader's padded sequences."""
    from mepr.train.data import pack_sequences

    wanted = {v: i for i, v in enumerate(ids)}
    items = []
    for r in rows:
        n = len(r["values"])
        if r["video_id"] not in wanted or n == 0:
            continue  # as the loader skips a row without steps
        values = np.asarray(r["values"], np.float32).reshape(n, -1)
        mask = r["step_mask"]
        valid = np.asarray(mask, bool) if mask is not None and len(mask) == n else np.ones(n, bool)
        items.append((wanted[r["video_id"]], values, valid))
    return pack_sequences(items, len(ids), max_steps, [r["dim"] for r in rows])


def embed_batch(
    batch: list[Extraction],
    pipeline: Pipeline,
    modalities: list[str],
    encoders: Encoders,
    in_dims: dict[str, int],
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(Sequences per modality in batch order, embedding problems per video id).

    `in_dims`: the embedding width each stage-2 model expects; a modality no video has
    (e.g. no audio in the whole batch) gets empty sequences of that width.
    """
    from mepr.embed import shard as embed_shard
    from mepr.train.data import Sequences

    ids = [e.video.video_id for e in batch]
    p = pipeline
    rows: dict[str, list[dict[str, Any]]] = {}
    failures: list[dict[str, str]] = []

    def run(fn, m: str, *args, **kwargs) -> None:
        """fn(*args, params) with the modality's encoder, loaded once per run."""
        params = p.encoders[m]
        result = fn(*args, params, encoder=encoders.get(params), **kwargs)
        failures.extend(result.failures)
        rows[m] = result.rows

    # predict draws its own progress bar: the shard functions' bars stay off
    frame_rows = [r for e in batch for r in e.frame_rows]
    images = [m for m in modalities if m in IMAGE_MODALITIES]
    if images and frame_rows:
        frames = _table(frame_rows, shards.FRAMES)
        for m in images:
            run(embed_shard.embed_image_shard, m, frames, m, progress=False)
    audio_rows = [e.audio for e in batch if e.audio is not None]
    if "audio" in modalities and audio_rows:
        audio = _table(audio_rows, shards.AUDIO)
        run(embed_shard.embed_audio_shard, "audio", audio, progress=False)
    if "text" in modalities:
        text = _table([{"video_id": e.video.video_id, **e.transcript} for e in batch],
                      shards.TRANSCRIPTS)  # fmt: skip
        run(embed_shard.embed_text_shard, "text", text)
    seqs = {}
    for m in modalities:
        in_dim = in_dims[m]
        if m in rows:
            s = _sequences(rows[m], ids, p.max_steps[m])
            if s.present.any() and s.dim != in_dim:
                raise PredictError(
                    f"the {m} encoder ({p.spec['encoders'][m].get('model')}) gives {s.dim}-d "
                    f"embeddings, the stage-2 {m} model expects {in_dim}: the encoder differs "
                    "from the one the model was trained with"
                )
        else:
            n = len(ids)
            s = Sequences(np.zeros((n, 1, in_dim), np.float32), np.zeros((n, 1), bool), in_dim)
        seqs[m] = s
    by_id: dict[str, list[str]] = {}
    for f in failures:
        by_id.setdefault(f["video_id"], []).append(f"{f['stage']}: {f['reason']}")
    return seqs, by_id
