"""ChaLearn First Impressions v2 adapter.

Label layouts (``labels``, relative to root; default the root itself):

* the official annotation pickles ``annotation_training.pkl``, ``annotation_validation.pkl``,
  ``annotation_test.pkl`` (validation -> dev): a dict ``trait -> {video file name: score}``
  with traits openness, conscientiousness, extraversion, agreeableness, neuroticism (plus
  "interview", ignored), and optional ``transcription_{training,validation,test}.pkl``
  (``{video file name: text}``).  FIv2's "neuroticism" score grows with emotional stability,
  so it is stored, unchanged, as ``non_neuroticism`` (the reference names it non-neuroticism);
* the reference's per-split files ``{split}_full.csv`` with ``video_name``, the five traits
  (``non-neuroticism``) and ``text``; or one plain CSV with ``video_id`` and ``split``.

The pickles are read with a restricted unpickler that only builds dicts, lists, strings and
numbers: a pickle that asks for anything else (a function to call, a class to build) raises
`UnsafePickleError` instead of running it.

Videos are looked up recursively under ``{root}/video/{split}/`` (the reference's layout),
then ``video/``, ``videos/`` and the root, so the official ``train-1/...`` folders work too.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from mepr.corpora.csv_labels import read_csv_labels
from mepr.corpora.find import Search
from mepr.corpora.manifest import (
    REFERENCE_VIDEOS,
    CorpusError,
    LabelRecord,
    VideoFinder,
    assemble,
    parse_score,
    require_root,
    split_folders,
)
from mepr.labels import TRAITS

# How the label pickles are looked up below the labels folder: hidden folders included,
# symlinked folders not entered, no depth limit, and two equally shallow copies of a pickle
# are ambiguous: they stop the manifest rather than one of them being picked.
PICKLE_SEARCH = Search(
    hidden=True,
    follow_links=False,
    refuse_ties=True,
    tie_hint="point 'labels' at the folder holding the right one",
)

# official file-name spelling of each split
OFFICIAL_SPLITS: dict[str, str] = {"training": "train", "validation": "dev", "test": "test"}
# trait key in the pickles -> labels.TRAITS name
PICKLE_TRAITS: dict[str, str] = {
    "openness": "openness",
    "conscientiousness": "conscientiousness",
    "extraversion": "extraversion",
    "agreeableness": "agreeableness",
    "neuroticism": "non_neuroticism",
    "non_neuroticism": "non_neuroticism",
    "non-neuroticism": "non_neuroticism",
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked to import something other than plain containers and numbers."""


# (module, name) a label pickle may reference: numpy scalars (scores are often float64) are
# rebuilt from a dtype and raw bytes, which runs no user code.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "str"),
        ("builtins", "float"),
        ("builtins", "int"),
        ("builtins", "bytes"),
        ("__builtin__", "dict"),
        ("__builtin__", "list"),
        ("__builtin__", "str"),
        ("__builtin__", "unicode"),
        ("__builtin__", "float"),
        ("__builtin__", "int"),
        ("__builtin__", "long"),
        ("collections", "OrderedDict"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2 (numpy scalars)
    }
)
_PY2_NAMES = {"unicode": "str", "long": "int"}


class RestrictedUnpickler(pickle.Unpickler):
    """Builds only plain containers, strings and numbers; anything else raises."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refusing to load '{module}.{name}' from a label pickle "
                "(only dicts, lists, strings and numbers are allowed)"
            )
        if module == "__builtin__":
            module, name = "builtins", _PY2_NAMES.get(name, name)
        if module.startswith("numpy"):
            import numpy as np

            if name == "dtype":
                return np.dtype
            try:
                from numpy._core.multiarray import scalar
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import scalar
            return scalar
        return super().find_class(module, name)


def safe_load(fh: BinaryIO) -> Any:
    """Unpickle a label file without running code (Python 2 pickles decoded as latin-1)."""
    return RestrictedUnpickler(fh, encoding="latin1").load()


def load_pickle(path: Path) -> Any:
    with open(path, "rb") as fh:
        try:
            return safe_load(fh)
        except UnsafePickleError as e:
            raise UnsafePickleError(f"{path}: {e}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise CorpusError(f"{path}: not a readable label pickle ({e})") from e


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def annotation_files(folder: Path) -> dict[str, tuple[Path, Path | None]]:
    """split -> (annotation pickle, transcription pickle or None) found under ``folder``.

    Each file is looked up on its own (directly in ``folder``, else anywhere below it), so
    annotation pickles at the root do not hide transcription pickles in sub-folders.
    """
    out: dict[str, tuple[Path, Path | None]] = {}
    for official, split in OFFICIAL_SPLITS.items():
        ann = PICKLE_SEARCH.file(folder, f"annotation_{official}.pkl")
        if ann is not None:
            out[split] = (ann, PICKLE_SEARCH.file(folder, f"transcription_{official}.pkl"))
    return out


def _lacking(kind: str, have: Iterable[str]) -> list[str]:
    """``<kind>_<official>.pkl (<split> split)`` for each split not in `have`."""
    have = set(have)
    return [
        f"{kind}_{official}.pkl ({split} split)"
        for official, split in OFFICIAL_SPLITS.items()
        if split not in have
    ]


def _require_all_splits(
    corpus: str, folder: Path, pickles: dict[str, tuple[Path, Path | None]]
) -> None:
    """Every split's annotation pickle, and transcriptions for all splits or for none."""
    from mepr.corpora.archives import with_packed_hint

    missing = _lacking("annotation", pickles)
    if missing:
        message = f"corpus '{corpus}': missing {', '.join(missing)} under {folder}"
        raise CorpusError(with_packed_hint(message, folder, [m.split()[0] for m in missing]))
    absent = _lacking("transcription", [s for s, pair in pickles.items() if pair[1] is not None])
    if absent and len(absent) < len(OFFICIAL_SPLITS):
        message = (
            f"corpus '{corpus}': missing {', '.join(absent)} under {folder} while the other "
            "splits have theirs (their text would silently come from ASR instead)"
        )
        raise CorpusError(with_packed_hint(message, folder, [a.split()[0] for a in absent]))


def read_pickle_records(
    split: str,
    annotation: Path,
    transcription: Path | None,
    failures: list[tuple[str, str]],
) -> list[LabelRecord]:
    data = load_pickle(annotation)
    if not isinstance(data, dict):
        raise CorpusError(f"{annotation}: expected a dict trait -> {{video: score}}")
    scores: dict[str, dict[str, Any]] = {}
    for key, table in data.items():
        trait = PICKLE_TRAITS.get(_text(key).strip().lower())
        if trait is None:
            continue  # "interview" and anything else
        if not isinstance(table, dict):
            raise CorpusError(f"{annotation}: '{_text(key)}' is not a dict video -> score")
        scores[trait] = {_text(k): v for k, v in table.items()}
    absent = [t for t in TRAITS if t not in scores]
    if absent:
        raise CorpusError(f"{annotation}: no scores for {', '.join(absent)}")
    texts: dict[str, str] = {}
    if transcription is not None:
        raw = load_pickle(transcription)
        if not isinstance(raw, dict):
            raise CorpusError(f"{transcription}: expected a dict video -> text")
        texts = {_text(k): _text(v).strip() for k, v in raw.items() if v is not None}
    names = sorted(set().union(*(scores[t].keys() for t in TRAITS)))
    records = []
    for name in names:
        values = [parse_score(scores[t].get(name)) for t in TRAITS]
        bad = [t for t, v in zip(TRAITS, values, strict=True) if v is None]
        if bad:
            rec = LabelRecord(name, split, split)
            failures.append((rec.video_id, f"missing label value(s): {', '.join(bad)}"))
            continue
        records.append(
            LabelRecord(
                name=name,
                split=split,
                split_dir=split,
                traits=values,  # type: ignore[arg-type]
                transcript=texts.get(name) or None,
            )
        )
    return records


def build(
    name: str, cfg: dict[str, Any], n_shards: int
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    root = require_root(name, Path(cfg["root"]))
    task = cfg.get("task") or "personality"
    failures: list[tuple[str, str]] = []
    labels = cfg.get("labels")
    target = root / labels if labels else root
    pickles = annotation_files(target) if target.is_dir() else {}
    if pickles:
        _require_all_splits(name, target, pickles)
        if all(pair[1] is None for pair in pickles.values()):
            print(
                f"corpus '{name}': no transcription_*.pkl under {target}: "
                "the text modality will come from ASR",
                file=sys.stderr,
            )
        records = [
            r
            for split in ("train", "dev", "test")
            if split in pickles
            for r in read_pickle_records(split, *pickles[split], failures)
        ]
    elif target.is_file() and target.suffix == ".pkl":
        split = _split_of_pickle(target)
        records = read_pickle_records(split, target, None, failures)
    else:
        try:
            records = read_csv_labels(name, root, labels, task, failures, "labels.csv")
        except CorpusError as e:
            if target.is_file():
                raise
            from mepr.corpora.archives import with_packed_hint

            message = f"{e}; nor the official annotation_{{training,validation,test}}.pkl"
            official = [f"annotation_{o}.pkl" for o in OFFICIAL_SPLITS]
            raise CorpusError(with_packed_hint(message, target, official)) from None
    finder = VideoFinder(split_folders(root, cfg.get("videos"), REFERENCE_VIDEOS))
    return assemble(name, task, records, finder, n_shards, failures), failures


def _split_of_pickle(path: Path) -> str:
    from mepr.corpora.manifest import normalise_split

    stem = path.stem.lower().removeprefix("annotation_")
    split = normalise_split(stem)
    if split is None:
        raise CorpusError(f"{path}: cannot tell the split from the file name")
    return split
