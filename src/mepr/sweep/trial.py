"""One trial: stage 3 (mepr.train.stages.train_fusion, unchanged) with the trial's train
section into its own folder, and the `status.json` that says how it went."""

from __future__ import annotations

import sys
from pathlib import Path

from mepr.config import TrainParams
from mepr.sweep.outcome import (
    STATUS_FILE,
    Outcome,
    divergence,
    failure_reason,
    from_metrics,
    write_status,
)


def run_fusion_trial(
    *,
    cross: list[str | Path],
    manifests: list[str | Path],
    params: TrainParams,
    seed: int,
    out: str | Path,
) -> Outcome:
    from mepr.train.stages import train_fusion

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        metrics = train_fusion(cross=cross, manifests=manifests, params=params, seed=seed, out=out)
    except Exception as e:  # noqa: BLE001 (failure_reason re-raises what is not the trial's)
        reason = failure_reason(e)
        if reason is None:
            raise
        outcome = Outcome.failed(reason, seed)
    else:
        diverged = divergence(out / "curves.csv")
        outcome = Outcome.failed(diverged, seed) if diverged else from_metrics(metrics, seed)
    write_status(out / STATUS_FILE, outcome)
    if outcome.status != "ok":  # the job succeeds; its log says why the row is a failure
        print(f"fusion-trial: {outcome.status}: {outcome.reason}", file=sys.stderr)
    return outcome
