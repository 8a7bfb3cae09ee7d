"""CMU-MOSEI's label side in the CMU-MultimodalSDK release: the ``.csd`` label and word files
(HDF5 computational sequences, laid out as `mepr.corpora.mosei` describes) and the folds
(the SDK's standard ones ship in ``data/mosei_folds.json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mepr.corpora.manifest import CorpusError, neutral_of, normalise_split
from mepr.labels import EMOTIONS

LABELS_CSD = "CMU_MOSEI_Labels.csd"
WORDS_CSD = "CMU_MOSEI_TimestampedWords.csd"
# the six emotions of a label row, columns 1-6 (column 0 is sentiment), as mepr names them
SDK_EMOTIONS: tuple[str, ...] = ("happiness", "sadness", "anger", "surprise", "disgust", "fear")
SILENCE = "sp"  # the words file's silence token
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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
