"""`fusion-trial`, `sweep-round`, `sweep-table`: one sweep trial or ablation row (stage 3
with its own train section, never failing on the trial's own failure), a greedy round's
winner, and the table of a sweep or of the ablations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _plan(text: str) -> dict:
    """A plan: JSON text, or a file holding it."""
    return json.loads(text if text.lstrip().startswith("{") else Path(text).read_text())


def _fusion_trial(a: argparse.Namespace) -> None:
    from mepr.config import parse_params
    from mepr.sweep.trial import run_fusion_trial

    run_fusion_trial(
        cross=a.cross,
        manifests=a.manifests,
        params=parse_params(a.params),
        seed=a.seed,
        out=a.out,
    )


def _sweep_round(a: argparse.Namespace) -> None:
    from mepr.sweep.table import write_round

    result = write_round(_plan(a.plan), Path(a.out))
    print(f"round {result['round']}: {result['key']} = {json.dumps(result['value'])}")


def _sweep_table(a: argparse.Namespace) -> None:
    from mepr.sweep.table import PlannedRow, build_rows, write_table

    plan = _plan(a.plan)
    rows = build_rows([PlannedRow(**r) for r in plan["rows"]], rank=plan["rank"])
    notes = list(plan["notes"])
    if a.rounds:  # greedy: the last round's file holds every key's winner
        winners = json.loads(Path(a.rounds[-1]).read_text())["winners"]
        notes.append(
            "Greedy winner: " + ", ".join(f"`{k}={json.dumps(v)}`" for k, v in winners.items())
        )
    write_table(rows, Path(a.out), Path(a.csv), plan["title"], notes)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fusion-trial",
        help="stage 3 with one trial's train section; its own failure becomes status.json",
    )
    p.add_argument("--cross", required=True, nargs="+", help="one train-cross folder per modality")
    p.add_argument("--manifests", required=True, nargs="+", help="every corpus manifest")
    p.add_argument("--params", required=True, help="JSON text or file of the trial's 'train'")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output folder (status.json + the stage-3 files)")
    p.set_defaults(func=_fusion_trial)

    p = sub.add_parser("sweep-round", help="a greedy round's winner from its trials' status")
    p.add_argument("--plan", required=True, help="the round's plan (JSON text or file)")
    p.add_argument("--out", required=True, help="the round's .json")
    p.set_defaults(func=_sweep_round)

    p = sub.add_parser("sweep-table", help="a sweep's ranked table, or the ablation table")
    p.add_argument("--plan", required=True, help="the table's plan (JSON text or file)")
    p.add_argument("--rounds", nargs="*", default=[], help="greedy: the rounds' .json in order")
    p.add_argument("--out", required=True, help="table.md")
    p.add_argument("--csv", required=True, help="table.csv")
    p.set_defaults(func=_sweep_table)
