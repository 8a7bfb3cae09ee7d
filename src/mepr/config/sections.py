"""The typed config sections the media, ASR, embedding and demo stages receive.

Defaults here mirror the schema's (`SECTION` names where each class sits in it);
`tests/test_config_drift.py` fails on any difference, so the schema stays the one source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class FramesParams:
    """Frame sampling: `n_frames` spread uniformly, or (`fps` set, it wins) `fps` per second."""

    SECTION: ClassVar[tuple[str, ...]] = ("frames",)
    n_frames: int = 8
    fps: float | None = None
    crop_size: int = 224
    jpeg_quality: int = 90
    # round (nearest frame, repeats in short videos) | floor (the reference's int(linspace))
    index_rounding: str = "round"
    # square (edge-padded square, resized) | box (the box's own pixels, unresized)
    crop: str = "square"


@dataclass(frozen=True)
class DetectParams:
    SECTION: ClassVar[tuple[str, ...]] = ("detect",)
    backend: str = "mediapipe"
    face_min_confidence: float = 0.5
    body_min_confidence: float = 0.5
    face_margin: float = 0.15
    body_margin: float = 0.1
    # best (one face a frame) | all (every face, as the reference)
    faces: str = "best"
    # pose (landmarks' extent) | person_at_face (the reference's pairing and fallbacks)
    body_box: str = "pose"


@dataclass(frozen=True)
class AudioParams:
    SECTION: ClassVar[tuple[str, ...]] = ("audio",)
    sample_rate: int = 16000
    # a track whose RMS level is below this (dBFS; all-zero = -inf) is recorded as silent
    silence_dbfs: float = -60.0


@dataclass(frozen=True)
class AsrParams:
    SECTION: ClassVar[tuple[str, ...]] = ("asr",)
    backend: str = "pocketsphinx"
    model: str = "en-us"
    language: str = "en"
    use_corpus_transcripts: bool = True
    # whisperx: the hub revision of the Whisper model (None: main); see mepr.embed.store
    revision: str | None = None


@dataclass(frozen=True)
class EncoderParams:
    """One modality's encoder: its `encoders.<modality>` entry with the `encoders` keys shared
    by every modality (`SHARED`) merged in; fields unused by a kind keep their defaults."""

    SECTION: ClassVar[tuple[str, ...]] = ("encoders",)
    # the entries of `encoders` that are one modality's encoder (each its own sub-schema)
    MODALITIES: ClassVar[tuple[str, ...]] = ("face", "body", "scene", "audio", "text")
    kind: str
    model: str
    pretrained: str | None = None
    layer: int = -1
    window_s: float = 0.5
    # audio: window_mean (one step per window_s) | every_frame (each 20 ms encoder frame)
    steps: str = "window_mean"
    pooling: str = "token"
    max_tokens: int = 48
    batch_size: int = 16
    device: str = "auto"
    # audio: at most this many seconds of (padded) audio per batch, whatever batch_size says
    max_batch_seconds: float = 240.0
    # a hub model's commit / tag / branch (None: main); fetched into the model store
    revision: str | None = None
    # open_clip: the tower's MLP activation (auto: QuickGELU for weights trained with it)
    activation: str = "auto"
    # open_clip: the model's transform, or with CLIPProcessor's centre crop (clip_processor)
    preprocess: str = "open_clip"


@dataclass(frozen=True)
class DemoParams:
    SECTION: ClassVar[tuple[str, ...]] = ("demo",)
    clips: int = 24
    seconds: float = 2.0
    fps: int = 25
    width: int = 320
    height: int = 240
    transcripts_for: list[str] = field(default_factory=list)
    # also write a few broken clips (train split, labelled): see mepr.corpora.demo.BAD_INPUTS
    bad_inputs: bool = True
