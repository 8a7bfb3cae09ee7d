"""WhisperX: Whisper transcription + forced alignment for word timestamps (paper setup).

whisperx pins torch~=2.8 and pyannote, so it lives in its own environment (envs/asr.yaml);
the import is deferred so the rest of mepr never needs it.
"""

from __future__ import annotations

import numpy as np

from mepr.asr import Transcript, Word
from mepr.config import AsrParams


class WhisperXTranscriber:
    name = "whisperx"

    def __init__(self, params: AsrParams, device: str | None = None, batch_size: int = 16):
        try:
            import whisperx
        except ImportError as e:  # pragma: no cover - depends on the optional env
            raise RuntimeError(
                "asr.backend is 'whisperx' but whisperx is not installed: run the ASR rule with "
                "--use-conda (envs/asr.yaml) or `pip install mepr[whisperx]` in its own venv"
            ) from e
        import torch

        self._wx = whisperx
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        compute_type = "float16" if self.device == "cuda" else "int8"
        self.language = params.language
        self.batch_size = batch_size
        self._model = whisperx.load_model(
            params.model, self.device, compute_type=compute_type, language=params.language
        )
        self._align, self._align_meta = whisperx.load_align_model(
            language_code=params.language, device=self.device
        )

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript:
        if sample_rate != 16000:
            raise ValueError(f"WhisperX expects 16000 Hz audio, got {sample_rate}")
        if audio.size == 0:
            return Transcript("")
        result = self._model.transcribe(audio.astype(np.float32), batch_size=self.batch_size)
        aligned = self._wx.align(
            result["segments"], self._align, self._align_meta, audio, self.device
        )
        words = [  # the aligner gives no times for some tokens (numerals): kept as None
            Word(w["word"], _seconds(w.get("start")), _seconds(w.get("end")))
            for seg in aligned["segments"]
            for w in seg.get("words", [])
        ]
        text = " ".join(seg["text"].strip() for seg in result["segments"]).strip()
        return Transcript(text, words)


def _seconds(value) -> float | None:
    return None if value is None else float(value)
