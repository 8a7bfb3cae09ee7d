"""The demo clips' speech: a sentence synthesised with ``espeak-ng``, placed in a clip-long
mono WAV track."""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import numpy as np

ESPEAK_VOICE = "en-us+f3"


def espeak(text: str, speed: int, pitch: int, workdir: Path) -> tuple[np.ndarray, int]:
    """Synthesise ``text``: mono int16 samples and their rate."""
    out = workdir / "speech.wav"
    cmd = ["espeak-ng", "-v", ESPEAK_VOICE, "-s", str(speed), "-p", str(pitch), "-w", str(out)]
    proc = subprocess.run([*cmd, text], capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.strip()}")
    with wave.open(str(out), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise RuntimeError(f"espeak-ng wrote {8 * width}-bit audio, expected 16-bit")
    pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)[:, 0].copy()
    return pcm, rate


def speak_to_fit(
    candidates: list[str], speed: int, pitch: int, seconds: float, workdir: Path
) -> tuple[str, np.ndarray, int]:
    """The longest candidate sentence whose speech fits in the clip (else the shortest, cut)."""
    budget = max(0.2, seconds - 0.1)
    for i, text in enumerate(candidates):
        pcm, rate = espeak(text, speed, pitch, workdir)
        if len(pcm) / rate <= budget or i == len(candidates) - 1:
            return text, pcm, rate
    raise AssertionError("unreachable")


def clip_audio(pcm: np.ndarray, rate: int, seconds: float, rng: np.random.Generator) -> bytes:
    """The speech placed at a small random offset in a clip-long track: a WAV file's bytes."""
    n = int(round(seconds * rate))
    track = np.zeros(n, np.int16)
    pcm = pcm[:n]
    slack = n - len(pcm)
    start = int(rng.integers(0, min(slack, int(0.1 * rate)) + 1)) if slack > 0 else 0
    track[start : start + len(pcm)] = pcm
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(track.tobytes())
    return buf.getvalue()
