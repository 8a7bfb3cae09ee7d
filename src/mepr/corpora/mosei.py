"""CMU-MOSEI adapter.

Label layouts (``labels``, relative to root; default the root itself):

* the reference's per-split files ``{split}_full.csv`` (split = train, dev or val, test) with
  columns ``video_name``, ``Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise``
  (intensities) and ``text``;
* one plain CSV with ``video_id``, ``split``, the emotion columns (``neutral`` optional: derived
  as 1 when the six emotions are all 0) and an optional ``text``/``transcript`` column.

Videos are looked up (recursively, by file name with or without extension) under
``{root}/video/{split}/`` as the reference expects, then ``video/``, ``videos/`` and the root;
``videos`` in the corpus config overrides this (``{split}`` in it is substituted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mepr.corpora.manifest import (
    VideoFinder,
    assemble,
    read_csv_labels,
    require_root,
    split_folders,
)

DEFAULT_VIDEOS = ("video/{split}", "video", "videos/{split}", "videos", ".")


def build(
    name: str, cfg: dict[str, Any], n_shards: int
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    root = require_root(name, Path(cfg["root"]))
    task = cfg.get("task") or "emotion"
    failures: list[tuple[str, str]] = []
    records = read_csv_labels(name, root, cfg.get("labels"), task, failures, "labels.csv")
    finder = VideoFinder(split_folders(root, cfg.get("videos"), DEFAULT_VIDEOS))
    return assemble(name, task, records, finder, n_shards, failures), failures
