"""WhisperX: Whisper transcription + forced alignment for word timestamps (paper setup).

whisperx pins torch~=2.8 and pyannote, so it lives in its own environment (envs/asr.yaml);
the import is deferred so the rest of mepr never needs it. Its models come from the model store
only (`mepr.embed.store`, filled by `mepr fetch-models`), with hub access off: the
faster-whisper (CTranslate2) model at `asr.revision`, the torchaudio alignment checkpoint of
the language and NLTK's punkt_tab (which WhisperX would otherwise download on first use). The
voice activity model ships inside the whisperx wheel.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from mepr.asr import Transcript, Word
from mepr.config import AsrParams


class WhisperXTranscriber:
    name = "whisperx"

    def __init__(self, params: AsrParams, device: str | None = None, batch_size: int = 16):
        from mepr.embed import store

        root = store.model_store()
        store.go_offline()  # before whisperx (transformers, huggingface_hub, nltk) is imported
        _use_nltk_data(str(root / "nltk"))  # the store's punkt_tab, found before any other
        try:
            import whisperx
        except ImportError as e:  # pragma: no cover - depends on the optional env
            raise RuntimeError(
                "asr.backend is 'whisperx' but whisperx is not installed: run the ASR rule with "
                "--use-conda (envs/asr.yaml) or `pip install mepr[whisperx]` in its own venv"
            ) from e
        from mepr.devices import pick_device

        self._wx = whisperx
        self.device = device or pick_device("auto")
        compute_type = "float16" if self.device == "cuda" else "int8"
        self.language = params.language
        self.batch_size = batch_size
        models = store.stored_asr(params, root)  # ModelNotInStore names what is missing
        self.model_path = models["model"]
        self._model = whisperx.load_model(
            str(models["model"]),
            self.device,
            compute_type=compute_type,
            language=params.language,
            local_files_only=True,
        )
        self._align, self._align_meta = whisperx.load_align_model(
            language_code=params.language, device=self.device, model_dir=str(models["align_dir"])
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


def _use_nltk_data(folder: str) -> None:
    """Put `folder` first on NLTK's data path (NLTK_DATA for an import yet to come)."""
    rest = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p and p != folder]
    os.environ["NLTK_DATA"] = os.pathsep.join([folder, *rest])
    data = sys.modules.get("nltk.data")
    if data is not None and folder not in data.path:
        data.path.insert(0, folder)


def _seconds(value) -> float | None:
    return None if value is None else float(value)
