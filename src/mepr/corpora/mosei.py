"""CMU-MOSEI adapter: the CMU-MultimodalSDK release, or the reference's CSV files.

**The SDK release** (what researchers download), found under the corpus root by the official
file names, at any depth (breadth-first, names sorted: the shallowest match wins):

* labels ``CMU_MOSEI_Labels.csd`` and words ``CMU_MOSEI_TimestampedWords.csd``, HDF5 files
  read with h5py: one top-level group (``All Labels``, ``words``; its name does not matter)
  holding ``data/<video>/features`` and ``data/<video>/intervals`` (n x 2, seconds in the full
  video) and ``metadata/<key>`` (JSON strings). Label features are n x 7:
  [sentiment, happy, sad, anger, surprise, disgust, fear]; word features n x 1 byte strings
  (``sp`` marks silence and is skipped);
* videos: full videos ``Raw/Videos/Full/Combined/<video>.mp4`` and/or segment clips
  ``Raw/Videos/Segmented/Combined/<video>_<n>.mp4``;
* optionally the SDK's segmented transcripts ``Raw/Transcript/Segmented/Combined/<video>.txt``
  (lines ``video___n___start___end___text``): they link segment numbers to intervals.

One manifest row per labelled segment (a row of the labels file): id
``<video>_<start:.4f>_<end:.4f>`` (the reference's naming), split from the folds (the SDK's
standard folds shipped in ``data/mosei_folds.json``, or ``folds``), emotions from
`mosei_emotions`, transcript from `segment_transcript`. Its video is the segment clip when
one is known to be that segment (see `SdkVideos.locate`), else the full video with the
segment's interval in the row's ``start``/``end`` (frames and audio are then taken from
inside that interval only).

Config keys (``corpora.<name>``, paths relative to root): ``labels`` (a ``.csd`` file, or a
folder), ``words``, ``full_videos``, ``segmented_videos``, ``segmented_transcripts``,
``folds``; ``videos`` names one folder holding full videos and/or segment clips.

**The reference's CSVs** (checked first: a folder with them is read as before): per-split
files ``{split}_full.csv`` (split = train, dev or val, test) with columns ``video_name``,
``Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise`` (intensities) and ``text``;
or one plain CSV with ``video_id``, ``split``, the emotion columns (``neutral`` optional:
derived as 1 when the six emotions are all 0) and an optional ``text``/``transcript`` column.
Videos are looked up (recursively, by file name with or without extension) under
``{root}/video/{split}/`` as the reference expects, then ``video/``, ``videos/`` and the root;
``videos`` in the corpus config overrides this (``{split}`` in it is substituted).
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mepr.corpora.manifest import (
    CorpusError,
    LabelRecord,
    VideoFinder,
    VideoIndex,
    assemble,
    csv_split_files,
    neutral_of,
    normalise_split,
    read_csv_labels,
    require_root,
    split_folders,
)
from mepr.labels import EMOTIONS, SPLITS

DEFAULT_VIDEOS = ("video/{split}", "video", "videos/{split}", "videos", ".")

LABELS_CSD = "CMU_MOSEI_Labels.csd"
WORDS_CSD = "CMU_MOSEI_TimestampedWords.csd"
FULL_VIDEOS = ("Raw", "Videos", "Full", "Combined")
SEGMENTED_VIDEOS = ("Raw", "Videos", "Segmented", "Combined")
SEGMENTED_TRANSCRIPTS = ("Raw", "Transcript", "Segmented", "Combined")
# the six emotions of a label row, columns 1-6 (column 0 is sentiment), as mepr names them
SDK_EMOTIONS: tuple[str, ...] = ("happiness", "sadness", "anger", "surprise", "disgust", "fear")
SILENCE = "sp"  # the words file's silence token
# a label interval and a segmented-transcript line are the same segment when both ends agree
# within this many seconds
INTERVAL_TOLERANCE = 0.05
# segment clips matched by rank (no transcript, no full video) must last their interval's
# length within this many seconds
DURATION_TOLERANCE = 0.5
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAX_DEPTH = 32  # breadth-first search depth (a guard against symlink loops)


# ---------------------------------------------------------------------------------------------
# labels, words, folds


def mosei_emotions(six_sdk: Sequence[float]) -> list[float]:
    """The 7 emotion targets of one CMU-MOSEI label row, as the reference's CSVs hold them.

    `six_sdk` are the six emotion intensities in the SDK's order (label features columns 1-6:
    happy, sad, anger, surprise, disgust, fear; each in [0, 3]). Returned in mepr.labels.EMOTIONS
    order (neutral, anger, disgust, fear, happiness, sadness, surprise): neutral is 1.0 when
    none of the six emotions is present (all six intensities 0) else 0.0 (`neutral_of`); the
    six are the intensities divided by their sum (they sum to 1), all 0 for a neutral row.
    """
    if len(six_sdk) != len(SDK_EMOTIONS):
        raise ValueError(f"expected {len(SDK_EMOTIONS)} intensities, got {len(six_sdk)}")
    by_name = {e: float(v) for e, v in zip(SDK_EMOTIONS, six_sdk, strict=True)}
    total = sum(by_name.values())
    six = [by_name[e] / total if total > 0 else 0.0 for e in EMOTIONS[1:]]
    return [neutral_of(list(by_name.values())), *six]


def segment_id(video: str, start: float, end: float) -> str:
    """The reference's name of a segment: ``<video>_<start:.4f>_<end:.4f>``."""
    return f"{video}_{start:.4f}_{end:.4f}"


@dataclass
class Csd:
    """One computational sequence: ``data`` maps video -> (features, intervals)."""

    path: Path
    group: str
    data: dict[str, tuple[np.ndarray, np.ndarray]]
    metadata: dict[str, Any]


def is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == _HDF5_SIGNATURE
    except OSError:
        return False


def read_csd(path: str | Path) -> Csd:
    """Read a CMU-MultimodalSDK ``.csd`` file (HDF5) whole; CorpusError when it is not one."""
    import h5py

    p = Path(path)
    try:
        h5 = h5py.File(p, "r")
    except OSError as e:
        raise CorpusError(f"{p}: not a readable computational sequence (.csd, HDF5): {e}") from e
    with h5:
        groups = sorted(k for k in h5 if isinstance(h5[k], h5py.Group))
        if len(groups) != 1:
            raise CorpusError(
                f"{p}: expected one top-level group (e.g. 'All Labels'), found "
                f"{len(groups)}: {', '.join(groups) or 'none'}"
            )
        root = h5[groups[0]]
        if "data" not in root:
            raise CorpusError(f"{p}: group '{groups[0]}' has no 'data' group")
        data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for video in sorted(root["data"]):
            entry = root["data"][video]
            if "features" not in entry or "intervals" not in entry:
                raise CorpusError(f"{p}: data/{video} lacks 'features' or 'intervals'")
            data[video] = (entry["features"][()], entry["intervals"][()])
        metadata: dict[str, Any] = {}
        for key in sorted(root.get("metadata", {})):
            raw = root["metadata"][key][()]
            value = raw[0] if getattr(raw, "shape", ()) else raw
            value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            try:
                metadata[key] = json.loads(value)
            except (TypeError, ValueError):
                metadata[key] = str(value)
    return Csd(p, groups[0], data, metadata)


def _token(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    return str(value).strip()


class Words:
    """The words of each video (silence dropped), with their midpoints, for `segment_transcript`."""

    def __init__(self, csd: Csd):
        self._by_video: dict[str, tuple[np.ndarray, list[str]]] = {}
        for video, (features, intervals) in csd.data.items():
            tokens = [_token(f) for f in features]
            iv = np.asarray(intervals, np.float64).reshape(-1, 2)
            keep = [i for i, t in enumerate(tokens) if t and t != SILENCE]
            mids = (iv[keep, 0] + iv[keep, 1]) / 2.0 if keep else np.zeros(0)
            order = np.argsort(mids, kind="stable")
            self._by_video[video] = (mids[order], [tokens[keep[i]] for i in order])

    def __contains__(self, video: str) -> bool:
        return video in self._by_video

    def segment_transcript(self, video: str, start: float, end: float) -> str | None:
        """The words of `video` whose midpoint ((word start + word end) / 2) lies in
        [start, end), in time order, joined by spaces; None when there are none. (A word
        straddling a segment boundary goes to the segment holding most of it.)"""
        if video not in self._by_video:
            return None
        mids, tokens = self._by_video[video]
        lo, hi = np.searchsorted(mids, [start, end], side="left")
        return " ".join(tokens[lo:hi]) or None


def standard_folds() -> dict[str, list[str]]:
    """The SDK's standard folds (train / dev / test video ids) shipped with mepr."""
    text = resources.files("mepr.corpora").joinpath("data/mosei_folds.json").read_text()
    return json.loads(text)


def read_folds(path: Path | None) -> dict[str, str]:
    """video id -> split, from a JSON ``{"train": [...], "dev": [...], "test": [...]}`` (other
    spellings of the splits accepted) or, without `path`, the shipped standard folds."""
    if path is None:
        raw: Any = standard_folds()
    else:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CorpusError(f"{path}: not a readable folds JSON ({e})") from e
    where = path or "the standard folds"
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: expected an object split -> [video ids]")
    out: dict[str, str] = {}
    for key, ids in raw.items():
        split = normalise_split(str(key))
        if split is None or not isinstance(ids, list):
            raise CorpusError(f"{where}: '{key}' is not a split with a list of video ids")
        for vid in ids:
            vid = str(vid)
            if out.setdefault(vid, split) != split:
                raise CorpusError(f"{where}: video '{vid}' is in folds {out[vid]} and {split}")
    return out


# ---------------------------------------------------------------------------------------------
# finding the SDK files


def _bfs(
    base: Path, files: Iterable[str] = (), dirs: Iterable[tuple[str, ...]] = ()
) -> tuple[dict[str, Path], dict[tuple[str, ...], Path]]:
    """Breadth-first below `base` (names sorted, hidden entries skipped): the shallowest file
    named each of `files`, the shallowest folder whose path ends with each of `dirs`."""
    want_files, want_dirs = set(files), list(dirs)
    found_files: dict[str, Path] = {}
    found_dirs: dict[tuple[str, ...], Path] = {}
    for suffix in want_dirs:  # the usual place first: directly below base
        if base.joinpath(*suffix).is_dir():
            found_dirs[suffix] = base.joinpath(*suffix)
    level, depth, seen = [base], 0, {os.path.realpath(base)}
    while level and depth < _MAX_DEPTH:
        if want_files <= found_files.keys() and len(found_dirs) == len(want_dirs):
            break
        below: list[Path] = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    is_dir = e.is_dir()
                except OSError:
                    continue
                if is_dir:
                    path = Path(e.path)
                    real = os.path.realpath(path)
                    if real in seen:  # a symlink back up the tree
                        continue
                    seen.add(real)
                    for suffix in want_dirs:
                        if suffix not in found_dirs and path.parts[-len(suffix) :] == suffix:
                            found_dirs[suffix] = path
                    below.append(path)
                elif e.name in want_files and e.name not in found_files:
                    found_files[e.name] = Path(e.path)
        level, depth = below, depth + 1
    return found_files, found_dirs


def _configured(corpus: str, root: Path, cfg: Mapping[str, Any], key: str, kind: str) -> Path:
    path = root / str(cfg[key])
    ok = path.is_file() if kind == "file" else path.is_dir()
    if not ok:
        raise CorpusError(f"corpus '{corpus}': {key} {kind} {path} does not exist")
    return path


def _is_csv_layout(folder: Path) -> bool:
    return bool(csv_split_files(folder)) or (folder / "labels.csv").is_file()


def sdk_labels(root: Path, cfg: Mapping[str, Any]) -> Path | None:
    """The SDK labels file the corpus config points at or that lies below root; None when the
    config or the folder is the reference's CSV layout, or nothing is found."""
    labels = cfg.get("labels")
    target = root / str(labels) if labels else root
    if target.is_file():
        return target if target.suffix.lower() == ".csd" or is_hdf5(target) else None
    if not target.is_dir() or _is_csv_layout(target):
        return None
    return _bfs(target, [LABELS_CSD])[0].get(LABELS_CSD)


def label_sources(corpus_cfg: Mapping[str, Any]) -> list[str] | None:
    """The SDK files a manifest is built from (labels, words, a configured folds file), or
    None when the corpus is not in the SDK layout. Never raises: a words file not found is
    returned where it is expected, so Snakemake names it."""
    root = Path(str(corpus_cfg["root"]))
    labels = sdk_labels(root, corpus_cfg)
    if labels is None:
        return None
    out = [str(labels)]
    if corpus_cfg.get("words"):
        out.append(str(root / str(corpus_cfg["words"])))
    else:
        words = _find_words(root, labels)
        out.append(str(words or root / WORDS_CSD))
    if corpus_cfg.get("folds"):
        out.append(str(root / str(corpus_cfg["folds"])))
    return out


def _find_words(root: Path, labels: Path) -> Path | None:
    beside = labels.parent / WORDS_CSD
    return beside if beside.is_file() else _bfs(root, [WORDS_CSD])[0].get(WORDS_CSD)


# ---------------------------------------------------------------------------------------------
# segment -> video file


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


class _Placed(VideoFinder):
    """A finder over placements resolved beforehand (segment id -> Placement)."""

    def __init__(self, placed: dict[str, Placement]):
        super().__init__(lambda record: [])
        self._placed = placed

    def find(self, record: LabelRecord) -> tuple[Path | None, list[Path]]:
        p = self._placed[record.name]
        return p.path, p.searched


# ---------------------------------------------------------------------------------------------
# the adapter


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _sdk_dirs(
    name: str, root: Path, cfg: Mapping[str, Any]
) -> tuple[Path | None, Path | None, Path | None]:
    """(full videos, segment clips, segmented transcripts) folders: configured or found."""
    keys = {"full_videos": FULL_VIDEOS, "segmented_videos": SEGMENTED_VIDEOS}
    keys["segmented_transcripts"] = SEGMENTED_TRANSCRIPTS
    configured = {k: _configured(name, root, cfg, k, "folder") for k in keys if cfg.get(k)}
    videos = _configured(name, root, cfg, "videos", "folder") if cfg.get("videos") else None
    if videos is not None:  # one folder with full videos and/or clips, by exact file stem
        configured.setdefault("full_videos", videos)
        configured.setdefault("segmented_videos", videos)
    missing = [suffix for k, suffix in keys.items() if k not in configured]
    found = _bfs(root, dirs=missing)[1] if missing else {}
    out = [configured.get(k) or found.get(suffix) for k, suffix in keys.items()]
    return out[0], out[1], out[2]


def build_sdk(
    name: str, root: Path, cfg: Mapping[str, Any], labels_path: Path, n_shards: int
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Manifest rows of the SDK release (labels file found or configured at `labels_path`)."""
    task = str(cfg.get("task") or "emotion")
    failures: list[tuple[str, str]] = []
    if cfg.get("words"):
        words_path = _configured(name, root, cfg, "words", "file")
    else:
        words_path = _find_words(root, labels_path)
        if words_path is None:
            raise CorpusError(
                f"corpus '{name}': no word file: expected {WORDS_CSD} beside {labels_path} or "
                f"anywhere below {root} (searched recursively); set corpora.{name}.words"
            )
    folds_path = _configured(name, root, cfg, "folds", "file") if cfg.get("folds") else None
    folds = read_folds(folds_path)
    folds_name = f"folds {folds_path}" if folds_path else "the standard folds"
    labels = read_csd(labels_path)
    words = Words(read_csd(words_path))
    full_dir, seg_dir, txt_dir = _sdk_dirs(name, root, cfg)
    if full_dir is None and seg_dir is None:
        from mepr.corpora.archives import packed_hint

        hint = packed_hint(root, [f"{v}.mp4" for v in labels.data])  # e.g. CMU_MOSEI.zip
        raise CorpusError(
            f"corpus '{name}': no video folder: searched below {root} for "
            f"{'/'.join(FULL_VIDEOS)} and {'/'.join(SEGMENTED_VIDEOS)}; "
            + (hint if hint else f"set corpora.{name}.full_videos / segmented_videos")
        )
    videos = SdkVideos(full_dir, seg_dir, txt_dir)
    records: list[LabelRecord] = []
    placed: dict[str, Placement] = {}
    outside: list[str] = []
    per_split = {s: [0, 0] for s in SPLITS}  # split -> [videos, segments]
    for video, (features, intervals) in labels.data.items():
        feats = np.asarray(features, np.float64)
        ivs = np.asarray(intervals, np.float64)
        if feats.ndim != 2 or feats.shape[1] < 7 or ivs.shape != (len(feats), 2):
            failures.append(
                (video, f"labels: features {feats.shape}, intervals {ivs.shape}: not n x 7, n x 2")
            )
            continue
        split = folds.get(video)
        if split is None:
            outside.append(video)
            failures.append((video, f"not in {folds_name} ({len(feats)} labelled segments)"))
            continue
        rows = []
        for i in np.lexsort((ivs[:, 1], ivs[:, 0])):
            s, e = float(ivs[i, 0]), float(ivs[i, 1])
            six = feats[i, 1:7]
            sid = segment_id(video, s, e)
            if not (math.isfinite(s) and math.isfinite(e) and e > s and s >= 0):
                failures.append((sid, f"bad label interval [{s}, {e})"))
            elif not np.all(np.isfinite(six)):
                failures.append((sid, "missing label value(s)"))
            else:
                rows.append((sid, s, e, six))
        if not rows:
            continue
        per_split[split][0] += 1
        per_split[split][1] += len(rows)
        for (sid, s, e, six), where in zip(
            rows, videos.locate(video, [(s, e) for _, s, e, _ in rows]), strict=True
        ):
            if where.path is None and where.how:
                failures.append((sid, where.how))
                continue
            placed[sid] = where
            records.append(
                LabelRecord(
                    name=sid,
                    split=split,
                    split_dir=split,
                    emotion=mosei_emotions(six.tolist()),
                    transcript=words.segment_transcript(video, s, e),
                    start=where.start,
                    end=where.end,
                )
            )
    unlabelled = sum(1 for v in folds if v not in labels.data)
    _say(
        f"corpus '{name}': {labels_path.name}: {len(labels.data)} videos; {folds_name}: "
        + ", ".join(f"{s} {v} videos / {n} segments" for s, (v, n) in per_split.items())
        + f"; {len(outside)} labelled videos not in the folds, {unlabelled} fold videos "
        "without labels"
    )
    _say(
        f"corpus '{name}': videos from {', '.join(str(f) for f in videos.folders)}"
        + (f", segment numbers from {txt_dir}" if txt_dir else ", no segmented transcripts")
        + ": "
        + ", ".join(f"{k} {v}" for k, v in sorted(videos.stats.items()) if v)
    )
    empty = [s for s in SPLITS if per_split[s][1] == 0]
    if empty:
        raise CorpusError(
            f"corpus '{name}': no labelled segment in split(s) {', '.join(empty)} "
            f"({labels_path} has none of the videos of that fold in {folds_name})"
        )
    if not any(p.path is not None for p in placed.values()):
        raise CorpusError(
            f"corpus '{name}': no video file found for any labelled segment (searched "
            f"{', '.join(str(f) for f in videos.folders)})"
        )
    return assemble(name, task, records, _Placed(placed), n_shards, failures), failures


def build(
    name: str, cfg: dict[str, Any], n_shards: int
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    root = require_root(name, Path(cfg["root"]))
    labels = cfg.get("labels")
    target = root / labels if labels else root
    sdk = sdk_labels(root, cfg)
    if sdk is not None:
        return build_sdk(name, root, cfg, sdk, n_shards)
    if target.is_dir() and not _is_csv_layout(target):
        raise CorpusError(
            f"corpus '{name}': no label file: expected {LABELS_CSD} (the CMU-MultimodalSDK "
            f"release) anywhere below {target} (searched recursively), or the reference's "
            f"{target}/{{train,dev,test}}_full.csv, or {target / 'labels.csv'}"
        )
    task = cfg.get("task") or "emotion"
    failures: list[tuple[str, str]] = []
    records = read_csv_labels(name, root, labels, task, failures, "labels.csv")
    finder = VideoFinder(split_folders(root, cfg.get("videos"), DEFAULT_VIDEOS))
    return assemble(name, task, records, finder, n_shards, failures), failures
