"""The reference's CSV label files -> label records: per-split ``{split}_full.csv`` files, or
one CSV with a split column.

Columns are found by name, case-insensitively and with the usual synonyms (an id column, a
split column unless the file name names the split, one column per label, an optional text
column): see `read_csv_records`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

from mepr.corpora.manifest import (
    CorpusError,
    LabelRecord,
    neutral_of,
    normalise_name,
    normalise_split,
    parse_score,
    video_id_of,
)
from mepr.labels import EMOTIONS, TRAITS

# column names are compared after `normalise_name` (lower case, '-' and ' ' -> '_')
ID_COLUMNS = ("video_id", "video_name", "video", "filename", "file_name", "file", "name", "id")
SPLIT_COLUMNS = ("split", "subset", "partition", "set", "fold")
TEXT_COLUMNS = ("transcript", "text", "transcription", "sentence", "utterance")
EMOTION_ALIASES: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral", "neutrality"),
    "anger": ("anger", "angry"),
    "disgust": ("disgust", "disgusted"),
    "fear": ("fear", "fearful"),
    "happiness": ("happiness", "happy", "joy"),
    "sadness": ("sadness", "sad"),
    "surprise": ("surprise", "surprised"),
}
# FIv2 calls its fifth trait "neuroticism" although higher means calmer (the reference
# renames it "non-neuroticism"), so a plain "neuroticism" column is taken as non_neuroticism.
TRAIT_ALIASES: dict[str, tuple[str, ...]] = {
    "openness": ("openness", "openness_to_experience"),
    "conscientiousness": ("conscientiousness",),
    "extraversion": ("extraversion", "extroversion"),
    "agreeableness": ("agreeableness",),
    "non_neuroticism": ("non_neuroticism", "nonneuroticism", "emotional_stability", "neuroticism"),
}


def _pick(columns: dict[str, str], candidates: Iterable[str]) -> str | None:
    for c in candidates:
        if c in columns:
            return columns[c]
    return None


def csv_split_files(folder: Path) -> list[tuple[Path, str]]:
    """Per-split label files of a folder: ``{split}_full.csv`` (the reference) or ``{split}.csv``."""
    found: list[tuple[Path, str]] = []
    for path in sorted(folder.glob("*.csv")):
        m = re.fullmatch(r"(?P<split>[A-Za-z]+)(_full)?\.csv", path.name)
        if m and normalise_split(m["split"]):
            found.append((path, m["split"]))
    return found


def read_csv_records(
    path: Path,
    task: str,
    failures: list[tuple[str, str]],
    split: str | None = None,
) -> list[LabelRecord]:
    """Label records of one CSV file.

    The file names its videos in an id column (video_id, video_name, filename, ...), its split
    in a split column unless ``split`` (the split's spelling, from the file name) is given, the
    labels in columns named after labels.EMOTIONS / labels.TRAITS (case-insensitive, usual
    synonyms accepted; a missing 'neutral' is derived) and an optional text column.
    Rows whose labels are missing go to ``failures``.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        columns = {normalise_name(c): c for c in header}
        id_col = _pick(columns, ID_COLUMNS)
        if id_col is None:
            raise CorpusError(
                f"{path}: no video id column (one of {', '.join(ID_COLUMNS)}) in {header}"
            )
        split_col = None if split else _pick(columns, SPLIT_COLUMNS)
        if split is None and split_col is None:
            raise CorpusError(
                f"{path}: no split column (one of {', '.join(SPLIT_COLUMNS)}) and the file "
                "name does not name a split (train_full.csv, dev_full.csv, ...)"
            )
        text_col = _pick(columns, TEXT_COLUMNS)
        vocab, aliases = (
            (EMOTIONS, EMOTION_ALIASES) if task == "emotion" else (TRAITS, TRAIT_ALIASES)
        )
        label_cols = {label: _pick(columns, aliases[label]) for label in vocab}
        optional = {"neutral"} if task == "emotion" else set()
        missing = [k for k, v in label_cols.items() if v is None and k not in optional]
        if missing:
            raise CorpusError(f"{path}: no column for {', '.join(missing)} (columns: {header})")
        records: list[LabelRecord] = []
        for line, row in enumerate(reader, start=2):
            name = (row.get(id_col) or "").strip()
            if not name:
                failures.append((f"{path.name}:{line}", "label row without a video id"))
                continue
            spelled = split or (row.get(split_col) or "").strip()  # type: ignore[arg-type]
            canon = normalise_split(spelled)
            if canon is None:
                failures.append((video_id_of(name), f"unknown split '{spelled}'"))
                continue
            values = {k: parse_score(row.get(c)) if c else None for k, c in label_cols.items()}
            bad = [k for k, v in values.items() if v is None and k not in optional]
            if bad:
                failures.append((video_id_of(name), f"missing label value(s): {', '.join(bad)}"))
                continue
            vec = [values[k] for k in vocab]
            if task == "emotion" and vec[0] is None:
                vec[0] = neutral_of(vec[1:])  # type: ignore[arg-type]
            text = (row.get(text_col) or "").strip() if text_col else ""
            records.append(
                LabelRecord(
                    name=name,
                    split=canon,
                    split_dir=spelled,
                    emotion=vec if task == "emotion" else None,  # type: ignore[arg-type]
                    traits=vec if task == "personality" else None,  # type: ignore[arg-type]
                    transcript=text or None,
                )
            )
    return records


def read_csv_labels(
    corpus: str,
    root: Path,
    labels: str | None,
    task: str,
    failures: list[tuple[str, str]],
    default_file: str | None = None,
) -> list[LabelRecord]:
    """Records from ``labels`` (relative to root): a CSV file, or a folder of per-split CSVs
    (``{split}_full.csv``) or holding ``default_file``; ``labels`` absent = root itself."""
    target = root / labels if labels else root
    if target.is_file():
        return read_csv_records(target, task, failures, split=_split_from_name(target))
    if not target.is_dir():
        raise CorpusError(f"corpus '{corpus}': label file {target} does not exist")
    per_split = csv_split_files(target)
    if per_split:
        return [r for p, s in per_split for r in read_csv_records(p, task, failures, split=s)]
    if default_file and (target / default_file).is_file():
        return read_csv_records(target / default_file, task, failures)
    wanted = f"{target}/{{train,dev,test}}_full.csv"
    if default_file:
        wanted += f" or {target / default_file}"
    raise CorpusError(f"corpus '{corpus}': no label file: expected {wanted}")


def _split_from_name(path: Path) -> str | None:
    m = re.fullmatch(r"(?P<split>[A-Za-z]+)(_full)?", path.stem)
    return m["split"] if m and normalise_split(m["split"]) else None
