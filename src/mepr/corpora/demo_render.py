"""The demo clips' pictures and files: a real portrait moving over a synthetic scene, rendered
frame by frame with numpy/OpenCV and encoded with its speech by ffmpeg (single-threaded,
bit-exact flags: two runs give identical files)."""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mepr.config import DemoParams
from mepr.files import atomic_path

AUDIO_RATE = 16000  # sample rate of the muxed AAC track

# portrait crop of skimage.data.astronaut() (rows, cols) and the face centre inside the crop
_CROP = (slice(8, 344), slice(96, 352))
_FACE_CENTRE = (129.0, 112.0)  # x, y in crop pixels


@lru_cache(maxsize=1)
def portrait() -> tuple[np.ndarray, np.ndarray]:
    """The head-and-shoulders crop (float32 RGB) and its soft elliptical alpha mask."""
    import cv2
    from skimage import data

    crop = data.astronaut()[_CROP].astype(np.float32)
    h, w = crop.shape[:2]
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, int(h * 0.56)), (int(w * 0.47), int(h * 0.52)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=6)
    return crop, mask


def scene_canvas(
    rng: np.random.Generator,
    size: tuple[int, int],
    base: np.ndarray,
    clutter: int,
) -> np.ndarray:
    """A scene canvas (float32 RGB, h x w): vertical gradient plus a few coloured shapes."""
    import cv2

    h, w = size
    top = np.clip(base * 1.25 + rng.normal(0, 10, 3), 0, 255)
    bottom = np.clip(base * 0.6 + rng.normal(0, 10, 3), 0, 255)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    canvas = np.ascontiguousarray(np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)))
    canvas = canvas.astype(np.float32)
    for _ in range(clutter):
        colour = tuple(float(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(max(4, h // 20), max(5, h // 6)))
        if rng.random() < 0.5:
            cv2.circle(canvas, (x, y), r, colour, -1)
        else:
            cv2.rectangle(canvas, (x - r, y - r), (x + r, y + int(r * 1.5)), colour, -1)
    return canvas


@dataclass(frozen=True)
class ClipStyle:
    tint: np.ndarray  # RGB multiplier in [0, 1.x]
    tint_strength: float
    brightness: float
    scale: float  # portrait height / frame height
    motion: str
    amplitude: float  # horizontal travel as a fraction of the width
    shake: float  # per-frame random offset, pixels at 240p
    background: np.ndarray  # canvas, float32 RGB


def render_frames(
    style: ClipStyle,
    rng: np.random.Generator,
    params: DemoParams,
    W: int,
    H: int,
    person: bool = True,
):
    """Yield uint8 RGB frames of the clip (just the panning scene when not `person`)."""
    import cv2

    crop, mask = portrait()
    tint = 1.0 - style.tint_strength + style.tint_strength * style.tint
    fg = np.clip(crop * tint[None, None, :] * style.brightness, 0, 255).astype(np.float32)
    fx, fy = _FACE_CENTRE
    n = max(1, int(round(params.seconds * params.fps)))
    pad_y = (style.background.shape[0] - H) // 2
    pad_x = (style.background.shape[1] - W) // 2
    phase = float(rng.uniform(0, 2 * math.pi))
    unit = H / 240.0
    for k in range(n):
        t = k / max(1, params.fps)
        cx = W * (0.5 + style.amplitude * math.sin(2 * math.pi * 0.4 * t + phase))
        cy = H * 0.40
        scale = style.scale
        angle = 0.0
        if style.motion == "bounce":
            cy -= H * 0.05 * abs(math.sin(2 * math.pi * 1.5 * t))
        elif style.motion == "droop":
            cy += H * 0.08 * min(1.0, t / max(params.seconds, 1e-6))
            angle = -6.0 * min(1.0, t / max(params.seconds, 1e-6))
        elif style.motion == "zoom":
            scale *= 1.0 + 0.18 * min(1.0, t / max(params.seconds * 0.5, 1e-6))
        elif style.motion == "turn":
            angle = 8.0 * math.sin(2 * math.pi * 1.0 * t)
        elif style.motion == "shake":
            angle = 3.0 * math.sin(2 * math.pi * 4.0 * t)
        elif style.motion == "tremble":
            cx += 2.0 * unit * math.sin(2 * math.pi * 7.0 * t)
        jitter = rng.normal(0.0, style.shake * unit, 2) if style.shake > 0 else np.zeros(2)
        cx += jitter[0]
        cy += jitter[1]
        s = scale * H / crop.shape[0]
        a = math.radians(angle)
        cos, sin = s * math.cos(a), s * math.sin(a)
        m = np.array(
            [
                [cos, -sin, cx - (cos * fx - sin * fy)],
                [sin, cos, cy - (sin * fx + cos * fy)],
            ],
            np.float32,
        )
        warped = cv2.warpAffine(fg, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        alpha = cv2.warpAffine(mask, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
        # the camera pans slowly over the scene canvas
        ox = int(round(pad_x + pad_x * 0.8 * math.sin(2 * math.pi * 0.25 * t + phase)))
        oy = int(round(pad_y + pad_y * 0.5 * math.cos(2 * math.pi * 0.2 * t)))
        bg = style.background[oy : oy + H, ox : ox + W]
        frame = bg + (warped - bg) * alpha[..., None] if person else bg
        yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def frame_size(params: DemoParams) -> tuple[int, int]:
    """Width and height, rounded down to even numbers (yuv420p needs them)."""
    return params.width - params.width % 2, params.height - params.height % 2


def canvas_size(W: int, H: int) -> tuple[int, int]:
    """The scene canvas (h, w): the frame plus a margin for the camera to pan over."""
    return H + 2 * max(8, H // 12), W + 2 * max(8, W // 12)


def encode_clip(
    frames,
    wav: bytes | None,
    out: Path,
    params: DemoParams,
    W: int,
    H: int,
    workdir: Path,
) -> None:
    """Encode frames + speech to ``out`` (H.264 yuv420p + AAC) through a temp file + rename;
    ``wav=None`` writes a file without an audio track."""
    wav_path = workdir / "track.wav"
    if wav is not None:
        wav_path.write_bytes(wav)
    audio_in = ["-i", str(wav_path)] if wav is not None else []
    audio_map = ["-map", "1:a:0"] if wav is not None else []
    video = b"".join(f.tobytes() for f in frames)
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{W}x{H}",
        "-r",
        str(params.fps),
        "-i",
        "pipe:0",
        *audio_in,
        "-map",
        "0:v:0",
        *audio_map,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-ar",
        str(AUDIO_RATE),
        "-ac",
        "1",
        "-t",
        f"{params.seconds:.3f}",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-map_metadata",
        "-1",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ]
    with atomic_path(out) as tmp:
        proc = subprocess.run([*cmd, str(tmp)], input=video, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"ffmpeg failed on {out.name}: {proc.stderr.decode(errors='replace').strip()}"
            )
