"""Reading a video's frames with OpenCV: a reader that grabs, seeks and retrieves, knowing the
index and presentation time of the frame it is on, and what sampling returns.

What "decoding only what is needed" means here: frames are *grabbed* (decoded, never
converted to RGB) up to each sampled frame, which alone is *retrieved*. When the next sampled
frame is far ahead (at least ``SEEK_MIN_GAP`` frames) the reader seeks instead, which skips
decoding whole keyframe intervals (OpenCV seeks to the keyframe before the target, then
decodes forward to the exact frame). Seeking pays only when keyframes are closer together than
the gap, so the reader times each seek against the grabs it replaced and stops seeking in a
video where a seek did not pay. Seeks are verified (the landed frame's timestamp must match
its index on a constant frame rate) and used only on streams whose frame intervals look
constant; a verified seek gives bit-identical frames to decoding sequentially.

Timestamps are the container's presentation times (``CAP_PROP_POS_MSEC``), index / fps only
when the stream has no usable times; rotation metadata is applied, as ffmpeg does; frames of
any size and pixel format come out as RGB (see `mepr.media.video`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

# Seek only when the next sampled frame is at least this many frames ahead: OpenCV's seek
# lands 16 frames before the target and decodes forward from the keyframe before that.
SEEK_MIN_GAP = 64
# A seek must cost less than this fraction of the grabs it replaces, or seeking stops.
_SEEK_PAYOFF = 1.0
_MAX_SANE_FRAMES = 50_000_000  # ~19 days at 30 fps: anything larger is a broken header
# A frame belongs to an interval [start, end) when start - EPS <= timestamp < end - EPS
# (container times are rounded to the stream's time base).
EPS = 1e-4


class MediaError(RuntimeError):
    """A video that cannot be read; the message is the reason recorded in the failures table."""


@dataclass
class SampledFrames:
    indices: np.ndarray  # (n,) frame index in the stream (decode order, 0-based)
    timestamps: np.ndarray  # (n,) seconds, presentation time
    images: list[np.ndarray]  # n RGB uint8 frames, rotation applied
    fps: float  # the container's average frame rate (25 when it reports none)
    frame_count: int = 0  # frames the stream has, as far as sampling established it
    reported_frames: int = 0  # what the container claims (0: nothing sane)
    notes: list[str] = field(default_factory=list)  # non-fatal problems found on the way
    seeks: int = 0  # seeks used (diagnostics, benchmarks)


INDEX_ROUNDING = ("round", "floor")  # `frames.index_rounding`


def uniform_indices(total: int, n: int, rounding: str = "round") -> np.ndarray:
    """n indices spread over [0, total-1].

    `round` (mepr): the nearest frame to each of n evenly spaced positions; a video shorter
    than n frames repeats frames, so there are always n. `floor` (the reference's
    ``np.linspace(0, total - 1, n, dtype=int)``): each position rounded down, and a video of
    at most n frames gives every frame once (fewer than n steps)."""
    if rounding not in INDEX_ROUNDING:
        raise ValueError(f"frames.index_rounding must be one of {INDEX_ROUNDING}, got {rounding!r}")
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    if rounding == "floor":
        if total <= n:
            return np.arange(total, dtype=np.int64)
        return np.floor(np.linspace(0, total - 1, n)).astype(np.int64)
    return np.linspace(0, total - 1, n).round().astype(np.int64)


def check_file(p: Path) -> None:
    """MediaError for a file that is not there or empty (before any decoder sees it)."""
    if not p.exists():
        raise MediaError("file not found")
    if p.stat().st_size == 0:
        raise MediaError("empty file")


class Restart(Exception):
    """Sampling must start again (unverified seek, or a better frame count is now known)."""


class FrameReader:
    """cv2.VideoCapture that tracks the index and timestamp of the frame it last grabbed."""

    def __init__(self, path: Path, seek: bool):
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise MediaError("cannot open video (unsupported or corrupt container)")
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # apply rotation metadata, as ffmpeg does
        self.cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.native_fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 0.0
        reported = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        ok = reported and math.isfinite(reported) and 0 < reported < _MAX_SANE_FRAMES
        self.reported = int(round(reported)) if ok else 0
        self.index = -1  # index of the last grabbed frame
        self.pts: float | None = None  # its presentation time (s), None if unknown
        self.pts_ok = True  # timestamps strictly increase (else index / fps is used)
        self.cfr_pairs = 0  # consecutive frame pairs seen with a regular interval
        self.irregular = False  # a frame interval off the nominal rate was seen
        self.seek_ok = seek and self.native_fps > 0 and self.reported > 0
        self.seeks = 0
        self._grab_s = 0.0  # running mean seconds per sequential grab
        self._grabs = 0

    def close(self) -> None:
        self.cap.release()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def time_of(self, index: int) -> float:
        return index / (self.native_fps or 25.0)

    def _read_pts(self) -> float | None:
        ms = self.cap.get(cv2.CAP_PROP_POS_MSEC)
        return float(ms) / 1000.0 if ms is not None and math.isfinite(ms) else None

    def grab(self) -> bool:
        t0 = time.perf_counter()
        if not self.cap.grab():
            return False
        self._grabs += 1
        self._grab_s += (time.perf_counter() - t0 - self._grab_s) / self._grabs
        prev = self.pts
        self.index += 1
        self.pts = self._read_pts()
        if self.index > 0 and (self.pts is None or prev is None or self.pts <= prev):
            self.pts_ok = False
        if self.pts_ok and prev is not None and self.index > 0 and self.native_fps > 0:
            if abs((self.pts - prev) * self.native_fps - 1.0) <= 0.25:
                self.cfr_pairs += 1
            else:
                self.seek_ok = False  # variable frame rate: OpenCV's frame seek is approximate
                self.irregular = True
        return True

    def can_seek(self, target: int) -> bool:
        gap = target - self.index
        return self.seek_ok and self.cfr_pairs >= 1 and self.pts_ok and gap >= SEEK_MIN_GAP

    def seek_if_pays(self, target: int) -> bool:
        """Seek to frame `target` when that pays (`can_seek`); True when it did. Raises Restart
        when the seek could not be verified."""
        if not self.can_seek(target):
            return False
        if not self.seek(target):
            raise Restart
        return True

    def advance(self, target: int, still_ok: Callable[[], bool] | None = None) -> bool:
        """Move to frame `target`, seeking when that pays, else grabbing forward. False when
        the stream ends first, or when `still_ok` (asked after each grab) says no."""
        self.seek_if_pays(target)
        while self.index < target:
            if not self.grab() or (still_ok is not None and not still_ok()):
                return False
        return True

    def seek(self, target: int) -> bool:
        """Land on frame `target` (the next frame read is target + 1). False: not verified;
        the reader is then in an unknown position and must be reopened."""
        gap = target - self.index
        t0 = time.perf_counter()
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, target)
        if not self.cap.grab():
            return False
        cost = time.perf_counter() - t0
        self.seeks += 1
        pts = self._read_pts()
        landed = int(round(self.cap.get(cv2.CAP_PROP_POS_FRAMES))) - 1
        if (
            pts is None
            or landed != target
            or abs(pts - self.time_of(target)) * self.native_fps > 0.5
        ):
            return False
        self.index, self.pts = target, pts
        if cost > _SEEK_PAYOFF * gap * self._grab_s:
            self.seek_ok = False  # keyframes are too far apart for seeking to pay here
        return True

    def retrieve(self) -> np.ndarray | None:
        ok, frame = self.cap.retrieve()
        if not ok or frame is None:
            return None
        if frame.ndim == 2:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def timestamp(self) -> float:
        return self.pts if self.pts_ok and self.pts is not None else self.time_of(self.index)


def count_frames(path: Path) -> int:
    with FrameReader(path, seek=False) as r:
        while r.grab():
            pass
        return r.index + 1


def sampled(
    picks: list[tuple[int, float, np.ndarray]],
    fps: float,
    frame_count: int,
    reported: int,
    notes: list[str],
    seeks: int,
) -> SampledFrames:
    """SampledFrames from (frame index, timestamp, image) picks, in sampling order."""
    return SampledFrames(
        indices=np.asarray([i for i, _, _ in picks], np.int64),
        timestamps=np.asarray([t for _, t, _ in picks], np.float32),
        images=[im for _, _, im in picks],
        fps=fps or 25.0,
        frame_count=frame_count,
        reported_frames=reported,
        notes=notes,
        seeks=seeks,
    )
