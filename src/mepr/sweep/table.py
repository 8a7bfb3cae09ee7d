"""The tables a sweep and the ablations end in (`table.md` + `table.csv`), and a greedy
round's winner.

Every planned row is in a table, whatever became of it: trained rows with their dev
selection score and test metrics, failed ones with the reason their status.json gives,
skipped ones (an ablation that changes nothing here) with why. A sweep's table is ranked on
the dev selection score (what picks the winner; the test metrics are beside it, never used
to choose); the ablation table keeps the plan's order, the full system first.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mepr.files import atomic_path, write_json_atomic
from mepr.sweep.grid import pick_winner
from mepr.sweep.outcome import TEST_METRICS, Outcome, from_metrics, read_status

COLUMNS = (
    "row",
    "label",
    "status",
    "reason",
    "dev_selection",
    *(f"test_{m}" for _, m in TEST_METRICS),
    "seed",
    "overrides",
)


@dataclass(frozen=True)
class PlannedRow:
    """A row as the workflow plans it: where its outcome is read from (`kind` status: a
    trial's status.json; metrics: a stage-3 metrics.json; skipped: nowhere, `reason` says
    why), its grid values, and the greedy round that first ran it."""

    row: str
    label: str
    kind: str
    source: str | None = None
    reason: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    round: int | None = None
    seed: int | None = None


def outcome_of(row: PlannedRow) -> Outcome:
    if row.kind == "skipped":
        return Outcome("skipped", row.reason, seed=row.seed)
    if row.kind == "metrics":
        return from_metrics(json.loads(Path(row.source).read_text()), row.seed)
    return read_status(row.source)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def build_rows(planned: list[PlannedRow], rank: bool) -> list[dict[str, Any]]:
    """One dict per row (the CSV columns); ranked rows first, best dev score first (ties:
    the row id), then the failed and skipped ones in the plan's order."""
    rows = []
    for p in planned:
        o = outcome_of(p)
        rows.append(
            {
                "row": p.row,
                "label": p.label,
                "round": p.round,
                "status": o.status,
                "reason": o.reason,
                "dev_selection": o.dev_selection,
                **{f"test_{m}": o.test.get(m) for _, m in TEST_METRICS},
                "seed": o.seed if o.seed is not None else p.seed,
                "overrides": json.dumps(p.values, sort_keys=True),
            }
        )
    if rank:
        scored = sorted(
            (r for r in rows if r["dev_selection"] is not None),
            key=lambda r: (-r["dev_selection"], r["row"]),
        )
        rows = scored + [r for r in rows if r["dev_selection"] is None]
        for i, r in enumerate(rows):
            r["rank"] = i + 1 if r["dev_selection"] is not None else None
    return rows


def write_table(
    rows: list[dict[str, Any]], md: Path, csv_path: Path, title: str, notes: list[str]
) -> None:
    columns = [c for c in ("rank", "round") if any(r.get(c) is not None for r in rows)]
    columns += list(COLUMNS)
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows({c: _cell(r.get(c)) for c in columns} for r in rows)
    shown = [c for c in columns if c != "seed"]
    lines = [f"# {title}", "", *notes, ""] if notes else [f"# {title}", ""]
    lines += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for r in rows:
        cells = [_cell(r.get(c)).replace("|", "\\|") for c in shown]
        lines.append("| " + " | ".join(cells) + " |")
    with atomic_path(md) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def round_result(plan: Mapping[str, Any]) -> dict[str, Any]:
    """A greedy round's winner: the best dev score among its trials (in their competing
    order, the first of equal scores), or the key's current value when every trial failed,
    and every key's winner so far."""
    trials = [PlannedRow(**t) for t in plan["trials"]]
    outcomes = [outcome_of(t) for t in trials]
    best = pick_winner([o.dev_selection for o in outcomes])
    key = plan["key"]
    value = plan["current"] if best is None else trials[best].values[key]
    return {
        "round": plan["round"],
        "key": key,
        "winner": None if best is None else trials[best].row,
        "value": value,
        "dev_selection": None if best is None else outcomes[best].dev_selection,
        "winners": {**plan["winners"], key: value},
    }


def write_round(plan: Mapping[str, Any], out: Path) -> dict[str, Any]:
    result = round_result(plan)
    write_json_atomic(out, result)
    return result
