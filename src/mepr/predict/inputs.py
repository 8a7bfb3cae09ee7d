"""The videos of a prediction run: files and folders to unique ids, and container facts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mepr.predict.errors import PredictError

VIDEO_EXTENSIONS = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
        ".3gp",
        ".ts",
        ".mts",
    ]
)


@dataclass
class VideoInput:
    video_id: str  # unique within a batch; also the output sub-folder name
    path: Path


def collect_videos(items: Iterable[str | Path]) -> list[VideoInput]:
    """Videos from files and folders (a folder contributes its video files, sorted).

    Ids are the file stems made safe for folder names, de-duplicated with a suffix.
    """
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths += sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
            )
        else:
            paths.append(p)  # missing files become per-video errors later
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        base = re.sub(r"[^\w.-]+", "_", p.stem).strip("._") or "video"
        n = seen.get(base, 0) + 1
        seen[base] = n
        out.append(VideoInput(base if n == 1 else f"{base}-{n}", p))
    return out


def folder_videos(
    folder: str | Path, what: str = "video folder", made_by: str | None = None
) -> list[str]:
    """The video files of a folder, sorted (the Snakemake `predict` rule's input).

    ``made_by``: the file of the job that writes the folder (a demo corpus' labels.csv). It
    stands in for the videos, before and after they exist: listing them once they do would
    change the rule's input set between planning and the next run, and Snakemake would plan
    the predictions again for a folder that did not change."""
    if made_by is not None:
        return [made_by]
    p = Path(folder)
    if not p.is_dir():
        raise PredictError(f"{what}: {p} is not a folder")
    return [str(v.path) for v in collect_videos([p])]


def probe_video(path: Path) -> dict[str, Any]:
    """Container facts for the report (never raises; unknown values are None)."""
    info: dict[str, Any] = {"fps": None, "frame_count": None, "width": None, "height": None}
    try:
        info["size_bytes"] = path.stat().st_size
    except OSError:
        info["size_bytes"] = None
        return info
    try:
        import cv2

        cap = cv2.VideoCapture(str(path))
        try:
            if cap.isOpened():
                fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
                info["fps"] = float(fps) if fps > 0 else None
                info["frame_count"] = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
                info["width"] = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0) or None
                info["height"] = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0) or None
        finally:
            cap.release()
    except Exception:  # a probe must never stop a prediction
        pass
    return info
