"""Bad inputs of the demo corpus (``demo.bad_inputs``): labelled clips, broken on purpose,
that extraction must get through, each recorded in the failures table with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mepr.config import DemoParams
from mepr.corpora.demo_plan import clip_rng, label_row, plan_clip
from mepr.corpora.demo_render import encode_clip, frame_size, render_frames
from mepr.corpora.demo_speech import clip_audio
from mepr.files import atomic_path

# kind -> what the workflow should make of it
BAD_INPUTS: dict[str, str] = {
    "truncated": "an mp4 cut in the middle of its media data (the header, written first, "
    "survives): what decodes is kept, the lying frame count is recorded",
    "empty": "a zero-length file: skipped by the manifest",
    "no_audio": "no audio track: recorded, the audio and ASR text are masked",
    "silent": "an audio track of digital silence: recorded as 'silent audio track'",
    "faceless": "the scene without any person: no face / body crops, recorded",
    "unicode": "a good clip whose file name has unicode and spaces: processed like any other",
    "corrupt": "random bytes named .mp4: recorded as unreadable",
}


def bad_video_id(corpus: str, kind: str) -> str:
    return f"{corpus}_bad ünïcödé näme 名前" if kind == "unicode" else f"{corpus}_bad_{kind}"


def bad_clip(
    kind: str,
    corpus: str,
    task: str,
    params: DemoParams,
    seed: int,
    with_transcripts: bool,
    videos: Path,
    workdir: Path,
) -> dict[str, object]:
    """Write one bad clip of `kind` and return its labels.csv row (train split)."""
    if kind not in BAD_INPUTS:
        raise ValueError(f"unknown bad input '{kind}', known: {sorted(BAD_INPUTS)}")
    W, H = frame_size(params)
    j = list(BAD_INPUTS).index(kind)
    rng = clip_rng(seed, f"{corpus}/bad", j)  # its own stream: the good clips do not change
    label, style, said, pcm, rate = plan_clip(task, j, rng, params, workdir)
    vid = bad_video_id(corpus, kind)
    out = videos / f"{vid}.mp4"
    if kind == "empty":
        _write_bytes(out, b"")
    elif kind == "corrupt":
        _write_bytes(out, rng.integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    else:
        wav: bytes | None = clip_audio(pcm, rate, params.seconds, rng)
        if kind == "no_audio":
            wav, said = None, ""
        elif kind == "silent":
            wav, said = clip_audio(np.zeros(0, np.int16), rate, params.seconds, rng), ""
        frames = render_frames(style, rng, params, W, H, person=kind != "faceless")
        target = workdir / "whole.mp4" if kind == "truncated" else out
        encode_clip(frames, wav, target, params, W, H, workdir)
        if kind == "truncated":  # faststart: the header survives, half the media data not
            data = target.read_bytes()
            start = max(data.find(b"mdat"), 0)
            _write_bytes(out, data[: start + (len(data) - start) // 2])
            target.unlink()
    return label_row(vid, "train", task, label, said if with_transcripts else "")


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
