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


TASKS = ("emotion", "personality")


def _given(overrides) -> dict[str, Any]:
    """The fields of an override dataclass that are set (None: take the section's value)."""
    return {k: v for k, v in dataclasses.asdict(overrides).items() if v is not None}


@dataclass(frozen=True)
class UnimodalSize:
    """One modality's stage-1 model for one task: the values that differ from train.*."""

    hidden_dim: int | None = None
    out_features: int | None = None
    layers: int | None = None
    heads: int | None = None
    dropout: float | None = None
    block_width: int | None = None
    positional: bool | None = None
    projection: str | None = None
    head: str | None = None
    personality_activation: str | None = None

    def given(self) -> dict[str, Any]:
        return _given(self)


@dataclass(frozen=True)
class UnimodalTasks:
    emotion: UnimodalSize = field(default_factory=UnimodalSize)
    personality: UnimodalSize = field(default_factory=UnimodalSize)


@dataclass(frozen=True)
class UnimodalParams:
    """train.unimodal: per modality and task, the stage-1 sizes that differ from train.*."""

    SECTION: ClassVar[tuple[str, ...]] = ("train", "unimodal")
    face: UnimodalTasks = field(default_factory=UnimodalTasks)
    body: UnimodalTasks = field(default_factory=UnimodalTasks)
    scene: UnimodalTasks = field(default_factory=UnimodalTasks)
    audio: UnimodalTasks = field(default_factory=UnimodalTasks)
    text: UnimodalTasks = field(default_factory=UnimodalTasks)

    def given(self, modality: str, task: str) -> dict[str, Any]:
        """The overrides set for `modality`'s `task` model (a modality without an entry: none)."""
        if task not in TASKS:
            raise ValueError(f"unknown task '{task}'")
        tasks = getattr(self, modality, None)
        return getattr(tasks, task).given() if isinstance(tasks, UnimodalTasks) else {}


@dataclass(frozen=True)
class CrossSize:
    """One modality's stage-2 bridge: the values that differ from train.cross.* / train.*."""

    hidden_dim: int | None = None
    out_features: int | None = None
    heads: int | None = None
    layers: int | None = None
    dropout: float | None = None
    block: str | None = None
    positional: bool | None = None
    head_activation: str | None = None
    personality_activation: str | None = None

    def given(self) -> dict[str, Any]:
        return _given(self)


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
    block: str = "prenorm"  # prenorm (mepr) | postnorm | mha (the authors' video-text / audio)
    positional: bool = False  # postnorm blocks only
    head_activation: str = "gelu"
    personality_activation: str = "sigmoid"
    face: CrossSize = field(default_factory=CrossSize)
    body: CrossSize = field(default_factory=CrossSize)
    scene: CrossSize = field(default_factory=CrossSize)
    audio: CrossSize = field(default_factory=CrossSize)
    text: CrossSize = field(default_factory=CrossSize)

    def given(self, modality: str) -> dict[str, Any]:
        """The overrides set for `modality`'s bridge (a modality without an entry: none)."""
        size = getattr(self, modality, None)
        return size.given() if isinstance(size, CrossSize) else {}


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
    shared: str = "bridge"  # bridge | all (reference): parameters whose gradient norms count
    rescale: str = "keep_sum"  # keep_sum | budget (reference): after an update
    ssl_init: str = "ratio"  # ratio (of ssl.weight_*) | even (reference: lambda_ssl each)


@dataclass(frozen=True)
class LossParams:
    """Supervised terms of stage 1 and of the stage-2 `weighted` objective."""

    SECTION: ClassVar[tuple[str, ...]] = ("train", "loss")
    emotion: str = "hard"  # hard | soft (reference)
    class_weights: bool = False
    emotion_weight: float = 1.0
    personality_weight: float = 1.0
    cross_objective: str = "ssl_gradnorm"  # ssl_gradnorm | weighted (reference video trainer)


@dataclass(frozen=True)
class StageSettings:
    """One stage's training settings that differ from train.* (None: that value)."""

    batch_size: int | None = None
    patience: int | None = None
    weight_decay: float | None = None


@dataclass(frozen=True)
class StagesParams:
    SECTION: ClassVar[tuple[str, ...]] = ("train", "stages")
    unimodal: StageSettings = field(default_factory=StageSettings)
    cross: StageSettings = field(default_factory=StageSettings)
    fusion: StageSettings = field(default_factory=StageSettings)


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
class FeatureSlices:
    """Per task, the stage-2 features each modality feeds its single-task fusion."""

    emotion: str = "both"  # both (emotion ‖ personality) | own (the task's part)
    personality: str = "both"


@dataclass(frozen=True)
class FusionSingleParams:
    """train.fusion_single: the single-task fusion (None: the train.fusion value)."""

    SECTION: ClassVar[tuple[str, ...]] = ("train", "fusion_single")
    hidden_dim: int | None = None
    heads: int | None = None
    max_epochs: int | None = None
    feature_slice: FeatureSlices = field(default_factory=FeatureSlices)


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
    block_width: int = 64  # gated_mlp encoders
    positional: bool = True  # transformer / postnorm_transformer encoders
    projection: str = "norm"  # stage-1 input projection: norm | linear
    head: str = "mlp"  # stage-1 head: mlp | linear
    personality_activation: str = "sigmoid"  # stage-1 personality output: sigmoid | relu | none
    # the temporal encoder of every modality (stage 1/2 jobs get their modality's), or the
    # per-modality mapping; a modality's entry is one name or {emotion: NAME, personality: NAME}
    encoder: str | dict[str, str | dict[str, str]] = field(
        default_factory=lambda: dict(DEFAULT_ENCODERS)
    )
    unimodal: UnimodalParams = field(default_factory=UnimodalParams)
    mamba: MambaParams = field(default_factory=MambaParams)
    scheduler: SchedulerParams = field(default_factory=SchedulerParams)
    cross: CrossParams = field(default_factory=CrossParams)
    ssl: SslParams = field(default_factory=SslParams)
    gradnorm: GradNormParams = field(default_factory=GradNormParams)
    loss: LossParams = field(default_factory=LossParams)
    fusion: FusionParams = field(default_factory=FusionParams)
    fusion_single: FusionSingleParams = field(default_factory=FusionSingleParams)
    stages: StagesParams = field(default_factory=StagesParams)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def for_stage(self, stage: str) -> TrainParams:
        """These settings with `stages.<stage>`'s values (unimodal | cross | fusion) applied."""
        return dataclasses.replace(self, **_given(getattr(self.stages, stage)))

    def encoder_for(self, modality: str, task: str | None = None) -> str:
        """The encoder of `modality`'s `task` model.  `encoder` is one name, a per-modality
        mapping, or (what a stage-1/2 job receives) one modality's entry; an entry that names
        one encoder per task needs `task`."""
        value: Any = self.encoder
        if isinstance(value, dict) and not set(value) & set(TASKS):
            if modality not in value:
                raise ValueError(f"train.encoder has no entry for modality '{modality}'")
            value = value[modality]
        if isinstance(value, dict):
            if task not in TASKS:
                raise ValueError(
                    f"train.encoder.{modality} names an encoder per task: say which task "
                    f"({' or '.join(TASKS)}), not {task!r}"
                )
            return value[task]
        return value


def job_section(train: dict[str, Any], modality: str | None = None) -> dict[str, Any]:
    """The part of the `train:` section a job depends on (what its rule passes, so Snakemake
    re-runs only the jobs a change concerns): everything for fusion (`modality` None); for a
    modality's stage-1/2 job, that modality's encoder, unimodal sizes and bridge sizes, and
    no fusion settings."""
    section = dict(train)
    if modality is None:
        return section
    encoder = section.get("encoder")
    if isinstance(encoder, dict) and modality in encoder:
        section["encoder"] = encoder[modality]
    if isinstance(section.get("unimodal"), dict):
        section["unimodal"] = {k: v for k, v in section["unimodal"].items() if k == modality}
    if isinstance(section.get("cross"), dict):
        others = set(DEFAULT_ENCODERS) - {modality}
        section["cross"] = {k: v for k, v in section["cross"].items() if k not in others}
    section.pop("fusion", None)
    section.pop("fusion_single", None)
    if isinstance(section.get("stages"), dict):
        section["stages"] = {k: v for k, v in section["stages"].items() if k != "fusion"}
    return section
