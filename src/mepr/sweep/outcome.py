"""What one trial (or ablation row) came to: `status.json`, the one file its job promises.

A trial that trains writes `ok` and the metrics its table shows; one that fails for a reason
of its own (its loss diverged, it ran out of memory, its settings do not fit together) writes
`failed` and the reason, so the sweep goes on and the table shows the row. Missing or broken
inputs still fail the job: they are the workflow's problem, not the trial's.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mepr.files import write_json_atomic

STATUS_FILE = "status.json"
# test metrics the tables show: (task block of metrics.json, metric)
TEST_METRICS = (
    ("emotion", "mWACC"),
    ("emotion", "mF1"),
    ("personality", "mACC"),
    ("personality", "mCCC"),
)


@dataclass(frozen=True)
class Outcome:
    status: str  # ok | failed | skipped
    reason: str = ""
    dev_selection: float | None = None
    test: dict[str, float | None] = field(default_factory=dict)  # mWACC, mF1, mACC, mCCC
    seed: int | None = None

    @classmethod
    def failed(cls, reason: str, seed: int | None = None) -> Outcome:
        return cls("failed", reason, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def from_metrics(metrics: Mapping[str, Any], seed: int | None = None) -> Outcome:
    """The outcome a stage-3 `metrics.json` records (a task it lacks: no value)."""
    dev = _finite(metrics.get("dev", {}).get("selection"))
    test = metrics.get("test", {})
    values = {m: _finite(test.get(task, {}).get(m)) for task, m in TEST_METRICS}
    if dev is None:
        return Outcome("failed", "no finite dev selection score", None, values, seed)
    return Outcome("ok", "", dev, values, seed)


def divergence(curves: Path) -> str | None:
    """Why a finished run's `curves.csv` shows it diverged (a non-finite training loss), or
    None. Training itself carries on past a NaN loss and keeps the best weights from before
    it, so the metrics alone can look fine."""
    if not curves.exists():
        return None
    with curves.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                loss = float(row["train_loss"])
            except (KeyError, ValueError):
                loss = math.nan
            if not math.isfinite(loss):
                return f"diverged: training loss {row.get('train_loss')} at epoch {row['epoch']}"
    return None


def failure_reason(error: BaseException) -> str | None:
    """The row's reason for an error that is the trial's own; None for any other (re-raised:
    a missing input or a bad stage-2 folder must fail the job)."""
    from mepr.models.checkpoints import CheckpointError
    from mepr.shards import ShardError

    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    name = type(error).__name__
    if isinstance(error, MemoryError) or name == "OutOfMemoryError" or "out of memory" in first:
        return f"out of memory: {first}"
    if isinstance(error, FloatingPointError | OverflowError):
        return f"diverged: {first}"
    if isinstance(error, CheckpointError | ShardError):
        return None
    if isinstance(error, ValueError):
        return f"invalid settings: {first}"
    return None


def write_status(path: Path, outcome: Outcome) -> None:
    write_json_atomic(path, outcome.to_dict())


def read_status(path: str | Path) -> Outcome:
    data = json.loads(Path(path).read_text())
    return Outcome(**data)
