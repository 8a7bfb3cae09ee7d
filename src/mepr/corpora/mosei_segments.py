"""CMU-MOSEI segment -> video file: a segment clip known to be that segment, else the full
video with the segment's interval.

The SDK release ships full videos ``<video>.mp4`` and/or segment clips ``<video>_<n>.mp4``,
and optionally segmented transcripts (lines ``video___n___start___end___text``) that link a
segment number n to its interval. `SdkVideos.locate` decides, per labelled segment, which
file (and which part of it) its frames and audio come from.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from mepr.corpora.manifest import LabelRecord, VideoFinder, VideoIndex

# a label interval and a segmented-transcript line are the same segment when both ends agree
# within this many seconds
INTERVAL_TOLERANCE = 0.05
# segment clips matched by rank (no transcript, no full video) must last their interval's
# length within this many seconds
DURATION_TOLERANCE = 0.5


def mp4_duration(path: Path) -> float | None:
    """The duration an MP4/MOV file's movie header (``moov/mvhd``) declares, None if unknown."""
    try:
        with open(path, "rb") as f:
            size_total = os.fstat(f.fileno()).st_size

            def boxes(start: int, stop: int):
                pos = start
                while pos + 8 <= stop:
                    f.seek(pos)
                    size, kind = struct.unpack(">I4s", f.read(8))
                    head = 8
                    if size == 1:
                        (size,) = struct.unpack(">Q", f.read(8))
                        head = 16
                    elif size == 0:
                        size = stop - pos
                    if size < head:
                        return
                    yield kind, pos + head, pos + size
                    pos += size

            for kind, body, stop in boxes(0, size_total):
                if kind != b"moov":
                    continue
                for inner, ibody, _ in boxes(body, stop):
                    if inner == b"mvhd":
                        f.seek(ibody)
                        version = f.read(4)[0]
                        if version == 1:
                            f.seek(16, 1)
                            scale, duration = struct.unpack(">IQ", f.read(12))
                        else:
                            f.seek(8, 1)
                            scale, duration = struct.unpack(">II", f.read(8))
                        return duration / scale if scale else None
    except (OSError, struct.error, IndexError):
        return None
    return None


@dataclass
class Transcript:
    """The SDK's segmented transcript of one video: (segment number, start, end) per line."""

    lines: list[tuple[int, float, float]]

    @classmethod
    def read(cls, path: Path, video: str) -> Transcript:
        lines = []
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = raw.strip().split("___", 4)
            if len(parts) < 4 or parts[0] != video:
                continue
            try:
                lines.append((int(parts[1]), float(parts[2]), float(parts[3])))
            except ValueError:
                continue
        return cls(lines)

    def segment_of(self, start: float, end: float) -> int | None:
        """The number of the line whose interval matches [start, end) within the tolerance."""
        best, best_err = None, INTERVAL_TOLERANCE
        for number, s, e in self.lines:
            err = max(abs(s - start), abs(e - end))
            if err <= best_err:
                best, best_err = number, err
        return best


@dataclass
class Placement:
    """Where a labelled segment's frames and audio come from."""

    path: Path | None
    start: float | None = None  # set when `path` is the full video
    end: float | None = None
    how: str = ""  # "segment", "full", or the reason there is none
    searched: list[Path] = field(default_factory=list)


class SdkVideos:
    """The corpus' full videos and segment clips, and the SDK's segmented transcripts."""

    def __init__(self, full: Path | None, segmented: Path | None, transcripts: Path | None):
        self.folders = [p for p in (full, segmented) if p is not None]
        self._full = VideoIndex(full) if full else None
        self._segmented = VideoIndex(segmented) if segmented else None
        self._transcripts: dict[str, Path] = {}
        if transcripts is not None:
            for dirpath, dirnames, filenames in os.walk(transcripts, followlinks=True):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.endswith(".txt") and not name.startswith("."):
                        self._transcripts.setdefault(name[:-4], Path(dirpath) / name)
        self._clips: dict[str, dict[int, Path]] = {}  # video -> segment number -> clip
        if self._segmented is not None:
            for stem, path in self._segmented.by_stem.items():
                video, sep, number = stem.rpartition("_")
                if sep and number.isdigit():
                    self._clips.setdefault(video, {}).setdefault(int(number), path)
        self.stats: dict[str, int] = {}

    def _count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def full(self, video: str) -> Path | None:
        return self._full.by_stem.get(video) if self._full else None

    def clip(self, video: str, number: int) -> Path | None:
        return self._clips.get(video, {}).get(number)

    def locate(self, video: str, intervals: list[tuple[float, float]]) -> list[Placement]:
        """Placements of a video's labelled segments (`intervals`, sorted by start).

        A segment clip ``<video>_<n>.mp4`` is used only when its number n is known to be that
        segment: from the SDK's segmented transcript (a line whose start and end both agree
        with the label interval within INTERVAL_TOLERANCE), or, when the video has neither a
        transcript nor a full video, by rank, and only if the clips are as many as the labelled
        segments, numbered consecutively, and each lasts its interval's length (within
        DURATION_TOLERANCE, from the MP4 header). Otherwise the full video with the interval,
        which is always right.
        """
        numbers: list[int | None] = [None] * len(intervals)
        full = self.full(video)
        transcript = self._transcripts.get(video)
        why = ""
        if transcript is not None:
            t = Transcript.read(transcript, video)
            numbers = [t.segment_of(s, e) for s, e in intervals]
            self._count("numbered by the transcript", sum(n is not None for n in numbers))
            self._count("not in the transcript", sum(n is None for n in numbers))
        elif full is None and video in self._clips:
            numbers, why = self._by_rank(video, intervals)
        out = []
        for (s, e), number in zip(intervals, numbers, strict=True):
            clip = self.clip(video, number) if number is not None else None
            if clip is not None:
                out.append(Placement(clip, how="segment"))
            elif full is not None:
                out.append(Placement(full, s, e, how="full"))
            elif why:
                out.append(Placement(None, how=why))
            elif transcript is not None and number is None and video in self._clips:
                reason = f"interval not in the segmented transcript {transcript}, no full video"
                out.append(Placement(None, how=reason))
            else:
                out.append(Placement(None, searched=self.folders))
            self._count(
                {"segment": "segment clips", "full": "full video + interval"}.get(
                    out[-1].how, "no video"
                )
            )
        return out

    def _by_rank(
        self, video: str, intervals: list[tuple[float, float]]
    ) -> tuple[list[int | None], str]:
        """Segment numbers by rank, when that is safe (see `locate`), else the reason not."""
        clips = self._clips[video]
        numbers = sorted(clips)
        none: list[int | None] = [None] * len(intervals)
        prefix = "segment clips cannot be matched to the label intervals (no segmented "
        prefix += "transcript, no full video)"
        if len(numbers) != len(intervals):
            return none, f"{prefix}: {len(numbers)} clips, {len(intervals)} labelled segments"
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            listed = ", ".join(str(n) for n in numbers)
            return none, f"{prefix}: clip numbers {listed} are not consecutive"
        for number, (s, e) in zip(numbers, intervals, strict=True):
            duration = mp4_duration(clips[number])
            if duration is None or abs(duration - (e - s)) > DURATION_TOLERANCE:
                got = "unknown" if duration is None else f"{duration:.2f} s"
                return none, (
                    f"{prefix}: clip {video}_{number} lasts {got}, its interval {e - s:.2f} s"
                )
        self._count("numbered by rank", len(numbers))
        return list(numbers), ""


class PlacedVideos(VideoFinder):
    """A finder over placements resolved beforehand (segment id -> Placement)."""

    def __init__(self, placed: dict[str, Placement]):
        super().__init__(lambda record: [])
        self._placed = placed

    def find(self, record: LabelRecord) -> tuple[Path | None, list[Path]]:
        p = self._placed[record.name]
        return p.path, p.searched
