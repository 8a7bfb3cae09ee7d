"""The shared training loop: seeding, device, batching, early stopping and logs (model folders
are written by :mod:`mepr.models.checkpoints`)."""

from __future__ import annotations

import copy
import csv
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mepr.devices import pick_device
from mepr.files import atomic_path, write_json_atomic


def resolve_device(name: str) -> torch.device:
    return torch.device(pick_device(name, "train.device is 'cuda' but no CUDA device is available"))


def seed_everything(seed: int) -> None:
    """Fixed seeds and deterministic kernels: same inputs give the same outputs."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def batches(
    items: np.ndarray, batch_size: int, generator: torch.Generator | None
) -> Iterator[np.ndarray]:
    """Batches of `items` (an index array), shuffled when a generator is given."""
    order = items
    if generator is not None:
        order = items[torch.randperm(len(items), generator=generator).numpy()]
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types; non-finite floats become null."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating, torch.Tensor)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def write_json(path: Path, data: Any) -> None:
    write_json_atomic(path, to_jsonable(data))


@dataclass
class EpochLog:
    epoch: int
    lr: float
    train_loss: float
    selection: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class FitResult:
    best_epoch: int
    best_selection: float
    epochs_run: int
    history: list[EpochLog]


def fit(
    model: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer,
    params: Any,
    max_epochs: int,
    train_epoch: Callable[[int], tuple[float, dict[str, float]]],
    evaluate: Callable[[], tuple[float, dict[str, float]]],
    curves_path: Path,
    log_prefix: str = "",
) -> FitResult:
    """Run epochs until `max_epochs` or `params.patience` epochs without a better dev score.

    `train_epoch(epoch)` runs one epoch (it steps `optimizer`) and returns the mean
    loss and extra columns; `evaluate()` returns the dev selection score (higher is better)
    and extra columns.  The best weights are restored into `model` at the end.
    """
    best_state = copy.deepcopy(model.state_dict())
    best, best_epoch, stale = -math.inf, 0, 0
    history: list[EpochLog] = []
    opt = optimizer
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        mode="max",
        factor=params.scheduler.factor,
        patience=params.scheduler.patience,
        min_lr=params.scheduler.min_lr,
    )
    start = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        lr = opt.param_groups[0]["lr"]
        model.train()
        loss, train_extra = train_epoch(epoch)
        model.eval()
        with torch.no_grad():
            sel, dev_extra = evaluate()
        sel_ok = sel if math.isfinite(sel) else -math.inf
        history.append(EpochLog(epoch, lr, loss, sel, {**train_extra, **dev_extra}))
        sched.step(sel_ok if math.isfinite(sel_ok) else -1e9)
        if sel_ok > best:
            best, best_epoch, stale = sel_ok, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if stale >= params.patience:
            break
    model.load_state_dict(best_state)
    write_curves(curves_path, history)
    print(
        f"{log_prefix}{len(history)} epochs in {time.perf_counter() - start:.1f}s, "
        f"best dev selection {best:.4f} at epoch {best_epoch}",
        file=sys.stderr,
    )
    return FitResult(best_epoch, best, len(history), history)


def write_curves(path: Path, history: list[EpochLog]) -> None:
    extra_cols: list[str] = []
    for h in history:
        extra_cols += [k for k in h.extra if k not in extra_cols]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "lr", "train_loss", "dev_selection", *extra_cols])
        for h in history:
            row = [h.epoch, f"{h.lr:.6g}", f"{h.train_loss:.6f}", f"{h.selection:.6f}"]
            row += [_fmt(h.extra.get(c)) for c in extra_cols]
            w.writerow(row)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6f}"
    return str(v)
