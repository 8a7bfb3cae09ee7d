"""Per-shard extraction jobs: manifest shard -> frames shard, audio shard.

One implementation serves the DAG and `mepr predict`: both call `frames_rows` / `audio_row`
on one video at a time. Failures never stop a shard: they become rows of the failures table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from mepr import shards
from mepr.config import AudioParams, DetectParams, FramesParams
from mepr.media import jpeg
from mepr.media.audio import extract_audio, rms_dbfs
from mepr.media.detect import MediaPipeDetector, frame_crops
from mepr.media.video import MediaError, sample_frames
from mepr.shards import ShardResult


def _what(e: Exception) -> str:
    return f"{type(e).__name__}: {e}"


def _interval(row: dict[str, Any]) -> tuple[float | None, float | None]:
    """A manifest row's (start, end) in seconds: set for a segment of a longer video (e.g. a
    CMU-MOSEI utterance inside its full video), (None, None) for a video used whole."""
    return row.get("start"), row.get("end")


def manifest_shard(manifest: str | Path, shard: int) -> pl.DataFrame:
    """The manifest rows that belong to one shard, in a stable order."""
    table = shards.read_table(manifest, shards.MANIFEST)
    df = pl.from_arrow(table)
    return df.filter(pl.col("shard") == shard).sort("video_id")


def frames_rows(
    video_id: str,
    path: str | Path,
    detector: MediaPipeDetector,
    frames: FramesParams,
    detect: DetectParams,
    start: float | None = None,
    end: float | None = None,
) -> list[dict[str, Any]]:
    """Sample, detect and crop one video (only [start, end) of it when given, in seconds);
    raises MediaError when it cannot be decoded."""
    return _frames_rows(video_id, path, detector, frames, detect, start, end)[0]


def _frames_rows(
    video_id: str,
    path: str | Path,
    detector: MediaPipeDetector,
    frames: FramesParams,
    detect: DetectParams,
    start: float | None = None,
    end: float | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """frames_rows plus the non-fatal problems the decoder noted (e.g. a lying frame count)."""
    sampled = sample_frames(
        path, frames.n_frames, frames.fps, start=start, end=end,
        index_rounding=frames.index_rounding,
    )  # fmt: skip
    rows = []
    q = frames.jpeg_quality
    for step, (index, ts, rgb) in enumerate(
        zip(sampled.indices, sampled.timestamps, sampled.images, strict=True)
    ):
        h, w = rgb.shape[:2]
        crops = frame_crops(rgb, detector.detect(rgb), detect, frames.crop_size, frames.crop)
        row = {
            "video_id": video_id,
            "step": step,
            "frame_index": int(index),
            "timestamp": float(ts),
            "width": w,
            "height": h,
            "scene_jpeg": jpeg.encode(crops.scene, q),
        }
        for kind, found in (("face", crops.faces), ("body", crops.bodies)):
            first = found[0] if found else None
            row[f"{kind}_jpeg"] = jpeg.encode(first[1], q) if first else None
            row[f"{kind}_box"] = list(first[0].box) if first else None
            row[f"{kind}_score"] = first[0].score if first else None
            row[f"{kind}_stand_in"] = first[0].stand_in if first else None
            more = [{"jpeg": jpeg.encode(im, q), "box": list(d.box), "score": d.score} for d, im in found[1:]]  # fmt: skip
            row["more_faces" if kind == "face" else "more_bodies"] = more
        rows.append(row)
    return rows, sampled.notes


def extract_frames_shard(
    manifest: str | Path, shard: int, frames: FramesParams, detect: DetectParams
) -> ShardResult:
    result = ShardResult()
    videos = manifest_shard(manifest, shard)
    with MediaPipeDetector(detect) as detector:
        for row in tqdm(
            videos.iter_rows(named=True), total=videos.height, desc=f"frames shard {shard}"
        ):
            try:
                # a segment of a longer video (manifest start/end) is sampled inside its interval
                rows, notes = _frames_rows(
                    row["video_id"], row["path"], detector, frames, detect, *_interval(row)
                )
            except MediaError as e:
                result.fail(row["video_id"], "frames", str(e))
                continue
            except Exception as e:  # one bad file must not stop the shard
                result.fail(row["video_id"], "frames", f"frame extraction failed: {_what(e)}")
                continue
            for note in notes:  # the frames are kept: these only say what was odd
                result.fail(row["video_id"], "frames", note)
            if not any(r["face_jpeg"] and r["face_stand_in"] is None for r in rows):
                result.fail(row["video_id"], "frames", "no face detected in any sampled frame")
            result.rows.extend(rows)
    return result


SILENT_AUDIO = "silent audio track"


def audio_row(
    video_id: str,
    path: str | Path,
    audio: AudioParams,
    start: float | None = None,
    end: float | None = None,
) -> dict[str, Any]:
    """The audio row of one video (only [start, end) of it when given, in seconds)."""
    track = extract_audio(path, audio.sample_rate, start, end)
    return {
        "video_id": video_id,
        "sample_rate": track.sample_rate,
        "n_samples": int(track.pcm.size),
        "has_audio": track.has_audio,
        "pcm_s16le": track.pcm.tobytes(),
    }


def is_silent(row: dict[str, Any], threshold_dbfs: float) -> bool:
    """An audio row whose track is all zeros or quieter than `threshold_dbfs` RMS."""
    pcm = np.frombuffer(row["pcm_s16le"], dtype="<i2")
    return bool(pcm.size) and rms_dbfs(pcm) < threshold_dbfs


def extract_audio_shard(manifest: str | Path, shard: int, audio: AudioParams) -> ShardResult:
    result = ShardResult()
    videos = manifest_shard(manifest, shard)
    for row in tqdm(videos.iter_rows(named=True), total=videos.height, desc=f"audio shard {shard}"):
        try:
            out = audio_row(row["video_id"], row["path"], audio, *_interval(row))
        except MediaError as e:
            result.fail(row["video_id"], "audio", str(e))
            continue
        except Exception as e:  # one bad file must not stop the shard
            result.fail(row["video_id"], "audio", f"audio extraction failed: {_what(e)}")
            continue
        if not out["has_audio"]:
            result.fail(row["video_id"], "audio", "no audio track")
        elif is_silent(out, audio.silence_dbfs):
            result.fail(row["video_id"], "audio", SILENT_AUDIO)  # the row is kept
        result.rows.append(out)
    return result
