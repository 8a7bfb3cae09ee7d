"""Step 1 of a prediction, one video at a time: frames + crops, audio, transcript.

The same functions as the workflow's extraction rules (:func:`mepr.media.extract.frames_rows`
with a :class:`MediaPipeDetector`, :func:`mepr.media.extract.audio_row`, the ASR backend of
:func:`mepr.asr.get_transcriber`), so an :class:`Extraction` holds the rows the DAG's
frames/audio/transcripts shards would hold for that video.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mepr.config import AsrParams, DetectParams
from mepr.labels import IMAGE_MODALITIES
from mepr.predict.errors import PredictError
from mepr.predict.inputs import VideoInput, probe_video
from mepr.predict.spec import Pipeline


@dataclass
class Extraction:
    """One video's raw inputs: the rows the DAG's frames/audio/transcripts shards would hold."""

    video: VideoInput
    meta: dict[str, Any]
    frame_rows: list[dict[str, Any]] = field(default_factory=list)
    audio: dict[str, Any] | None = None
    transcript: dict[str, Any] = field(
        default_factory=lambda: {"text": "", "source": "none", "words": []}
    )
    errors: dict[str, str] = field(default_factory=dict)  # stage -> reason
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio and self.audio["has_audio"])

    @property
    def failed(self) -> bool:
        """Nothing usable: neither frames nor an audio track."""
        return not self.frame_rows and not self.has_audio

    def failure_reason(self) -> str:
        reasons = list(dict.fromkeys(self.errors.values()))
        if not reasons:
            return "no decodable frames and no audio track"
        return "; ".join(reasons) if len(reasons) > 1 else reasons[0]

    def pcm(self) -> np.ndarray:
        if not self.audio:
            return np.zeros(0, np.float32)
        return np.frombuffer(self.audio["pcm_s16le"], dtype="<i2").astype(np.float32) / 32768.0


class MediaTools:
    """The face/person detector and the ASR backend: loaded on first use, kept for the run."""

    def __init__(self) -> None:
        self._detector = None
        self._transcriber = None

    def detector(self, params: DetectParams):
        if self._detector is None:
            from mepr.media.detect import MediaPipeDetector

            self._detector = MediaPipeDetector(params)
        return self._detector

    def transcriber(self, params: AsrParams):
        if self._transcriber is None:
            from mepr.asr import get_transcriber

            try:
                self._transcriber = get_transcriber(params)
            except RuntimeError as e:  # e.g. whisperx missing: every video would lack text
                raise PredictError(
                    f"{e}; or put each video's transcript beside it as VIDEO.txt"
                ) from e
        return self._transcriber

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None


def extract_video(
    video: VideoInput, pipeline: Pipeline, modalities: list[str], tools: MediaTools
) -> Extraction:
    """Frames + crops, audio and transcript of one video; problems are recorded, not raised
    (except an ASR backend that cannot load: it would fail every video)."""
    from mepr.media.extract import audio_row, frames_rows
    from mepr.media.video import MediaError

    ex = Extraction(video=video, meta=probe_video(video.path))
    p = pipeline
    t = time.perf_counter()
    if set(modalities) & set(IMAGE_MODALITIES):
        try:
            ex.frame_rows = frames_rows(
                video.video_id, video.path, tools.detector(p.detect), p.frames, p.detect
            )
        except MediaError as e:
            ex.errors["frames"] = str(e)
        except Exception as e:  # one bad file must not stop the batch
            ex.errors["frames"] = f"frame extraction failed: {type(e).__name__}: {e}"
    ex.timings["frames_s"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        ex.audio = audio_row(video.video_id, video.path, p.audio)
    except MediaError as e:
        ex.errors["audio"] = str(e)
    except Exception as e:
        ex.errors["audio"] = f"audio extraction failed: {type(e).__name__}: {e}"
    ex.timings["audio_s"] = time.perf_counter() - t
    t = time.perf_counter()
    sidecar = video.path.with_suffix(".txt")
    if "text" in modalities and p.asr.use_corpus_transcripts and sidecar.is_file():
        # like a corpus transcript in the DAG: a VIDEO.txt next to the video replaces ASR
        text = sidecar.read_text(encoding="utf-8", errors="replace").strip()
        ex.transcript = {"text": text, "source": "sidecar", "words": []}
    elif "text" in modalities and ex.has_audio:
        transcriber = tools.transcriber(p.asr)  # a backend that cannot load stops the run
        try:
            tr = transcriber.transcribe(ex.pcm(), ex.audio["sample_rate"])
            ex.transcript = {
                "text": tr.text,
                "source": transcriber.name,
                "words": [{"word": w.word, "start": w.start, "end": w.end} for w in tr.words],
            }
        except Exception as e:
            ex.warnings.append(f"ASR failed: {e}")
    ex.timings["asr_s"] = time.perf_counter() - t
    return ex
