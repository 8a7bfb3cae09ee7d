"""Shared machinery of the corpus adapters: label records -> manifest rows (shards.MANIFEST).

An adapter reads its corpus' label files into `LabelRecord`s (the reference's CSV files
through `mepr.corpora.csv_labels`) and names, per record, the folders where its video may be; `assemble` finds the files, and turns each record into one
manifest row or one (video_id, reason) failure.  Only the standard library is imported here
so that building a manifest stays cheap.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mepr.labels import SPLITS

VIDEO_EXTS: tuple[str, ...] = (
    ".mp4",
    ".avi",
    ".mkv",
    ".webm",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
)

SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "trn": "train",
    "dev": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "development": "dev",
    "test": "test",
    "testing": "test",
    "tst": "test",
}


class CorpusError(ValueError):
    """A corpus cannot be read at all: missing root or label file, unusable label columns."""


@dataclass
class LabelRecord:
    name: str  # the video as the label file names it (maybe with extension / subfolder)
    split: str  # train | dev | test
    split_dir: str  # the split as the corpus spells it (e.g. "val"), for folder lookup
    emotion: list[float] | None = None
    traits: list[float] | None = None
    transcript: str | None = None
    # seconds: the labelled part [start, end) of the video (None: all of it)
    start: float | None = None
    end: float | None = None

    @property
    def video_id(self) -> str:
        return video_id_of(self.name)


def normalise_name(column: str) -> str:
    """A label-file name compared loosely: lower case, runs of '-' and spaces -> '_'."""
    return re.sub(r"[\s\-]+", "_", column.strip().lower())


def normalise_split(name: str) -> str | None:
    """train/dev/test for any usual spelling (training, val, validation, ...), else None."""
    return SPLIT_ALIASES.get(normalise_name(name))


def split_spellings(split: str) -> list[str]:
    """The folder names a split may have (``dev`` -> dev, val, valid, validation, ...)."""
    return [alias for alias, canon in SPLIT_ALIASES.items() if canon == split]


def strip_video_ext(name: str) -> str:
    base, ext = os.path.splitext(name)
    return base if ext.lower() in VIDEO_EXTS else name


def video_id_of(name: str) -> str:
    """The id of a video named ``name`` in a label file: its file name minus a video extension."""
    return strip_video_ext(os.path.basename(name.replace("\\", "/")))


def parse_score(value: Any) -> float | None:
    """A finite float, or None for an empty / NaN / unparsable cell."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def neutral_of(six: Sequence[float]) -> float:
    """MOSEI has no neutral score: a clip is neutral iff none of the six emotions is present."""
    return 1.0 if all(v == 0.0 for v in six) else 0.0


def require_root(corpus: str, root: Path) -> Path:
    if not root.is_dir():
        raise CorpusError(f"corpus '{corpus}': root folder {root} does not exist")
    return root


# ---------------------------------------------------------------------------------------------
# finding the videos


class VideoIndex:
    """All video files under a folder (recursively), by file name and by name minus extension."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                if fname.startswith(".") or os.path.splitext(fname)[1].lower() not in VIDEO_EXTS:
                    continue
                path = Path(dirpath) / fname
                self.by_name.setdefault(fname, path)
                self.by_stem.setdefault(strip_video_ext(fname), path)

    def find(self, name: str) -> Path | None:
        name = name.replace("\\", "/")
        direct = self.folder / name
        if direct.is_file():
            return direct
        base = os.path.basename(name)
        return self.by_name.get(base) or self.by_stem.get(strip_video_ext(base))


class VideoFinder:
    """Looks a record's video up in the first existing of its candidate folders."""

    def __init__(self, candidates: Callable[[LabelRecord], Sequence[Path]]):
        self._candidates = candidates
        self._indexes: dict[Path, VideoIndex | None] = {}

    def _index(self, folder: Path) -> VideoIndex | None:
        if folder not in self._indexes:
            self._indexes[folder] = VideoIndex(folder) if folder.is_dir() else None
        return self._indexes[folder]

    def find(self, record: LabelRecord) -> tuple[Path | None, list[Path]]:
        searched: list[Path] = []
        for folder in self._candidates(record):
            index = self._index(folder)
            if index is None:
                continue
            searched.append(folder)
            hit = index.find(record.name)
            if hit is not None:
                return hit, searched
        return None, searched


# where the reference implementation keeps a corpus' videos (relative to its root), in the
# order they are tried: the adapters' default when ``videos`` is not configured
REFERENCE_VIDEOS: tuple[str, ...] = ("video/{split}", "video", "videos/{split}", "videos", ".")


def split_folders(root: Path, videos: str | None, defaults: Sequence[str]):
    """Candidate folders for a record: ``videos`` (``{split}`` substituted) if configured, else
    the adapter's ``defaults`` (patterns relative to root, ``{split}`` = each spelling)."""

    def candidates(record: LabelRecord) -> list[Path]:
        patterns = [videos] if videos else list(defaults)
        spellings = [record.split_dir, *split_spellings(record.split)]
        out: list[Path] = []
        for pattern in patterns:
            names = (
                [pattern.format(split=s) for s in spellings] if "{split}" in pattern else [pattern]
            )
            for n in names:
                p = root / n if n not in ("", ".") else root
                if p not in out:
                    out.append(p)
        return out

    return candidates


# ---------------------------------------------------------------------------------------------
# records -> manifest rows


def assemble(
    corpus: str,
    task: str,
    records: Iterable[LabelRecord],
    finder: VideoFinder,
    n_shards: int,
    failures: list[tuple[str, str]],
) -> list[dict[str, Any]]:
    """One manifest row per record whose video exists; the others go to ``failures``."""
    from mepr.shards import shard_of

    if n_shards < 1:
        raise ValueError("n_shards must be at least 1")
    rows: dict[str, dict[str, Any]] = {}
    first_split: dict[str, str] = {}
    listed = dict.fromkeys(SPLITS, 0)
    found = dict.fromkeys(SPLITS, 0)
    for rec in records:
        vid = rec.video_id
        if vid in first_split:
            first = first_split[vid]
            if first != rec.split:
                failures.append((vid, f"listed in splits {first} and {rec.split}; kept {first}"))
            continue  # per-frame label files repeat a video: its first row is kept
        first_split[vid] = rec.split
        if rec.split not in SPLITS:
            failures.append((vid, f"unknown split '{rec.split}'"))
            continue
        listed[rec.split] += 1
        path, searched = finder.find(rec)
        if path is None:
            where = ", ".join(str(p) for p in searched) or "no existing video folder"
            failures.append((vid, f"video file not found (searched {where})"))
            continue
        size = path.stat().st_size
        if size == 0:
            failures.append((vid, f"empty video file {path}"))
            continue
        rows[vid] = {
            "video_id": vid,
            "corpus": corpus,
            "path": os.path.abspath(path),
            "split": rec.split,
            "task": task,
            "size_bytes": int(size),
            "shard": shard_of(vid, n_shards),
            "emotion": [float(v) for v in rec.emotion] if rec.emotion is not None else None,
            "traits": [float(v) for v in rec.traits] if rec.traits is not None else None,
            "transcript": rec.transcript or None,
            "start": None if rec.start is None else float(rec.start),
            "end": None if rec.end is None else float(rec.end),
        }
        found[rec.split] += 1
    _report(corpus, listed, found)
    return [rows[k] for k in sorted(rows)]


def _report(corpus: str, listed: dict[str, int], found: dict[str, int]) -> None:
    """One stderr line: per split, the labelled videos listed and those whose file was found."""
    counts = ", ".join(f"{s} {found[s]}/{listed[s]}" for s in SPLITS)
    print(f"corpus '{corpus}': labelled videos found/listed per split: {counts}", file=sys.stderr)
