"""Audio track extraction: 16 kHz mono int16 PCM through ffmpeg."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mepr.media.video_decode import MediaError, check_file

_NO_AUDIO_MARKERS = ("does not contain any stream", "matches no streams", "Output file is empty")


@dataclass
class AudioTrack:
    sample_rate: int
    pcm: np.ndarray  # int16 mono; empty when the video has no audio track

    @property
    def has_audio(self) -> bool:
        return self.pcm.size > 0

    def as_float(self) -> np.ndarray:
        return self.pcm.astype(np.float32) / 32768.0


def rms_dbfs(pcm: np.ndarray) -> float:
    """RMS level of int16 PCM in dB relative to full scale (-inf for digital silence)."""
    if pcm.size == 0:
        return float("-inf")
    x = pcm.astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(x * x)))
    return 20.0 * float(np.log10(rms)) if rms > 0 else float("-inf")


def extract_audio(
    path: str | Path, sample_rate: int, start: float | None = None, end: float | None = None
) -> AudioTrack:
    """The first audio track as mono int16 PCM at `sample_rate`.

    `start` / `end` (seconds from the file's start, the time line of ffmpeg's ``-ss`` and of
    `mepr.media.video.sample_frames` intervals) keep only [start, end): ffmpeg seeks the input to `start` (``-ss`` before ``-i``: it decodes from
    the packet before and drops samples up to `start` exactly) and stops reading after
    ``end - start`` seconds (``-t``). Only decoding, nothing is re-encoded or written to disk.
    Without them the whole track is decoded, as before."""
    p = Path(path)
    check_file(p)
    window: list[str] = []
    if start is not None and start > 0:
        window += ["-ss", f"{start:.6f}"]
    if end is not None:
        window += ["-t", f"{end - (start or 0.0):.6f}"]
    cmd = [
        "ffmpeg", "-nostdin", "-v", "error", *window, "-i", str(p),
        "-map", "0:a:0?", "-vn", "-ac", "1", "-ar", str(sample_rate),
        "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False)
    # ffmpeg prefixes messages with the input's path: drop it (failure tables stay portable)
    err = proc.stderr.decode("utf-8", "replace").replace(f"{p}: ", "").strip()
    if proc.returncode != 0:
        if any(m in err for m in _NO_AUDIO_MARKERS):
            return AudioTrack(sample_rate, np.zeros(0, dtype=np.int16))
        raise MediaError(
            f"ffmpeg could not decode audio: {err.splitlines()[-1] if err else proc.returncode}"
        )
    pcm = np.frombuffer(proc.stdout, dtype="<i2")
    if end is not None:  # resampling may round up by a sample
        pcm = pcm[: round((end - (start or 0.0)) * sample_rate)]
    return AudioTrack(sample_rate, pcm.copy())
