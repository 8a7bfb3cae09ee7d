"""The paper rehearsal: miniature replicas of CMU-MOSEI and FIv2 in their official layouts.

`write_rehearsal(data_dir)` renders demo clips (real mp4s with a planted signal, see
`mepr.corpora.demo`) and lays them out as researchers have the real corpora:

* ``data_dir/CMU-MOSEI``: the CMU-MultimodalSDK files (`mepr.corpora.replica_mosei`): labels and
  timestamped words as ``.csd`` HDF5, full videos made of several demo clips (one clip per
  labelled segment) and, for every other video, the segmented clips too; video ids from the
  SDK's standard folds, so the shipped folds decide the splits;
* ``data_dir/FirstImpressionsV2``: annotation and transcription pickles in the official
  Python 2 format, videos under ``train-N/training80_NN/`` ... (`mepr.corpora.replica_fiv2`).

`configs/paper.yaml` then runs on them unchanged but for `configs/rehearsal.yaml` (offline demo
encoders, the offline ASR, two shards). What the rehearsal expects to find is returned (and
written to ``data_dir/rehearsal.json``) so a test can check rows, labels and transcripts.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from mepr.config import DemoParams
from mepr.labels import EMOTIONS, TRAITS

SEGMENTS_PER_VIDEO = 3


def _youtube_like(tag: str) -> str:
    """An 11-character id in YouTube's alphabet, stable for ``tag``."""
    digest = hashlib.sha1(tag.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def _demo_clips(out: Path, corpus: str, task: str, clips: int, seconds: float, seed: int):
    from mepr.corpora.demo import generate

    params = DemoParams(clips=clips, seconds=seconds, bad_inputs=False)
    labels = generate(out, corpus, task, params, seed, with_transcripts=True)
    with open(labels, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["path"] = out / "videos" / f"{r['video_id']}.mp4"
    return rows


def _fiv2(root: Path, clips: list[dict[str, Any]]) -> dict[str, Any]:
    from mepr.corpora.replica_fiv2 import Fiv2Video, write_fiv2

    videos = []
    for i, clip in enumerate(clips):
        name = f"{_youtube_like(f'fiv2-{i}')}.{i % 6:03d}.mp4"
        traits = tuple(float(clip[t]) for t in TRAITS)
        videos.append(Fiv2Video(name, clip["split"], clip["path"], traits, clip["transcript"]))
    write_fiv2(root, videos)
    return {
        v.name.removesuffix(".mp4"): {"split": v.split, "traits": list(v.traits), "text": v.text}
        for v in videos
    }


def write_rehearsal(
    data_dir: str | Path, clips: int = 28, seconds: float = 2.0, seed: int = 42
) -> dict[str, Any]:
    """Write both replicas under ``data_dir``; return (and save) what a run must find."""
    data = Path(data_dir)
    scratch = data / ".rehearsal-clips"
    emo = _demo_clips(scratch / "emo", "rehearsal_emo", "emotion", clips, seconds, seed)
    pers = _demo_clips(scratch / "pers", "rehearsal_pers", "personality", clips, seconds, seed)
    expected = {
        "mosei": _mosei(data / "CMU-MOSEI", emo),
        "fiv2": _fiv2(data / "FirstImpressionsV2", pers),
    }
    shutil.rmtree(scratch)
    (data / "rehearsal.json").write_text(json.dumps(expected, indent=1, sort_keys=True))
    return expected


def _mosei(root: Path, clips: list[dict[str, Any]]) -> dict[str, Any]:
    """Per split, consecutive demo clips become the segments of one SDK video (ids taken from
    that split's standard fold). Even videos ship full + segmented clips with the SDK's
    segmented transcripts (the adapter uses the clips), odd ones the full video only (the
    adapter samples each segment's interval of it)."""
    from mepr.corpora.replica_mosei import MoseiSegment, MoseiVideo, fold_ids, write_mosei_sdk

    videos = []
    for split in ("train", "dev", "test"):
        mine = [c for c in clips if c["split"] == split]
        groups = [mine[i : i + SEGMENTS_PER_VIDEO] for i in range(0, len(mine), SEGMENTS_PER_VIDEO)]
        for g, (vid, group) in enumerate(zip(fold_ids(split, len(groups)), groups, strict=True)):
            segments = [
                MoseiSegment(
                    clip=c["path"],
                    emotions={e: float(c[e]) for e in EMOTIONS[1:]},
                    text=c["transcript"],
                )
                for c in group
            ]
            videos.append(MoseiVideo(vid, segments, segmented=g % 2 == 0, transcript=g % 2 == 0))
    return write_mosei_sdk(root, videos).expected()


__all__ = ["write_rehearsal"]
