"""What the workflow hands the sweep commands: trials as table rows, a greedy round's plan,
a table's plan. Plans are plain JSON (a rule's params), so a change to any planned row
re-runs the table that shows it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from mepr import layout
from mepr.sweep.grid import Sweep, Trial, get_value, trial_seed
from mepr.sweep.table import PlannedRow


def trial_status(sweep: Sweep, trial: Trial) -> str:
    return layout.fill(layout.SWEEP_TRIAL, sweep=sweep.name, trial=trial.id)


def trial_label(trial: Trial) -> str:
    if not trial.overrides:
        return "the config's values"
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(trial.overrides.items()))


def unique(trials: Iterable[Trial]) -> list[Trial]:
    """Trials by id, each at its first appearance (a greedy round re-tries the last winner)."""
    seen: dict[str, Trial] = {}
    for t in trials:
        seen.setdefault(t.id, t)
    return list(seen.values())


def trial_row(sweep: Sweep, trial: Trial, seed: int) -> PlannedRow:
    return PlannedRow(
        row=trial.id,
        label=trial_label(trial),
        kind="status",
        source=trial_status(sweep, trial),
        values=trial.values,
        round=trial.round,
        seed=trial_seed(sweep, seed, trial),
    )


def round_plan(
    sweep: Sweep,
    train: Mapping[str, Any],
    r: int,
    trials: list[Trial],
    winners: Mapping[str, Any],
    seed: int,
) -> dict[str, Any]:
    """The `mepr sweep-round` plan of round `r` (`trials` in their competing order)."""
    key = sweep.keys[r]
    return {
        "round": r,
        "key": key,
        "current": get_value(train, key),
        "winners": dict(winners),
        "trials": [asdict(trial_row(sweep, t, seed)) for t in trials],
    }


def table_plan(
    title: str, rows: list[PlannedRow], *, rank: bool, notes: list[str] | None = None
) -> dict[str, Any]:
    return {"title": title, "rank": rank, "notes": notes or [], "rows": [asdict(r) for r in rows]}
