"""Stage 3 with one model per task: the single-task fusion job (``mepr train-fusion-single``).

It reads the stage-2 folders like the multi-task fusion (:func:`mepr.train.stages.train_fusion`)
and trains :class:`~mepr.models.fusion_single.SingleTaskFusionModel` for one task with the
stage-3 objective restricted to that task: its supervised term on the rows labelled for it and,
with ``train.ssl``, its pseudo-label term on the other corpus's rows (the reference trains its
single-task models on the same mixed batches with the other task's weight at 0).  Early
stopping selects on the task's dev score.  Writes into the output folder
``model.safetensors``, ``config.json``, ``metrics.json`` and ``curves.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mepr import shards
from mepr.config import TrainParams, pick
from mepr.metrics import softmax
from mepr.models import checkpoints
from mepr.models.fusion_single import TASK_OUTPUTS, SingleTaskFusionConfig, SingleTaskFusionModel
from mepr.train import loop
from mepr.train.data import CROSS_FEATURES, CrossFeatures, load_cross_features, load_labels
from mepr.train.losses import Objective
from mepr.train.stages import (
    _check_heads,
    _cross_inputs,
    _dev_index,
    _eval_batches,
    _fit,
    _label_tensors,
    _multitask_epoch,
    _optimizer,
    _prepare,
    _rows,
    _save,
    _split_outputs,
    baseline_predictions,
)

TASKS = tuple(TASK_OUTPUTS)


def emotion_width(path: str | Path) -> int:
    """Where the emotion part of a stage-2 features.parquet vector ends (its H_emotion)."""
    col = shards.read_table(path, CROSS_FEATURES).column("emotion_features")
    if len(col) == 0:
        raise ValueError(f"{path}: no rows, so no feature widths")
    return len(col[0].as_py())


def single_task_config(
    params: TrainParams, task: str, feats: dict[str, CrossFeatures], emotion_dims: dict[str, int]
) -> SingleTaskFusionConfig:
    """`task`'s model: train.fusion_single values, else train.fusion's, then train.* (dropout);
    the widths from the stage-2 features."""
    fs = params.fusion_single
    sizes = {k: v for k in ("hidden_dim", "heads") if (v := getattr(fs, k)) is not None}
    mods = tuple(feats)
    cfg = pick(
        SingleTaskFusionConfig,
        params.fusion,
        params,
        task=task,
        modalities=mods,
        input_dims=tuple(int(feats[m].features.shape[1]) for m in mods),
        emotion_dims=tuple(emotion_dims[m] for m in mods),
        feature_slice=getattr(fs.feature_slice, task),
        **sizes,
    )
    where = "train.fusion_single.hidden_dim" if "hidden_dim" in sizes else "train.fusion.hidden_dim"
    _check_heads(cfg.hidden_dim, cfg.heads, where)
    return cfg


def train_fusion_single(
    *,
    task: str,
    cross: list[str | Path],
    manifests: list[str | Path],
    params: TrainParams,
    seed: int,
    out: str | Path,
) -> dict[str, Any]:
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}' (emotion | personality)")
    out = Path(out)
    params = params.for_stage("fusion")  # the same stage-3 settings (train.stages.fusion)
    device = _prepare(out, seed, params)
    inputs = _cross_inputs(cross, ())  # the reference's single-task model has no ablations
    labels = load_labels(manifests)
    own = labels.has_emotion if task == "emotion" else labels.has_traits
    if not own[labels.index("train")].any():
        raise ValueError(f"no train rows labelled for {task}")
    feats = {m: load_cross_features(p, m, labels.video_id) for m, p in inputs.items()}
    mods = list(feats)
    cfg = single_task_config(params, task, feats, {m: emotion_width(p) for m, p in inputs.items()})
    model = SingleTaskFusionModel(cfg).to(device)
    opt = _optimizer(model, params)
    weighting = Objective(params, "fusion")
    max_epochs = params.fusion_single.max_epochs or params.fusion.max_epochs

    feat_t = {m: torch.from_numpy(f.features) for m, f in feats.items()}
    logits_t = torch.from_numpy(np.stack([feats[m].logits for m in mods], axis=1))
    scores_t = torch.from_numpy(np.stack([feats[m].scores for m in mods], axis=1))
    present_t = torch.from_numpy(np.stack([feats[m].present for m in mods], axis=1))
    stage2 = logits_t if task == "emotion" else scores_t
    w = present_t.float().unsqueeze(-1)
    teacher_all = (stage2 * w).sum(1) / w.sum(1).clamp_min(1.0)  # mean over present modalities
    # Every labelled row trains (the other corpus's rows feed the pseudo-label term only);
    # the own task's labelled dev rows select the model.
    train_idx = _rows(labels, "train", labels.has_emotion | labels.has_traits)
    dev_idx = _dev_index(labels, own)
    emo_rows, has_emo, traits, has_traits = _label_tensors(labels)
    # The Objective is two-task: the other task's rows are marked unlabelled and it gets
    # neither a teacher nor an output, so only this task's terms are ever formed.
    if task == "emotion":
        tensors = (emo_rows, has_emo, traits, torch.zeros_like(has_traits))
    else:
        tensors = (emo_rows, torch.zeros_like(has_emo), traits, has_traits)
    key = model.output_key
    other_key, n_other = next(v for t, v in TASK_OUTPUTS.items() if t != task)
    gen = torch.Generator().manual_seed(seed)

    def forward(b) -> torch.Tensor:
        bt = torch.from_numpy(np.asarray(b))
        o = model(
            {m: feat_t[m][bt].to(device) for m in mods},
            logits_t[bt].to(device),
            scores_t[bt].to(device),
            present_t[bt].to(device),
        )
        return o[key]

    def teach(b: np.ndarray):
        y = forward(b)
        outs = {key: y, other_key: y.new_zeros(len(b), n_other)}  # placeholder, never read
        t = y if params.ssl.fusion_teacher == "self" else teacher_all[b].to(device)
        teacher = (t.detach(), None) if task == "emotion" else (None, t.detach())
        return outs, teacher

    def predictions(idx=None):
        idx = np.arange(len(labels)) if idx is None else idx
        (y,) = _eval_batches(model, len(idx), lambda r: (forward(idx[r]),))
        return (softmax(y, float64=True), None) if task == "emotion" else (None, y)

    def train_epoch(_epoch):
        batches = loop.batches(train_idx, params.batch_size, gen)
        return _multitask_epoch(model, opt, weighting, batches, teach, tensors, device, params)

    dev = (labels, dev_idx, lambda: predictions(dev_idx))
    res = _fit(
        model, opt, params, max_epochs, train_epoch, dev, out, f"train-fusion-single {task}: "
    )
    probs, scores = predictions()
    prior_probs, mean_scores = baseline_predictions(labels, labels.index("train"))
    kind = params.selection

    def own_only(p, s):
        return (p, None) if task == "emotion" else (None, s)

    metrics: dict[str, Any] = {
        "stage": "fusion_single",
        "task": task,
        "modalities": mods,
        "feature_slice": cfg.feature_slice,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "n_train": int(len(train_idx)),
        "loss_weights": weighting.weights,
        "baseline": _split_outputs(labels, *own_only(prior_probs, mean_scores), kind),
        "unimodal": {
            m: _split_outputs(
                labels, *own_only(softmax(feats[m].logits, float64=True), feats[m].scores), kind
            )
            for m in mods
        },
        **_split_outputs(labels, probs, scores, kind),
    }
    config = {"stage": "fusion_single", "task": task, "modalities": mods, "model": cfg.to_dict()}
    return _save(out, model, config, metrics, params, seed, res)


def load_fusion_single(
    directory: str | Path, device: str | torch.device = "cpu"
) -> SingleTaskFusionModel:
    """A single-task stage-3 folder's model, in eval mode (checked by mepr.models.checkpoints)."""
    return checkpoints.load_model(directory, "fusion_single", device)[0]
