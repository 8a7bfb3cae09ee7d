"""Embedding shards: one (steps x dim) sequence per video and modality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from mepr import shards
from mepr.config import EncoderParams
from mepr.media.detect import decode_jpeg
from mepr.media.extract import ShardResult


def embedding_row(video_id: str, values: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    values = np.asarray(values, dtype=np.float32)
    return {
        "video_id": video_id,
        "n_steps": int(values.shape[0]),
        "dim": int(values.shape[1]),
        "values": values.tolist(),
        "step_mask": [bool(m) for m in mask],
    }


def embed_image_shard(
    frames_shard: str | Path, modality: str, params: EncoderParams
) -> ShardResult:
    """face / body / scene crops -> CLIP embeddings; steps without a crop are zeros, masked."""
    from mepr.embed.image import ClipImageEncoder

    result = ShardResult()
    frames = pl.from_arrow(shards.read_table(frames_shard, shards.FRAMES)).sort(
        ["video_id", "step"]
    )
    encoder = ClipImageEncoder(params)
    column = f"{modality}_jpeg"
    crops = frames.filter(pl.col(column).is_not_null())
    images = [
        decode_jpeg(b) for b in tqdm(crops[column].to_list(), desc=f"decode {modality} crops")
    ]
    vectors = encoder.encode(images) if images else np.zeros((0, encoder.dim), np.float32)
    by_key = dict(zip(zip(crops["video_id"], crops["step"], strict=True), vectors, strict=True))
    for (vid,), group in frames.group_by(["video_id"], maintain_order=True):
        steps = group["step"].to_list()
        values = np.zeros((len(steps), encoder.dim), np.float32)
        mask = np.zeros(len(steps), bool)
        for i, step in enumerate(steps):
            if (vid, step) in by_key:
                values[i], mask[i] = by_key[(vid, step)], True
        result.rows.append(embedding_row(vid, values, mask))
    return result


def embed_audio_shard(audio_shard: str | Path, params: EncoderParams) -> ShardResult:
    from mepr.embed.audio import Wav2Vec2Encoder

    result = ShardResult()
    audio = pl.from_arrow(shards.read_table(audio_shard, shards.AUDIO)).sort("video_id")
    encoder = Wav2Vec2Encoder(params)
    for row in tqdm(audio.iter_rows(named=True), total=audio.height, desc="audio embeddings"):
        pcm = np.frombuffer(row["pcm_s16le"], dtype="<i2").astype(np.float32) / 32768.0
        if row["sample_rate"] != encoder.sample_rate:
            result.fail(
                row["video_id"],
                "embed_audio",
                f"audio at {row['sample_rate']} Hz, encoder wants {encoder.sample_rate}",
            )
            continue
        # wav2vec2's conv stack needs ~25 ms of signal: shorter tracks count as silent
        if pcm.size < encoder.sample_rate // 10:
            result.rows.append(
                embedding_row(row["video_id"], np.zeros((1, encoder.dim)), np.zeros(1, bool))
            )
            continue
        values = encoder.encode(pcm)
        result.rows.append(embedding_row(row["video_id"], values, np.ones(len(values), bool)))
    return result


def embed_text_shard(transcripts_shard: str | Path, params: EncoderParams) -> ShardResult:
    from mepr.embed.text import TextEncoder

    result = ShardResult()
    table = pl.from_arrow(shards.read_table(transcripts_shard, shards.TRANSCRIPTS)).sort("video_id")
    encoder = TextEncoder(params)
    texts = [t or "" for t in table["text"].to_list()]
    for vid, text, values in zip(table["video_id"], texts, encoder.encode(texts), strict=True):
        mask = np.full(len(values), bool(text.strip()))
        result.rows.append(embedding_row(vid, values, mask))
    return result
