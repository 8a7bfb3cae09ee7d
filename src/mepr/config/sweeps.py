"""The `sweeps:` and `ablations:` config sections as typed dataclasses (config.yaml explains
each key). Defaults mirror the schema's; tests/test_config_drift.py fails on any difference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

# the schema's ablations.rows default: every row of the paper's ablation tables beside 'full'
ABLATION_ROWS = (
    "no_graph_attention",
    "no_cross_attention",
    "no_predict_projection_emotion",
    "no_predict_projection_personality",
    "no_guide_emotion",
    "no_guide_personality",
    "without_face",
    "without_body",
    "without_scene",
    "without_audio",
    "without_text",
    "single_task_emotion",
    "single_task_personality",
)


@dataclass(frozen=True)
class SweepParams:
    """One entry of `sweeps:` (the schema's `$defs/sweep`; its NAME is the dict key)."""

    grid: dict[str, list[Any]]
    mode: str = "exhaustive"  # exhaustive | greedy
    stage: str = "fusion"
    seeds: str = "per_trial"  # per_trial | shared


@dataclass(frozen=True)
class AblationParams:
    SECTION: ClassVar[tuple[str, ...]] = ("ablations",)
    rows: tuple[str, ...] = ABLATION_ROWS
