"""Offline ASR with PocketSphinx and the en-us model shipped in its wheel.

Far less accurate than Whisper; it exists so that the demo and the tests exercise a real
recogniser on real speech without any download.
"""

from __future__ import annotations

import numpy as np

from mepr.asr import Transcript, Word
from mepr.config import AsrParams

_FRAMES_PER_SECOND = 100  # PocketSphinx segment times are in 10 ms frames
_NON_WORDS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]"}


class PocketSphinxTranscriber:
    name = "pocketsphinx"

    def __init__(self, params: AsrParams, sample_rate: int = 16000):
        from pocketsphinx import Decoder

        if params.language != "en":
            raise ValueError("the bundled PocketSphinx model is English only (asr.language: en)")
        self.sample_rate = sample_rate
        self._decoder = Decoder(samprate=sample_rate, loglevel="FATAL")

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript:
        if sample_rate != self.sample_rate:
            raise ValueError(f"PocketSphinx expects {self.sample_rate} Hz audio, got {sample_rate}")
        if audio.size == 0:
            return Transcript("")
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        words = [
            Word(
                seg.word.split("(")[0],
                seg.start_frame / _FRAMES_PER_SECOND,
                seg.end_frame / _FRAMES_PER_SECOND,
            )
            for seg in d.seg()
            if seg.word not in _NON_WORDS
        ]
        return Transcript(" ".join(w.word for w in words), words)
