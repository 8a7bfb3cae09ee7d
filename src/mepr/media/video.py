"""Decode a video and sample frames from it: n frames spread uniformly, or a fixed rate.

Two ways to choose the frames (`frames` section of the config):

* ``n_frames`` (default): frame indices ``round(linspace(0, total - 1, n))`` over the frames the
  stream really has, as the reference implementation does; a video shorter than n frames
  repeats frames.
* ``fps`` (wins when set): one frame per ``1 / fps`` seconds of presentation time, starting at
  0: for target time t, the first frame whose timestamp is at least ``t - 0.5 / native_fps``
  (for a constant-frame-rate video, the frame nearest t). A frame that covers several targets
  (sampling faster than the video, or a variable-frame-rate gap) is repeated, so the steps
  stay on a regular time grid. The number of steps grows with the video's duration.

An interval [start, end) (seconds; a segment of a long video, e.g. a CMU-MOSEI utterance
inside its full video) restricts both modes to the frames whose presentation times fall in
it (``start - 1e-4 <= t < end - 1e-4``: times are rounded to the time base; t counted from the
file's start, as ffmpeg's ``-ss`` counts, see `video_start_offset`): ``n_frames``
spreads the indices uniformly over those frames, ``fps`` puts its grid at ``start + k / fps``
while that is before ``end``. The reader reaches ``start`` by seeking (as below) instead of
decoding the video from its beginning. On a stream whose frame k shows at ``k / fps`` the
frames inside are predicted from the rate and each frame decoded on the way is checked
against the prediction (one pass); otherwise (variable frame rate, an offset start, a miscounted
container) one pass lists the frames inside and a second retrieves the sampled ones. Nothing
is re-encoded and no clip file is written; the timestamps returned stay OpenCV's, as for a
whole video. An interval
ending more than a frame after the last decodable frame is noted.

What "decoding only what is needed" means here: frames are *grabbed* (decoded, never
converted to RGB) up to each sampled frame, which alone is *retrieved*. When the next sampled
frame is far ahead (at least ``SEEK_MIN_GAP`` frames) the reader seeks instead, which skips
decoding whole keyframe intervals (OpenCV seeks to the keyframe before the target, then
decodes forward to the exact frame). Seeking pays only when keyframes are closer together than
the gap, so the reader times each seek against the grabs it replaced and stops seeking in a
video where a seek did not pay. Seeks are verified (the landed frame's timestamp must match
its index on a constant frame rate) and used only on streams whose frame intervals look
constant; a verified seek gives bit-identical frames to decoding sequentially.

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
import time
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
# A frame belongs to an interval [start, end) when start - _EPS <= timestamp < end - _EPS
# (container times are rounded to the stream's time base).
_EPS = 1e-4


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


def uniform_indices(total: int, n: int) -> np.ndarray:
    """n indices spread over [0, total-1] (repeats when the video is shorter than n frames)."""
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.linspace(0, total - 1, n).round().astype(np.int64)


def _check_file(p: Path) -> None:
    if not p.exists():
        raise MediaError("file not found")
    if p.stat().st_size == 0:
        raise MediaError("empty file")


class _Reader:
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

    def __enter__(self) -> _Reader:
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


class _Restart(Exception):
    """Sampling must start again (unverified seek, or a better frame count is now known)."""


def _count_frames(path: Path) -> int:
    with _Reader(path, seek=False) as r:
        while r.grab():
            pass
        return r.index + 1


def _collect_indices(
    r: _Reader, total: int, n: int
) -> tuple[dict[int, tuple[float, np.ndarray]], int]:
    """Retrieve the frames uniform_indices(total, n) names; returns them and the true count if
    the stream turned out longer or shorter than `total` (else 0)."""
    got: dict[int, tuple[float, np.ndarray]] = {}
    for target in sorted(set(uniform_indices(total, n).tolist())):
        if r.can_seek(target) and not r.seek(target):
            raise _Restart
        while r.index < target:
            if not r.grab():
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


def _sample_by_index(p: Path, n: int, seek: bool) -> SampledFrames:
    notes: list[str] = []
    with _Reader(p, seek) as r:
        reported, fps = r.reported, r.native_fps
    total = reported
    if total <= 0:
        total = _count_frames(p)
        notes.append(f"container reports no frame count; {total} frames decoded")
    for _attempt in range(4):
        if total <= 0:
            break
        with _Reader(p, seek) as r:
            try:
                got, true_count = _collect_indices(r, total, n)
            except _Restart:
                seek = False  # the seek could not be verified: decode sequentially
                continue
            seeks = r.seeks
        if true_count and true_count != total:
            how = "only" if true_count < total else "but"
            notes.append(f"container reports {total} frames, {how} {true_count} decode")
            total = true_count
            continue
        targets = [int(t) for t in uniform_indices(total, n)]
        if all(t in got for t in targets):
            picks = [(t, *got[t]) for t in targets]
            return _sampled(picks, fps, total, reported, notes, seeks)
    raise MediaError("no decodable video frames")


def _interval_text(start: float, end: float) -> str:
    return f"[{start:.3f}, {end:.3f}) s"


def _no_frame_in(start: float, end: float, last_time: float | None) -> str:
    if last_time is None:
        return "no decodable video frames"
    return f"no video frame in {_interval_text(start, end)} (last frame at {last_time:.3f} s)"


def _note_past_end(
    notes: list[str], start: float, end: float, last_time: float | None, fps: float
) -> None:
    """Note an interval that ends more than a frame after the last frame that decodes."""
    frame = 1.0 / fps if fps > 0 else 0.04
    if last_time is not None and end < math.inf and end > last_time + 1.5 * frame:
        notes.append(
            f"interval {_interval_text(start, end)} ends after the last decodable frame "
            f"({last_time:.3f} s)"
        )


def _reach(r: _Reader, t: float) -> bool:
    """Grab forward to the first frame whose timestamp is at least ``t`` (less _EPS), seeking
    there when it pays; False when the stream ends first."""
    while r.index < 1:  # two frames: one interval to judge the frame rate by
        if r.index >= 0 and r.timestamp() >= t - _EPS:
            return True
        if not r.grab():
            return False
    if r.native_fps > 0:
        # the frame before the first one at t or later (frame k shows at k / fps)
        want = int(math.floor((t - _EPS) * r.native_fps)) - 1
        if r.can_seek(want) and not r.seek(want):
            raise _Restart
    while r.timestamp() < t - _EPS:
        if not r.grab():
            return False
    return True


_Picks = tuple[list[tuple[int, float, np.ndarray]], float, int, int, list[str], int]


def _interval_predicted(p: Path, n: int, start: float, end: float, seek: bool) -> _Picks | None:
    """Uniform sampling inside [start, end) in one pass, for a stream whose frame k shows at
    k / fps: the frames inside are predicted from the rate, and every frame grabbed on the way
    is checked against that prediction. None when the stream does not follow it (variable
    rate, an offset start, fewer frames than claimed): the caller then scans the interval."""
    with _Reader(p, seek) as r:
        fps = r.native_fps
        if not _reach(r, start):
            raise MediaError(_no_frame_in(start, end, r.timestamp() if r.index >= 0 else None))
        first, t_first = r.index, r.timestamp()
        if t_first >= end - _EPS:
            raise MediaError(_no_frame_in(start, end, t_first))

        def on_time() -> bool:
            return r.pts_ok and abs(r.timestamp() * fps - r.index) <= 0.25

        if not (fps > 0 and end < math.inf and not r.irregular and on_time()):
            return None
        last = int(math.ceil((end - _EPS) * fps)) - 1  # the last frame showing before end
        if r.reported:
            last = min(last, r.reported - 1)
        total = last - first + 1
        if total < 1:
            return None
        targets = [first + int(k) for k in uniform_indices(total, n)]
        got: dict[int, tuple[float, np.ndarray]] = {}
        for target in sorted(set(targets)):
            if r.can_seek(target) and not r.seek(target):
                raise _Restart
            while r.index < target:
                if not r.grab() or r.irregular or not on_time():
                    return None
            if not on_time():
                return None
            image = r.retrieve()
            if image is None:
                return None
            got[target] = (r.timestamp(), image)
        notes: list[str] = []
        if r.grab():  # the frame after the last one must be past the interval
            if r.timestamp() < end - _EPS:
                return None
        else:
            _note_past_end(notes, start, end, got[last][0], fps)
        picks = [(t, *got[t]) for t in targets]
        return picks, fps, total, r.reported, notes, r.seeks


def _interval_scanned(p: Path, n: int, start: float, end: float, seek: bool) -> _Picks:
    """Uniform sampling inside [start, end) for any stream: one pass lists the frames whose
    timestamps fall inside, a second one retrieves the sampled ones."""
    notes: list[str] = []
    with _Reader(p, seek) as r:
        if not _reach(r, start):
            raise MediaError(_no_frame_in(start, end, r.timestamp() if r.index >= 0 else None))
        inside: list[tuple[int, float]] = []
        while r.timestamp() < end - _EPS:
            inside.append((r.index, r.timestamp()))
            if not r.grab():
                _note_past_end(notes, start, end, inside[-1][1], r.native_fps)
                break
        reported, fps = r.reported, r.native_fps
    if not inside:
        raise MediaError(_no_frame_in(start, end, None))
    while inside:
        targets = [inside[int(k)][0] for k in uniform_indices(len(inside), n)]
        got: dict[int, tuple[float, np.ndarray]] = {}
        with _Reader(p, seek) as r:
            for target in sorted(set(targets)):
                if r.can_seek(target) and not r.seek(target):
                    raise _Restart
                while r.index < target:
                    if not r.grab():
                        break
                image = r.retrieve() if r.index == target else None
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
    raise MediaError(_no_frame_in(start, end, None))


def _sample_interval_by_index(
    p: Path, n: int, start: float, end: float, seek: bool
) -> SampledFrames:
    for _attempt in range(2):
        try:
            out = _interval_predicted(p, n, start, end, seek)
            if out is None:
                out = _interval_scanned(p, n, start, end, seek)
        except _Restart:
            seek = False  # a seek could not be verified: decode sequentially
            continue
        return _sampled(*out)
    raise MediaError("no decodable video frames")


def _sample_by_time(
    p: Path, rate: float, seek: bool, interval: tuple[float, float] | None = None
) -> SampledFrames:
    notes: list[str] = []
    start, end = interval if interval is not None else (0.0, math.inf)
    for _attempt in range(2):
        picks: list[tuple[int, float, np.ndarray]] = []
        with _Reader(p, seek) as r:
            step = 1.0 / rate
            # a frame counts for target t from half a nominal frame interval before t
            slack = 0.5 / r.native_fps if r.native_fps > 0 else 0.5 * step
            k, last, ended = 0, None, False
            try:
                while True:
                    t = start + k * step
                    lower = t - slack
                    if interval is not None:  # only frames inside [start, end)
                        if t >= end - _EPS:
                            break
                        lower = max(lower, start - _EPS)
                    want = int(math.floor(lower * r.native_fps)) if r.native_fps else 0
                    if r.can_seek(want):
                        if not r.seek(want):
                            raise _Restart
                        last = None  # a new frame: the cached image is stale
                    if r.index < 0 or r.timestamp() < lower:
                        if not r.grab():
                            ended = True
                            break
                        last = None
                        continue
                    if r.timestamp() >= end - _EPS:
                        break  # the next frame is past the interval
                    if last is None:
                        image = r.retrieve()
                        if image is None:
                            break
                        last = image
                    picks.append((r.index, r.timestamp(), last))
                    k += 1
            except _Restart:
                seek = False
                continue
            reported, fps, seeks, count = r.reported, r.native_fps, r.seeks, r.index + 1
            last_time = r.timestamp() if r.index >= 0 else None
        if interval is not None:
            if not picks:
                raise MediaError(_no_frame_in(start, end, last_time))
            if ended:
                _note_past_end(notes, start, end, last_time, fps)
            count = picks[-1][0] - picks[0][0] + 1
            return _sampled(picks, fps, count, reported, notes, seeks)
        if not picks:
            raise MediaError("no decodable video frames")
        if reported and count < reported:
            notes.append(f"container reports {reported} frames, only {count} decode")
        return _sampled(picks, fps, count, reported, notes, seeks)
    raise MediaError("no decodable video frames")


def _sampled(
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
) -> SampledFrames:
    """Sample `n_frames` uniformly, or (`fps` set) one frame per 1/fps seconds; see the module
    docstring. `seek=False` decodes sequentially (for comparisons; the frames are the same).

    `start` / `end` (seconds of presentation time; either may be None: the stream's start /
    end) restrict sampling to the frames whose timestamps fall in [start, end) (see the module
    docstring); without them the whole stream is sampled, exactly as before."""
    p = Path(path)
    _check_file(p)
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
        return _sample_interval_by_index(p, n_frames, *interval, seek)
    return _sample_by_index(p, n_frames, seek)
