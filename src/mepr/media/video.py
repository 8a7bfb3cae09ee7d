"""Decode a video and sample frames uniformly over its length."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


class MediaError(RuntimeError):
    """A video that cannot be read; the message is the reason recorded in the failures table."""


@dataclass
class SampledFrames:
    indices: np.ndarray  # (n,) frame index in the stream
    timestamps: np.ndarray  # (n,) seconds
    images: list[np.ndarray]  # n RGB uint8 frames
    fps: float


def uniform_indices(total: int, n: int) -> np.ndarray:
    """n indices spread over [0, total-1] (repeats when the video is shorter than n frames)."""
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.linspace(0, total - 1, n).round().astype(np.int64)


def sample_frames(path: str | Path, n_frames: int) -> SampledFrames:
    """Decode only up to the last sampled frame; frames between samples are grabbed, not converted."""
    p = Path(path)
    if not p.exists():
        raise MediaError("file not found")
    if p.stat().st_size == 0:
        raise MediaError("empty file")
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise MediaError("cannot open video (unsupported or corrupt container)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        wanted = uniform_indices(total, n_frames)
        wanted_set = set(wanted.tolist())
        images: dict[int, np.ndarray] = {}
        index = 0
        last = int(wanted[-1]) if len(wanted) else -1
        while index <= last:
            if not cap.grab():
                break  # container lied about its length: sample what we have below
            if index in wanted_set:
                ok, frame = cap.retrieve()
                if ok:
                    images[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()
    if not images:
        raise MediaError("no decodable video frames")
    if len(images) < len(set(wanted.tolist())):
        # truncated stream: resample uniformly over the frames that did decode
        decoded = sorted(images)
        picks = [decoded[i] for i in uniform_indices(len(decoded), n_frames)]
    else:
        picks = [int(i) for i in wanted]
    fps = fps if fps > 0 else 25.0
    return SampledFrames(
        indices=np.asarray(picks, dtype=np.int64),
        timestamps=np.asarray(picks, dtype=np.float32) / np.float32(fps),
        images=[images[i] for i in picks],
        fps=float(fps),
    )
