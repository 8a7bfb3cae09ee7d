"""Sampling n frames uniformly inside an interval [start, end) of a video (seconds of
presentation time, in OpenCV's time line), without decoding the video from its beginning.

The reader reaches ``start`` by seeking when that pays. On a stream whose frame k shows at
``k / fps`` the frames inside are predicted from the rate and each frame decoded on the way is
checked against the prediction (one pass); otherwise (variable frame rate, an offset start, a
miscounted container) one pass lists the frames inside and a second retrieves the sampled
ones. An interval ending more than a frame after the last decodable frame is noted.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mepr.media.video_decode import (
    EPS,
    FrameReader,
    MediaError,
    Restart,
    SampledFrames,
    sampled,
    uniform_indices,
)


def interval_text(start: float, end: float) -> str:
    return f"[{start:.3f}, {end:.3f}) s"


def no_frame_in(start: float, end: float, last_time: float | None) -> str:
    if last_time is None:
        return "no decodable video frames"
    return f"no video frame in {interval_text(start, end)} (last frame at {last_time:.3f} s)"


def note_past_end(
    notes: list[str], start: float, end: float, last_time: float | None, fps: float
) -> None:
    """Note an interval that ends more than a frame after the last frame that decodes."""
    frame = 1.0 / fps if fps > 0 else 0.04
    if last_time is not None and end < math.inf and end > last_time + 1.5 * frame:
        notes.append(
            f"interval {interval_text(start, end)} ends after the last decodable frame "
            f"({last_time:.3f} s)"
        )


def reach(r: FrameReader, t: float) -> bool:
    """Grab forward to the first frame whose timestamp is at least ``t`` (less EPS), seeking
    there when it pays; False when the stream ends first."""
    while r.index < 1:  # two frames: one interval to judge the frame rate by
        if r.index >= 0 and r.timestamp() >= t - EPS:
            return True
        if not r.grab():
            return False
    if r.native_fps > 0:
        # the frame before the first one at t or later (frame k shows at k / fps)
        want = int(math.floor((t - EPS) * r.native_fps)) - 1
        r.seek_if_pays(want)
    while r.timestamp() < t - EPS:
        if not r.grab():
            return False
    return True


_Picks = tuple[list[tuple[int, float, np.ndarray]], float, int, int, list[str], int]


def _interval_predicted(
    p: Path, n: int, start: float, end: float, seek: bool, rounding: str
) -> _Picks | None:
    """Uniform sampling inside [start, end) in one pass, for a stream whose frame k shows at
    k / fps: the frames inside are predicted from the rate, and every frame grabbed on the way
    is checked against that prediction. None when the stream does not follow it (variable
    rate, an offset start, fewer frames than claimed): the caller then scans the interval."""
    with FrameReader(p, seek) as r:
        fps = r.native_fps
        if not reach(r, start):
            raise MediaError(no_frame_in(start, end, r.timestamp() if r.index >= 0 else None))
        first, t_first = r.index, r.timestamp()
        if t_first >= end - EPS:
            raise MediaError(no_frame_in(start, end, t_first))

        def on_time() -> bool:
            return r.pts_ok and abs(r.timestamp() * fps - r.index) <= 0.25

        def as_predicted() -> bool:  # still at the constant rate the prediction assumes
            return not r.irregular and on_time()

        if not (fps > 0 and end < math.inf and not r.irregular and on_time()):
            return None
        last = int(math.ceil((end - EPS) * fps)) - 1  # the last frame showing before end
        if r.reported:
            last = min(last, r.reported - 1)
        total = last - first + 1
        if total < 1:
            return None
        targets = [first + int(k) for k in uniform_indices(total, n, rounding)]
        got: dict[int, tuple[float, np.ndarray]] = {}
        for target in sorted(set(targets)):
            if not r.advance(target, as_predicted):
                return None
            if not on_time():
                return None
            image = r.retrieve()
            if image is None:
                return None
            got[target] = (r.timestamp(), image)
        notes: list[str] = []
        if r.grab():  # the frame after the last one must be past the interval
            if r.timestamp() < end - EPS:
                return None
        else:
            note_past_end(notes, start, end, got[last][0], fps)
        picks = [(t, *got[t]) for t in targets]
        return picks, fps, total, r.reported, notes, r.seeks


def _interval_scanned(
    p: Path, n: int, start: float, end: float, seek: bool, rounding: str
) -> _Picks:
    """Uniform sampling inside [start, end) for any stream: one pass lists the frames whose
    timestamps fall inside, a second one retrieves the sampled ones."""
    notes: list[str] = []
    with FrameReader(p, seek) as r:
        if not reach(r, start):
            raise MediaError(no_frame_in(start, end, r.timestamp() if r.index >= 0 else None))
        inside: list[tuple[int, float]] = []
        while r.timestamp() < end - EPS:
            inside.append((r.index, r.timestamp()))
            if not r.grab():
                note_past_end(notes, start, end, inside[-1][1], r.native_fps)
                break
        reported, fps = r.reported, r.native_fps
    if not inside:
        raise MediaError(no_frame_in(start, end, None))
    while inside:
        targets = [inside[int(k)][0] for k in uniform_indices(len(inside), n, rounding)]
        got: dict[int, tuple[float, np.ndarray]] = {}
        with FrameReader(p, seek) as r:
            for target in sorted(set(targets)):
                image = r.retrieve() if r.advance(target) else None
                if image is None:
                    break
                got[target] = (r.timestamp(), image)
            seeks = r.seeks
        if all(t in got for t in targets):
            picks = [(t, *got[t]) for t in targets]
            return picks, fps, len(inside), reported, notes, seeks
        # a listed frame does not decode: sample over the frames before it
        bad = min(t for t in targets if t not in got)
        notes.append(f"frames from {bad} on do not decode")
        inside = [(i, ts) for i, ts in inside if i < bad]
    raise MediaError(no_frame_in(start, end, None))


def sample_interval_by_index(
    p: Path, n: int, start: float, end: float, seek: bool, rounding: str = "round"
) -> SampledFrames:
    """`n` frames spread uniformly over those inside [start, end): predicted in one pass when
    the stream allows it, else scanned; sequential decoding when a seek fails verification."""
    for _attempt in range(2):
        try:
            out = _interval_predicted(p, n, start, end, seek, rounding)
            if out is None:
                out = _interval_scanned(p, n, start, end, seek, rounding)
        except Restart:
            seek = False  # a seek could not be verified: decode sequentially
            continue
        return sampled(*out)
    raise MediaError("no decodable video frames")
