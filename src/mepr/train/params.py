"""The `train:` config section as typed, frozen dataclasses (see config.yaml for each key)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MambaParams:
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2


@dataclass(frozen=True)
class SchedulerParams:
    factor: float = 0.5
    patience: int = 2
    min_lr: float = 1e-7


@dataclass(frozen=True)
class CrossParams:
    hidden_dim: int = 64
    heads: int = 4
    layers: int = 1
    max_epochs: int = 60


@dataclass(frozen=True)
class SslParams:
    enabled: bool = True
    threshold_emotion: float = 0.6
    threshold_personality: float = 0.6
    weight_emotion: float = 1.0
    weight_personality: float = 0.2
    personality_target: str = "binary"  # binary (reference) | soft
    fusion_teacher: str = "stage2"  # stage-3 pseudo-labels: stage2 | self (reference)


@dataclass(frozen=True)
class GradNormParams:
    enabled: bool = True
    alpha_sup: float = 1.0
    w_lr_sup: float = 0.005
    alpha_ssl: float = 1.5
    w_lr_ssl: float = 0.01
    lambda_ssl: float = 0.4
    w_floor: float = 1e-3


@dataclass(frozen=True)
class FusionParams:
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
    device: str = "auto"
    threads: int = 1  # CPU intra-op threads (0: torch's default, one per core)
    batch_size: int = 32
    lr: float = 1e-4
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
    # the modality's encoder name for stage 1/2 jobs, or the per-modality mapping
    encoder: str | dict[str, str] = "mamba"
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


_NESTED = {
    "mamba": MambaParams,
    "scheduler": SchedulerParams,
    "cross": CrossParams,
    "ssl": SslParams,
    "gradnorm": GradNormParams,
    "fusion": FusionParams,
}


def _build(cls, data: Mapping[str, Any], where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown training parameter '{where}{unknown[0]}'")
    kwargs = {}
    for k, v in data.items():
        if cls is TrainParams and k in _NESTED:
            v = _build(_NESTED[k], v or {}, f"{where}{k}.")
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)


_CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "selection": ("wacc_acc", "mean_combo"),
    "ssl.personality_target": ("binary", "soft"),
    "ssl.fusion_teacher": ("stage2", "self"),
}


def _check(p: TrainParams) -> TrainParams:
    values = {
        "device": p.device,
        "selection": p.selection,
        "ssl.personality_target": p.ssl.personality_target,
        "ssl.fusion_teacher": p.ssl.fusion_teacher,
    }
    for key, value in values.items():
        if value not in _CHOICES[key]:
            raise ValueError(f"bad value for 'train.{key}': {value!r} (one of {_CHOICES[key]})")
    encoders = [p.encoder] if isinstance(p.encoder, str) else list(p.encoder.values())
    for enc in encoders:
        if enc not in ("mamba", "transformer"):
            raise ValueError(f"bad value for 'train.encoder': {enc!r} (mamba or transformer)")
    return p


def parse_params(data: Mapping[str, Any] | str | Path | None) -> TrainParams:
    """TrainParams from the `train:` section: a dict, its JSON text, or a JSON file path."""
    if data is None:
        return TrainParams()
    if isinstance(data, Path) or (isinstance(data, str) and not data.lstrip().startswith("{")):
        data = Path(data).read_text()
    if isinstance(data, str):
        data = json.loads(data)
    return _check(_build(TrainParams, dict(data), "train."))
