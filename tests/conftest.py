"""Shared fixtures: small real media files built offline (ffmpeg, espeak-ng, a real photo)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """Videos covering the good and the bad cases extraction must survive."""
    import skimage.data

    d = tmp_path_factory.mktemp("media")
    face = d / "face.png"
    cv2.imwrite(str(face), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    speech = d / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(speech), "I am very happy today"], check=True)
    video = [
        "-t",
        "2",
        "-r",
        "25",
        "-vf",
        "scale=320:240",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    ]
    out = {
        "good": d / "good.mp4",
        "noaudio": d / "no audio.mp4",
        "unicode": d / "vidéo ünïcode.mp4",
        "faceless": d / "faceless.mp4",
        "truncated": d / "truncated.mp4",
        "empty": d / "empty.mp4",
        "missing": d / "missing.mp4",
    }
    _ffmpeg(
        "-loop",
        "1",
        "-i",
        str(face),
        "-i",
        str(speech),
        *video,
        "-c:a",
        "aac",
        "-shortest",
        str(out["good"]),
    )
    _ffmpeg("-loop", "1", "-i", str(face), *video, str(out["noaudio"]))
    out["unicode"].write_bytes(out["good"].read_bytes())
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=0x336699:s=320x240",
        "-i",
        str(speech),
        *video,
        "-c:a",
        "aac",
        "-shortest",
        str(out["faceless"]),
    )
    out["truncated"].write_bytes(out["good"].read_bytes()[:3000])
    out["empty"].write_bytes(b"")
    return out


@pytest.fixture(scope="session")
def demo_encoders(tmp_path_factory) -> Path:
    """The tiny demo encoders, built once, in the layout `demo:NAME` resolves to."""
    from mepr.embed.demo_models import build_demo_encoder

    root = tmp_path_factory.mktemp("encoders")
    for name in ("tiny-clip", "tiny-wav2vec2"):
        build_demo_encoder(name, root / name)
    return root


@pytest.fixture
def in_dir(tmp_path, monkeypatch, demo_encoders) -> Path:
    """Run in tmp_path with results/encoders holding the demo encoders."""
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "encoders").symlink_to(demo_encoders)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def manifest_rows(paths: dict[str, Path], task: str = "emotion") -> list[dict]:
    rows = []
    for vid, path in paths.items():
        rows.append(
            {
                "video_id": vid,
                "corpus": "t",
                "path": str(path),
                "split": "train",
                "task": task,
                "size_bytes": path.stat().st_size if path.exists() else 0,
                "shard": 0,
                "emotion": [0, 1, 0, 0, 0, 0, 0] if task == "emotion" else None,
                "traits": [0.5] * 5 if task == "personality" else None,
                "transcript": None,
            }
        )
    return rows


def silence(seconds: float, sr: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * sr), np.float32)
