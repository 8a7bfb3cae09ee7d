"""Speech recognition behind one small interface: `get_transcriber(params).transcribe(audio)`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from mepr.config import AsrParams


@dataclass
class Word:
    word: str
    start: float | None  # seconds; None where the aligner could not place the word
    end: float | None


@dataclass
class Transcript:
    text: str
    words: list[Word] = field(default_factory=list)


class Transcriber(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript:
        """audio: float32 mono in [-1, 1]."""
        ...


def get_transcriber(params: AsrParams) -> Transcriber:
    if params.backend == "pocketsphinx":
        from mepr.asr.sphinx import PocketSphinxTranscriber

        return PocketSphinxTranscriber(params)
    if params.backend == "whisperx":
        from mepr.asr.whisperx_backend import WhisperXTranscriber

        return WhisperXTranscriber(params)
    raise ValueError(f"unknown ASR backend '{params.backend}' (pocketsphinx | whisperx)")
