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

import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mepr.corpora.csv_labels import csv_split_files, read_csv_labels
from mepr.corpora.find import Search
from mepr.corpora.manifest import (
    REFERENCE_VIDEOS,
    CorpusError,
    LabelRecord,
    VideoFinder,
    assemble,
    require_root,
    split_folders,
)
from mepr.corpora.mosei_csd import (
    LABELS_CSD,
    WORDS_CSD,
    Words,
    is_hdf5,
    mosei_emotions,
    read_csd,
    read_folds,
    segment_id,
    standard_folds,
)
from mepr.corpora.mosei_segments import PlacedVideos, Placement, SdkVideos
from mepr.labels import SPLITS

FULL_VIDEOS = ("Raw", "Videos", "Full", "Combined")
SEGMENTED_VIDEOS = ("Raw", "Videos", "Segmented", "Combined")
SEGMENTED_TRANSCRIPTS = ("Raw", "Transcript", "Segmented", "Combined")
# How the SDK files are looked up below the root: visible entries only, symlinked folders
# followed (each real folder once), at most 32 levels deep (a guard against symlink loops),
# and the first of equally shallow matches (breadth-first, names sorted) wins.
SDK_SEARCH = Search(hidden=False, follow_links=True, max_depth=32)


# ---------------------------------------------------------------------------------------------
# finding the SDK files


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
    return SDK_SEARCH.file(target, LABELS_CSD)


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
    return beside if beside.is_file() else SDK_SEARCH.file(root, WORDS_CSD)


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
    found = SDK_SEARCH.folders(root, missing) if missing else {}
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
    return assemble(name, task, records, PlacedVideos(placed), n_shards, failures), failures


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
    finder = VideoFinder(split_folders(root, cfg.get("videos"), REFERENCE_VIDEOS))
    return assemble(name, task, records, finder, n_shards, failures), failures


# the SDK file names and label helpers are also importable from here, the adapter's module
__all__ = [
    "FULL_VIDEOS",
    "LABELS_CSD",
    "SDK_SEARCH",
    "SEGMENTED_TRANSCRIPTS",
    "SEGMENTED_VIDEOS",
    "WORDS_CSD",
    "build",
    "build_sdk",
    "label_sources",
    "mosei_emotions",
    "read_csd",
    "sdk_labels",
    "segment_id",
    "standard_folds",
]
