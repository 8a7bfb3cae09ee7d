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
    out["silent"] = d / "silent.mp4"
    _ffmpeg(
        "-loop",
        "1",
        "-i",
        str(face),
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=16000:cl=mono",
        *video,
        "-c:a",
        "aac",
        "-shortest",
        str(out["silent"]),
    )
    return out


def _patch_mkv_duration(path: Path, factor: float) -> None:
    """Scale the Duration element of a Matroska file: its frame count estimate then lies."""
    import struct

    data = bytearray(path.read_bytes())
    i = data.find(b"\x44\x89\x88")  # Duration, 8-byte float
    assert i >= 0, "no 8-byte Duration element"
    (value,) = struct.unpack(">d", data[i + 3 : i + 11])
    data[i + 3 : i + 11] = struct.pack(">d", value * factor)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def tricky(tmp_path_factory) -> dict[str, Path]:
    """Videos that decode, but not the easy way: rotation, odd size, variable frame rate,
    containers that lie about (or do not know) their frame count, long seekable video."""
    d = tmp_path_factory.mktemp("tricky")
    src = ["-f", "lavfi", "-i", "testsrc=s=320x240:r=25:d=4"]  # 100 frames
    h264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25"]
    out = {k: d / f"{k}.mp4" for k in ("base", "rotated", "odd", "vfr", "cut", "long")}
    out["low_count"], out["no_count"] = d / "low_count.mkv", d / "no_count.h264"
    _ffmpeg(*src, *h264, "-movflags", "+faststart", str(out["base"]))
    # a display matrix: players (and ffmpeg) show the frames rotated by 90 degrees
    _ffmpeg("-i", str(out["base"]), "-c", "copy", "-metadata:s:v", "rotate=90", str(out["rotated"]))
    _ffmpeg(*src, "-vf", "scale=321:239", "-c:v", "libx264", "-pix_fmt", "yuv444p", str(out["odd"]))
    # 2 s at 25 fps, then 12.5 fps: frame times are not index / fps
    vfr = "setpts='if(lt(N,50),N/25,2+(N-50)*2/25)/TB'"
    _ffmpeg(*src, "-vf", vfr, "-fps_mode", "vfr", *h264, str(out["vfr"]))
    data = out["base"].read_bytes()  # faststart: the header (100 frames) survives the cut
    start = data.find(b"mdat")
    out["cut"].write_bytes(data[: start + (len(data) - start) // 2])
    _ffmpeg("-i", str(out["base"]), "-c", "copy", str(out["low_count"]))
    _patch_mkv_duration(out["low_count"], 0.5)  # claims 50 frames, has 100
    _ffmpeg(
        "-i", str(out["base"]), "-c", "copy", "-bsf:v", "h264_mp4toannexb", str(out["no_count"])
    )
    # 40 s, a keyframe every second: sampling few frames seeks past whole keyframe intervals
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x120:r=25:d=40", *h264, str(out["long"])
    )  # fmt: skip
    return out


def ffmpeg_frames(path: Path, pix_fmt: str = "rgb24") -> np.ndarray:
    """Every frame as ffmpeg itself decodes it (rotation applied), (n, h, w, 3) uint8."""
    info = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height:stream_side_data=rotation", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    import json

    stream = json.loads(info)["streams"][0]
    w, h = stream["width"], stream["height"]
    rotation = [s.get("rotation", 0) for s in stream.get("side_data_list", [])]
    if rotation and abs(rotation[0]) % 180 == 90:
        w, h = h, w
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-fps_mode", "passthrough",
         "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def ffprobe_frame_times(path: Path) -> np.ndarray:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "frame=pts_time", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return np.asarray([float(x.strip(",")) for x in out.split()], np.float64)


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


@pytest.fixture(scope="session")
def rehearsal_checkout(tmp_path_factory) -> Path:
    """A working directory laid out like a checkout (Snakefile, config.yaml, configs/,
    workflow/, envs/ linked to this repository) holding the paper rehearsal's miniature
    corpora under data/ (``mepr rehearsal data``), where configs/paper.yaml looks for them."""
    import sys

    work = tmp_path_factory.mktemp("checkout")
    for name in ("Snakefile", "config.yaml", "configs", "workflow", "envs"):
        (work / name).symlink_to(REPO / name)
    subprocess.run(
        [sys.executable, "-m", "mepr", "rehearsal", str(work / "data")],
        check=True,
        capture_output=True,
    )
    return work
