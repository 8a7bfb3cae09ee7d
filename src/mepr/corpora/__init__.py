"""Corpora: the offline demo generator and the adapters that turn a corpus into a manifest.

``build_manifest(name, corpus_cfg, n_shards)`` dispatches on ``corpus_cfg['adapter']``
(demo | mosei | fiv2) and returns ``(rows, failures)``: rows matching ``shards.MANIFEST`` and
``(video_id, reason)`` for every labelled video that could not be used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mepr.corpora.csv_labels import csv_split_files
from mepr.corpora.manifest import CorpusError
from mepr.labels import SPLITS

ADAPTERS: tuple[str, ...] = ("demo", "mosei", "fiv2")


def build_manifest(
    name: str, corpus_cfg: dict[str, Any], n_shards: int
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Manifest rows and failures of corpus ``name`` (its ``corpora.<name>`` config section)."""
    adapter = corpus_cfg.get("adapter")
    if adapter == "demo":
        from mepr.corpora.demo import build
    elif adapter == "mosei":
        from mepr.corpora.mosei import build
    elif adapter == "fiv2":
        from mepr.corpora.fiv2 import build
    else:
        raise CorpusError(
            f"corpus '{name}': unknown adapter '{adapter}', expected one of {', '.join(ADAPTERS)}"
        )
    if "root" not in corpus_cfg:
        raise CorpusError(f"corpus '{name}': missing 'root'")
    rows, failures = build(name, dict(corpus_cfg), n_shards)
    if adapter != "demo":  # the generated demo is complete by construction (or a test's part)
        _check_complete(name, Path(corpus_cfg["root"]), rows, failures)
    return rows, failures


NOT_FOUND = "video file not found"


def _check_complete(
    name: str, root: Path, rows: list[dict[str, Any]], failures: list[tuple[str, str]]
) -> None:
    """Stop on what would otherwise pass silently: videos still packed in zips, a split with
    no usable video (a missing label file, a wrong folder) and so 0 rows for it."""
    from mepr.corpora.archives import packed_hint

    missing = [vid for vid, reason in failures if reason.startswith(NOT_FOUND)]
    hint = packed_hint(root, missing) if missing else None
    if hint:
        raise CorpusError(f"corpus '{name}': {hint}")
    empty = [s for s in SPLITS if not any(r["split"] == s for r in rows)]
    if empty:
        listed = len(rows) + len(failures)
        raise CorpusError(
            f"corpus '{name}': no usable video in split(s) {', '.join(empty)} "
            f"({len(rows)} usable of {listed} listed under {root}); check that split's label "
            "file and video folder"
        )


def demo_labels_of(corpora: dict[str, dict[str, Any]], folder: str | Path) -> str | None:
    """The labels.csv written together with ``folder`` when it is a demo corpus' videos/
    folder (so a job reading the folder can depend on the job generating it), else None."""
    target = Path(folder).absolute()
    for cfg in corpora.values():
        if cfg.get("adapter") == "demo" and (Path(cfg["root"]) / "videos").absolute() == target:
            return str(Path(cfg["root"]) / (cfg.get("labels") or "labels.csv"))
    return None


def source_files(corpus_cfg: dict[str, Any]) -> list[str]:
    """The label files a corpus' manifest is built from (the manifest rule's inputs).

    Cheap and never raising: when nothing is found it returns the file the adapter expects
    first, so Snakemake reports that missing input by name.
    """
    adapter = corpus_cfg.get("adapter")
    root = Path(corpus_cfg["root"])
    labels = corpus_cfg.get("labels")
    if adapter == "demo":
        return [str(root / (labels or "labels.csv"))]
    if adapter == "mosei":  # the CMU-MultimodalSDK release: its .csd label and word files
        from mepr.corpora.mosei import label_sources

        sdk = label_sources(corpus_cfg)
        if sdk is not None:
            return sdk
    target = root / labels if labels else root
    if target.is_file():
        return [str(target)]
    if target.is_dir():
        if adapter == "fiv2":
            from mepr.corpora.fiv2 import annotation_files

            found = annotation_files(target)
            if found:
                return sorted(str(p) for pair in found.values() for p in pair if p is not None)
        per_split = csv_split_files(target)
        if per_split:
            return [str(p) for p, _ in per_split]
        if (target / "labels.csv").is_file():
            return [str(target / "labels.csv")]
    if adapter == "fiv2":
        return [str(target / "annotation_training.pkl")]
    if adapter == "mosei":
        return [str(target if labels else target / "CMU_MOSEI_Labels.csd")]
    return [str(target / "train_full.csv")]


__all__ = ["ADAPTERS", "CorpusError", "build_manifest", "demo_labels_of", "source_files"]
