"""The paper's ablations as table rows: the full system (results/fusion), each fusion
component off, each modality left out, and the single-task fusions.

A row is planned from the config: one that would change nothing here (a switch already off,
a modality already left out, the last modality) is a skipped row that says why, so the
table always has the rows the config asked for and no job trains the full system twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mepr.labels import MODALITIES
from mepr.sweep.table import PlannedRow

# train.fusion switches the paper's ablation tables turn off, with the row labels
COMPONENTS = {
    "graph_attention": "graph attention fusion",
    "cross_attention": "cross-modal attention",
    "predict_projection_emotion": "emotion prediction projection",
    "predict_projection_personality": "personality prediction projection",
    "guide_emotion": "emotion guide bank",
    "guide_personality": "personality guide bank",
}
TASKS = ("emotion", "personality")
FULL = "full"


def row_overrides(row: str, train: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The train overrides of a trained row, or ({}, why it is skipped)."""
    fusion = train["fusion"]
    if row.startswith("no_"):
        switch = row.removeprefix("no_")
        if not fusion[switch]:
            return {}, f"train.fusion.{switch} is already off in this config"
        return {f"fusion.{switch}": False}, ""
    if row.startswith("without_"):
        modality = row.removeprefix("without_")
        dropped = set(fusion["drop_modalities"])
        if modality in dropped:
            return {}, f"{modality} is already left out (train.fusion.drop_modalities)"
        left = [m for m in MODALITIES if m not in dropped | {modality}]
        if not left:
            return {}, f"without {modality} no modality is left to fuse"
        return {"fusion.drop_modalities": [m for m in MODALITIES if m not in left]}, ""
    raise ValueError(f"not a trained ablation row: '{row}'")


def label(row: str) -> str:
    if row == FULL:
        return "full system"
    if row.startswith("no_"):
        return f"without {COMPONENTS[row.removeprefix('no_')]}"
    if row.startswith("without_"):
        return f"without the {row.removeprefix('without_')} modality"
    return f"single-task {row.removeprefix('single_task_')} fusion"


def plan_rows(
    rows: list[str],
    train: Mapping[str, Any],
    *,
    full_metrics: str,
    row_status: str,
    single_task_metrics: str,
    seed: int,
) -> list[PlannedRow]:
    """The table's rows in order, `full` first. `row_status` is the status.json template of
    a trained row ({row}); `single_task_metrics` that of a single-task fusion's metrics.json
    ({task})."""
    planned = [PlannedRow(FULL, label(FULL), "metrics", full_metrics, seed=seed)]
    for row in rows:
        if row.startswith("single_task_"):
            source = single_task_metrics.replace("{task}", row.removeprefix("single_task_"))
            planned.append(PlannedRow(row, label(row), "metrics", source, seed=seed))
            continue
        overrides, why = row_overrides(row, train)
        if why:
            planned.append(PlannedRow(row, label(row), "skipped", reason=why))
        else:
            source = row_status.replace("{row}", row)
            planned.append(PlannedRow(row, label(row), "status", source, "", overrides, None, seed))
    return planned


def trained_rows(planned: list[PlannedRow]) -> list[PlannedRow]:
    """The rows an ablation_row job trains (their status.json)."""
    return [p for p in planned if p.kind == "status"]
