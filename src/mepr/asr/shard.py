"""Transcripts shard: corpus transcripts where present (and allowed), ASR on the audio otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from mepr import shards
from mepr.asr import Transcriber, Transcript, get_transcriber
from mepr.config import AsrParams
from mepr.media.extract import manifest_shard
from mepr.shards import ShardResult


def transcripts_shard(
    manifest: str | Path, audio_shard: str | Path, shard: int, params: AsrParams
) -> ShardResult:
    result = ShardResult()
    videos = manifest_shard(manifest, shard)
    audio = pl.from_arrow(shards.read_table(audio_shard, shards.AUDIO))
    audio_by_id = {r["video_id"]: r for r in audio.iter_rows(named=True)}
    transcriber: Transcriber | None = None  # loaded only if some video needs ASR
    for row in tqdm(
        videos.iter_rows(named=True), total=videos.height, desc=f"transcripts shard {shard}"
    ):
        vid = row["video_id"]
        corpus_text = (row["transcript"] or "").strip()
        if params.use_corpus_transcripts and corpus_text:
            result.rows.append(
                {"video_id": vid, "text": corpus_text, "source": "corpus", "words": []}
            )
            continue
        track = audio_by_id.get(vid)
        if track is None or not track["has_audio"]:
            result.fail(vid, "transcripts", "no audio to transcribe")
            result.rows.append({"video_id": vid, "text": "", "source": "none", "words": []})
            continue
        transcriber = transcriber or get_transcriber(params)
        pcm = np.frombuffer(track["pcm_s16le"], dtype="<i2").astype(np.float32) / 32768.0
        try:
            tr: Transcript = transcriber.transcribe(pcm, track["sample_rate"])
        except Exception as e:  # one bad clip must not stop the shard
            result.fail(vid, "transcripts", f"ASR failed: {e}")
            tr = Transcript("")
        result.rows.append(
            {
                "video_id": vid,
                "text": tr.text,
                "source": transcriber.name,
                "words": [{"word": w.word, "start": w.start, "end": w.end} for w in tr.words],
            }
        )
    return result
