"""Offline demo corpus: short real mp4 clips with a real face, real speech and planted signal.

Every clip shows a real photograph (``skimage.data.astronaut()``, head and shoulders) moving
over a synthetic background, and speaks a short sentence synthesised with ``espeak-ng``.  The
labels are planted in several modalities so that tiny models trained on ~20 clips beat chance:

emotion (MOSEI-like intensities; clip ``i`` has class ``i % 7``)
    face tint colour, face scale, motion style, background colour (scene), espeak pitch and
    speed (audio), class words in the sentence (text).
personality (five correlated traits in [0, 1] around one latent impression)
    openness -> face tint and brightness, extraversion -> face scale, motion range and speech
    speed, agreeableness -> pitch and background warmth, conscientiousness -> background
    clutter and words, non_neuroticism -> camera shake and words.

Everything is deterministic given the seed: frames are rendered with numpy/OpenCV, encoded by
ffmpeg (single-threaded, bit-exact flags), so two runs give identical files.

This module writes the corpus and reads it back as manifest rows; a clip's labels, looks and
words come from `mepr.corpora.demo_plan`, its speech from `demo_speech`, its frames and mp4
file from `demo_render`, and the broken clips of ``demo.bad_inputs`` from `demo_bad`.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

from mepr.config import DemoParams
from mepr.corpora.demo_bad import BAD_INPUTS, bad_clip, bad_video_id
from mepr.corpora.demo_plan import EMOTION_STYLES, clip_rng, label_row, plan_clip, split_of
from mepr.corpora.demo_render import encode_clip, frame_size, render_frames
from mepr.corpora.demo_speech import clip_audio
from mepr.files import atomic_path
from mepr.labels import EMOTIONS, TASKS, TRAITS

# the clips' looks and the bad inputs are also importable from here, the corpus' module
__all__ = ["BAD_INPUTS", "EMOTION_STYLES", "bad_video_id", "build", "generate", "split_of"]


def _check_tools() -> None:
    missing = [t for t in ("ffmpeg", "espeak-ng") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            f"the demo corpus needs {' and '.join(missing)} on PATH "
            "(installed by `make setup`: workflow/scripts/install-system-deps.sh)"
        )


def generate(
    root: Path,
    corpus: str,
    task: str,
    params: DemoParams,
    seed: int,
    with_transcripts: bool,
) -> Path:
    """Write ``root/videos/<corpus>_NNNN.mp4`` and ``root/labels.csv`` (last); return the latter.

    Columns of labels.csv: video_id, split, the 7 emotion intensities (task=emotion) or the 5
    trait scores (task=personality), transcript (empty unless ``with_transcripts``).
    With ``params.bad_inputs`` the corpus also gets one train-split clip per ``BAD_INPUTS``
    kind (ids from ``bad_video_id``), after the good ones, which they leave unchanged.
    """
    from tqdm import tqdm

    if task not in TASKS:
        raise ValueError(f"unknown task '{task}', expected one of {TASKS}")
    if params.clips < 1:
        raise ValueError("demo.clips must be at least 1")
    _check_tools()
    root = Path(root)
    videos = root / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for stale in videos.glob(".*.tmp"):  # left by an interrupted run
        stale.unlink(missing_ok=True)
    W, H = frame_size(params)
    label_cols = list(EMOTIONS if task == "emotion" else TRAITS)
    rows: list[dict[str, object]] = []
    ids = [f"{corpus}_{i:04d}" for i in range(params.clips)]
    with tempfile.TemporaryDirectory(prefix="mepr-demo-") as work:
        workdir = Path(work)
        for i in tqdm(range(params.clips), desc=f"demo {corpus}", unit="clip"):
            rng = clip_rng(seed, corpus, i)
            label, style, text, pcm, rate = plan_clip(task, i, rng, params, workdir)
            wav = clip_audio(pcm, rate, params.seconds, rng)
            frames = render_frames(style, rng, params, W, H)
            encode_clip(frames, wav, videos / f"{ids[i]}.mp4", params, W, H, workdir)
            split = split_of(i, params.clips, task)
            rows.append(label_row(ids[i], split, task, label, text if with_transcripts else ""))
        if params.bad_inputs:
            for kind in BAD_INPUTS:
                rows.append(
                    bad_clip(kind, corpus, task, params, seed, with_transcripts, videos, workdir)
                )
    keep = {f"{r['video_id']}.mp4" for r in rows}
    for old in videos.glob(f"{corpus}_*.mp4"):  # clips of an earlier, larger run
        if old.name not in keep:
            old.unlink()
    return _write_labels(
        root / "labels.csv", rows, ["video_id", "split", *label_cols, "transcript"]
    )


def _write_labels(path: Path, rows: list[dict[str, object]], columns: list[str]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------------------------------------
# adapter: the generated corpus as manifest rows


def build(
    name: str, cfg: dict[str, object], n_shards: int
) -> tuple[list[dict[str, object]], list[tuple[str, str]]]:
    """Manifest rows of a generated corpus: ``root/labels.csv`` + ``root/videos/``."""
    from mepr.corpora.csv_labels import read_csv_labels
    from mepr.corpora.manifest import VideoFinder, assemble, require_root

    root = require_root(name, Path(str(cfg["root"])))
    task = str(cfg.get("task") or "emotion")
    labels = str(cfg.get("labels") or "labels.csv")
    videos = root / str(cfg.get("videos") or "videos")
    failures: list[tuple[str, str]] = []
    records = read_csv_labels(name, root, labels, task, failures)
    finder = VideoFinder(lambda record: [videos])
    return assemble(name, task, records, finder, n_shards, failures), failures
