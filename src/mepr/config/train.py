"""The `train:` config section as typed, frozen dataclasses (config.yaml explains each key).

Defaults mirror the schema's (`tests/test_config_drift.py` fails on any difference); values
are checked against the schema when parsed (`mepr.config.parse`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

# train.encoder's default per modality (the schema's)
DEFAULT_ENCODERS = {
    "face": "mamba",
    "body": "mamba",
    "scene": "transformer",
    "audio": "mamba",
    "text": "transformer",
}


@dataclass(frozen=True)
class MambaParams:
    SECTION: ClassVar[tuple[str, ...]] = ("train", "mamba")
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2


@dataclass(frozen=True)
class SchedulerParams:
    SECTION: ClassVar[tuple[str, ...]] = ("train", "scheduler")
    factor: float = 0.5
    patience: int = 2
    min_lr: float = 1e-7


@dataclass(frozen=True)
class CrossParams:
    SECTION: ClassVar[tuple[str, ...]] = ("train", "cross")
    hidden_dim: int = 64
    heads: int = 4
    layers: int = 1
    max_epochs: int = 60


@dataclass(frozen=True)
class SslParams:
    SECTION: ClassVar[tuple[str, ...]] = ("train", "ssl")
    enabled: bool = True
    threshold_emotion: float = 0.6
    threshold_personality: float = 0.6
    weight_emotion: float = 1.0
    weight_personality: float = 0.2
    personality_target: str = "binary"  # binary (reference) | soft
    fusion_teacher: str = "stage2"  # stage-3 pseudo-labels: stage2 | self (reference)


@dataclass(frozen=True)
class GradNormParams:
    SECTION: ClassVar[tuple[str, ...]] = ("train", "gradnorm")
    enabled: bool = True
    alpha_sup: float = 1.0
    w_lr_sup: float = 0.005
    alpha_ssl: float = 1.5
    w_lr_ssl: float = 0.01
    lambda_ssl: float = 0.4
    w_floor: float = 1e-3


@dataclass(frozen=True)
class FusionParams:
    SECTION: ClassVar[tuple[str, ...]] = ("train", "fusion")
    hidden_dim: int = 64
    heads: int = 4
    max_epochs: int = 80
    drop_modalities: tuple[str, ...] = ()
    graph_attention: bool = True
    cross_attention: bool = True
    predict_projection_emotion: bool = True
    predict_projection_personality: bool = True
    guide_emotion: bool = True
    guide_personality: bool = False


@dataclass(frozen=True)
class TrainParams:
    SECTION: ClassVar[tuple[str, ...]] = ("train",)
    device: str = "auto"
    threads: int = 1  # CPU intra-op threads (0: torch's default, one per core)
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5
    max_epochs: int = 60
    patience: int = 15
    hidden_dim: int = 64
    out_features: int = 64
    layers: int = 1
    heads: int = 4
    dropout: float = 0.2
    max_steps: int = 64
    selection: str = "wacc_acc"  # metrics.selection_score kind: wacc_acc | mean_combo
    # the temporal encoder of every modality (stage 1/2 jobs get their modality's), or the
    # per-modality mapping
    encoder: str | dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ENCODERS))
    mamba: MambaParams = field(default_factory=MambaParams)
    scheduler: SchedulerParams = field(default_factory=SchedulerParams)
    cross: CrossParams = field(default_factory=CrossParams)
    ssl: SslParams = field(default_factory=SslParams)
    gradnorm: GradNormParams = field(default_factory=GradNormParams)
    fusion: FusionParams = field(default_factory=FusionParams)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def encoder_for(self, modality: str) -> str:
        if isinstance(self.encoder, str):
            return self.encoder
        try:
            return self.encoder[modality]
        except KeyError:
            raise ValueError(f"train.encoder has no entry for modality '{modality}'") from None
