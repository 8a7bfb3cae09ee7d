"""Decode a video and sample frames from it: n frames spread uniformly, or a fixed rate.

Two ways to choose the frames (`frames` section of the config):

* ``n_frames`` (default): frame indices ``round(linspace(0, total - 1, n))`` over the frames the
  stream really has; a video shorter than n frames repeats frames. With
  ``index_rounding: floor`` the reference's ``int(linspace(...))``, and a video of at most n
  frames gives each frame once (`mepr.media.video_decode.uniform_indices`).
* ``fps`` (wins when set): one frame per ``1 / fps`` seconds of presentation time, starting at
  0: for target time t, the first frame whose timestamp is at least ``t - 0.5 / native_fps``
  (for a constant-frame-rate video, the frame nearest t). A frame that covers several targets
  (sampling faster than the video, or a variable-frame-rate gap) is repeated, so the steps
  stay on a regular time grid. The number of steps grows with the video's duration.

An interval [start, end) (seconds; a segment of a long video, e.g. a CMU-MOSEI utterance
inside its full video) restricts both modes to the frames whose presentation times fall in
it (``start - 1e-4 <= t < end - 1e-4``: times are rounded to the time base; t counted from the
file's start, as ffmpeg's ``-ss`` counts, see `video_start_offset`): ``n_frames``
spreads the indices uniformly over those frames (`mepr.media.video_interval`), ``fps`` puts
its grid at ``start + k / fps`` while that is before ``end``. The reader reaches ``start`` by
seeking instead of decoding the video from its beginning. Nothing is re-encoded and no clip
file is written; the timestamps returned stay OpenCV's, as for a whole video. An interval
ending more than a frame after the last decodable frame is noted.

Frames are grabbed up to each sampled frame and only that one is retrieved, seeking over long
gaps where seeking pays (`mepr.media.video_decode`).

Robustness:

* timestamps are the container's presentation times (``CAP_PROP_POS_MSEC``), so variable
  frame rate videos get true times; index / fps only when the stream has no usable times;
* rotation metadata (display matrix / ``rotate`` tag) is applied, as ffmpeg does by default
  (OpenCV's own auto-orientation is off by default in the wheel: switched on explicitly);
* odd sizes and any pixel format ffmpeg decodes (e.g. 321x239 yuv444p) come out as RGB;
* a container lying about its frame count is caught: too many claimed (truncated file)
  re-samples over the frames that decode; too few claimed (the stream goes on past the last
  sampled frame) or none / nonsense claimed counts the frames and re-samples. These cases are
  returned as ``notes`` (the frames stage records them in the failures table).
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
from pathlib import Path

import numpy as np

from mepr.media.video_decode import (
    EPS,
    SEEK_MIN_GAP,
    FrameReader,
    MediaError,
    Restart,
    SampledFrames,
    check_file,
    count_frames,
    sampled,
    uniform_indices,
)
from mepr.media.video_interval import no_frame_in, note_past_end, sample_interval_by_index

# the reader's types are also importable from here, the sampler's module
__all__ = [
    "SEEK_MIN_GAP",
    "MediaError",
    "SampledFrames",
    "sample_frames",
    "uniform_indices",
    "video_start_offset",
]


def _collect_indices(
    r: FrameReader, total: int, n: int, rounding: str
) -> tuple[dict[int, tuple[float, np.ndarray]], int]:
    """Retrieve the frames uniform_indices(total, n, rounding) names; returns them and the true
    count if the stream turned out longer or shorter than `total` (else 0)."""
    got: dict[int, tuple[float, np.ndarray]] = {}
    for target in sorted(set(uniform_indices(total, n, rounding).tolist())):
        if not r.advance(target):
            return got, r.index + 1  # truncated: the container claimed more frames
        image = r.retrieve()
        if image is None:
            return got, r.index  # the frame was grabbed but does not decode
        got[target] = (r.timestamp(), image)
    if r.grab():  # the container claimed fewer frames than the stream has
        while r.grab():
            pass
        return got, r.index + 1
    return got, 0


def _sample_by_index(p: Path, n: int, seek: bool, rounding: str) -> SampledFrames:
    notes: list[str] = []
    with FrameReader(p, seek) as r:
        reported, fps = r.reported, r.native_fps
    total = reported
    if total <= 0:
        total = count_frames(p)
        notes.append(f"container reports no frame count; {total} frames decoded")
    for _attempt in range(4):
        if total <= 0:
            break
        with FrameReader(p, seek) as r:
            try:
                got, true_count = _collect_indices(r, total, n, rounding)
            except Restart:
                seek = False  # the seek could not be verified: decode sequentially
                continue
            seeks = r.seeks
        if true_count and true_count != total:
            how = "only" if true_count < total else "but"
            notes.append(f"container reports {total} frames, {how} {true_count} decode")
            total = true_count
            continue
        targets = [int(t) for t in uniform_indices(total, n, rounding)]
        if all(t in got for t in targets):
            picks = [(t, *got[t]) for t in targets]
            return sampled(picks, fps, total, reported, notes, seeks)
    raise MediaError("no decodable video frames")


def _sample_by_time(
    p: Path, rate: float, seek: bool, interval: tuple[float, float] | None = None
) -> SampledFrames:
    notes: list[str] = []
    start, end = interval if interval is not None else (0.0, math.inf)
    for _attempt in range(2):
        picks: list[tuple[int, float, np.ndarray]] = []
        with FrameReader(p, seek) as r:
            step = 1.0 / rate
            # a frame counts for target t from half a nominal frame interval before t
            slack = 0.5 / r.native_fps if r.native_fps > 0 else 0.5 * step
            k, last, ended = 0, None, False
            try:
                while True:
                    t = start + k * step
                    lower = t - slack
                    if interval is not None:  # only frames inside [start, end)
                        if t >= end - EPS:
                            break
                        lower = max(lower, start - EPS)
                    want = int(math.floor(lower * r.native_fps)) if r.native_fps else 0
                    if r.seek_if_pays(want):
                        last = None  # a new frame: the cached image is stale
                    if r.index < 0 or r.timestamp() < lower:
                        if not r.grab():
                            ended = True
                            break
                        last = None
                        continue
                    if r.timestamp() >= end - EPS:
                        break  # the next frame is past the interval
                    if last is None:
                        image = r.retrieve()
                        if image is None:
                            break
                        last = image
                    picks.append((r.index, r.timestamp(), last))
                    k += 1
            except Restart:
                seek = False
                continue
            reported, fps, seeks, count = r.reported, r.native_fps, r.seeks, r.index + 1
            last_time = r.timestamp() if r.index >= 0 else None
        if interval is not None:
            if not picks:
                raise MediaError(no_frame_in(start, end, last_time))
            if ended:
                note_past_end(notes, start, end, last_time, fps)
            count = picks[-1][0] - picks[0][0] + 1
            return sampled(picks, fps, count, reported, notes, seeks)
        if not picks:
            raise MediaError("no decodable video frames")
        if reported and count < reported:
            notes.append(f"container reports {reported} frames, only {count} decode")
        return sampled(picks, fps, count, reported, notes, seeks)
    raise MediaError("no decodable video frames")


def video_start_offset(path: str | Path) -> float:
    """Seconds from the file's start to its video stream's start (ffprobe's ``start_time`` of
    the first video stream minus the format's; 0 when unknown).

    An interval is given in the file's time line, the one ffmpeg's ``-ss`` seeks in (and the
    audio is cut in), while OpenCV times frames from the video stream's own start; the two
    differ by this offset when the streams start apart (e.g. an AAC track whose priming
    samples come first)."""
    p = Path(path)
    st = p.stat()
    return _start_offset(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)  # the segments of one full video share it
def _start_offset(path: str, size: int, mtime_ns: int) -> float:
    del size, mtime_ns  # part of the cache key only: a rewritten file is probed again
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
             "stream=start_time:format=start_time", "-of", "json", str(path)],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        info = json.loads(out)
        video = float(info["streams"][0]["start_time"])
        container = float(info["format"]["start_time"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError, TypeError):
        return 0.0
    offset = video - container
    return offset if math.isfinite(offset) else 0.0


def sample_frames(
    path: str | Path,
    n_frames: int,
    fps: float | None = None,
    *,
    seek: bool = True,
    start: float | None = None,
    end: float | None = None,
    index_rounding: str = "round",
) -> SampledFrames:
    """Sample `n_frames` uniformly (`index_rounding`: frames.index_rounding), or (`fps` set)
    one frame per 1/fps seconds; see the module docstring. `seek=False` decodes sequentially
    (for comparisons; the frames are the same).

    `start` / `end` (seconds of presentation time; either may be None: the stream's start /
    end) restrict sampling to the frames whose timestamps fall in [start, end) (see the module
    docstring); without them the whole stream is sampled, exactly as before."""
    p = Path(path)
    check_file(p)
    interval = None
    if start is not None or end is not None:
        lo = 0.0 if start is None else float(start)
        hi = math.inf if end is None else float(end)
        if not (math.isfinite(lo) and lo >= 0 and hi > lo):
            raise ValueError(f"bad frame interval [{start}, {end})")
        shift = video_start_offset(p)  # the interval's time line -> OpenCV's
        interval = (lo - shift, hi - shift)
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"frames.fps must be positive, got {fps}")
        return _sample_by_time(p, float(fps), seek, interval)
    if n_frames < 1:
        raise ValueError(f"frames.n_frames must be at least 1, got {n_frames}")
    if interval is not None:
        return sample_interval_by_index(p, n_frames, *interval, seek, index_rounding)
    return _sample_by_index(p, n_frames, seek, index_rounding)
