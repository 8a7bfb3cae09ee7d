"""The three training jobs: stage 1 (unimodal), stage 2 (cross-domain), stage 3 (fusion).

Each job reads stage files, trains with early stopping on the dev selection score, and
writes into its output folder:

* ``model.safetensors``: the best weights;  ``config.json``: how to rebuild the model;
* ``metrics.json``: dev/test metrics of the best weights and of a constant baseline;
* ``curves.csv``: one row per epoch;
* stage 2 also ``features.parquet`` (:data:`mepr.train.data.CROSS_FEATURES`), stage 3
  ``predictions.parquet`` (:data:`mepr.train.data.FUSION_PREDICTIONS`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mepr import shards
from mepr.config import TrainParams, pick
from mepr.labels import EMOTIONS, MODALITIES, TRAITS
from mepr.metrics import emotion_metrics, personality_metrics, selection_score, softmax
from mepr.models import checkpoints
from mepr.models.encoders import ATTENTION_ENCODERS
from mepr.models.fusion import FusionConfig, FusionModel
from mepr.models.unimodal import CrossConfig, CrossDomainModel, UnimodalConfig, UnimodalModel
from mepr.train import loop
from mepr.train.data import (
    CROSS_FEATURES,
    FUSION_PREDICTIONS,
    Labels,
    load_cross_features,
    load_labels,
    load_sequences,
)
from mepr.train.losses import Objective, SupervisedLoss

EVAL_BATCH = 256


# --------------------------------------------------------------------------- evaluation
def split_metrics(
    labels: Labels,
    idx: np.ndarray,
    probs: np.ndarray | None,
    scores: np.ndarray | None,
    kind: str,
) -> dict[str, Any]:
    """Metrics on rows `idx` (those labelled for each task); probs/scores cover all rows."""
    out: dict[str, Any] = {}
    e = idx[labels.has_emotion[idx]] if probs is not None else idx[:0]
    p = idx[labels.has_traits[idx]] if scores is not None else idx[:0]
    out["emotion"] = emotion_metrics(probs[e], labels.emotion[e]) if len(e) else None
    out["personality"] = personality_metrics(scores[p], labels.traits[p]) if len(p) else None
    if out["emotion"] is None and out["personality"] is None:
        out["selection"] = float("nan")
    else:
        out["selection"] = selection_score(out["emotion"], out["personality"], kind=kind)
    out["n"] = {"emotion": int(len(e)), "personality": int(len(p))}
    return {k: v for k, v in out.items() if v is not None}


def baseline_predictions(labels: Labels, train_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A train-prior emotion predictor and a train-mean trait predictor, for all rows."""
    e = train_idx[labels.has_emotion[train_idx]]
    p = train_idx[labels.has_traits[train_idx]]
    counts = np.bincount(np.argmax(labels.emotion[e], axis=1), minlength=len(EMOTIONS))
    prior = (counts / max(counts.sum(), 1)).astype(np.float32) if len(e) else None
    if prior is None:
        prior = np.full(len(EMOTIONS), 1.0 / len(EMOTIONS), np.float32)
    mean = labels.traits[p].mean(axis=0) if len(p) else np.full(len(TRAITS), 0.5, np.float32)
    n = len(labels)
    return np.tile(prior, (n, 1)), np.tile(mean.astype(np.float32), (n, 1))


def _rows(labels: Labels, split: str, ok: np.ndarray) -> np.ndarray:
    """The rows of `split` where `ok` holds."""
    idx = labels.index(split)
    return idx[ok[idx]]


def _dev_index(labels: Labels, ok: np.ndarray) -> np.ndarray:
    dev = _rows(labels, "dev", ok)
    if len(dev) == 0:
        print("warning: no labelled dev rows; selecting on the train split", file=sys.stderr)
        dev = _rows(labels, "train", ok)
    return dev


def _check_heads(dim: int, heads: int, where: str) -> None:
    if dim % heads:
        raise ValueError(f"{where}: hidden size {dim} is not divisible by {heads} heads")


def _summary(metrics: dict[str, Any], prefix: str = "dev_") -> dict[str, float]:
    cols = {}
    if "emotion" in metrics:
        cols.update({f"{prefix}{k}": metrics["emotion"][k] for k in ("mWACC", "mF1", "mUAR")})
    if "personality" in metrics:
        cols.update(
            {f"{prefix}{k}": metrics["personality"][k] for k in ("mACC", "mCCC", "CCC_pooled")}
        )
    return cols


def _optimizer(model: torch.nn.Module, params: TrainParams) -> torch.optim.Optimizer:
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(trainable, lr=params.lr, weight_decay=params.weight_decay)


def _t(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


def _prepare(out: Path, seed: int, params: TrainParams) -> torch.device:
    out.mkdir(parents=True, exist_ok=True)
    if params.threads > 0:
        torch.set_num_threads(params.threads)
    loop.seed_everything(seed)
    return loop.resolve_device(params.device)


Predictions = tuple[np.ndarray | None, np.ndarray | None]  # emotion probs, trait scores


def _fit(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    params: TrainParams,
    max_epochs: int,
    train_epoch: Callable[[int], tuple[float, dict[str, float]]],
    dev: tuple[Labels, np.ndarray, Callable[[], Predictions]],
    out: Path,
    log_prefix: str,
) -> loop.FitResult:
    """Early stopping on the dev selection score; `dev` is (labels, dev rows, their predictor)."""
    labels, dev_idx, predict = dev

    def evaluate() -> tuple[float, dict[str, float]]:
        probs, scores = predict()
        sub = _Sub(labels, dev_idx)
        met = split_metrics(sub, np.arange(len(dev_idx)), probs, scores, params.selection)
        return met["selection"], _summary(met)

    return loop.fit(
        model,
        optimizer=opt,
        params=params,
        max_epochs=max_epochs,
        train_epoch=train_epoch,
        evaluate=evaluate,
        curves_path=out / "curves.csv",
        log_prefix=log_prefix,
    )


def _epoch_loss(batches: Iterable[np.ndarray], step: Callable[[np.ndarray], float | None]) -> float:
    """Mean loss per row over an epoch; `step` returns None for a batch without any loss term."""
    total, n = 0.0, 0
    for b in batches:
        loss = step(b)
        if loss is not None:
            total, n = total + loss * len(b), n + len(b)
    return total / max(n, 1)


def _split_outputs(labels: Labels, probs, scores, kind: str) -> dict[str, dict[str, Any]]:
    """Metrics of one set of predictions (all rows) on the dev and test splits."""
    return {s: split_metrics(labels, labels.index(s), probs, scores, kind) for s in ("dev", "test")}


def _save(
    out: Path,
    model: torch.nn.Module,
    config: dict[str, Any],
    metrics: dict[str, Any],
    params: TrainParams,
    seed: int,
    res: loop.FitResult,
) -> dict[str, Any]:
    """Write the best weights, config.json (`config` + how it was trained) and metrics.json."""
    config = {**config, "params": params.to_dict(), "seed": seed, "best_epoch": res.best_epoch}
    checkpoints.save_model(model, out, config)
    loop.write_json(out / "metrics.json", metrics)
    return metrics


# --------------------------------------------------------------------------- stage 1
def unimodal_config(params: TrainParams, modality: str, task: str, in_dim: int) -> UnimodalConfig:
    """`modality`'s `task` model: its train.encoder entry, train.unimodal overrides, then
    the train.* (and train.mamba.*) values."""
    enc = params.encoder_for(modality, task)
    sizes = params.unimodal.given(modality, task)
    cfg = pick(UnimodalConfig, params, params.mamba, in_dim=in_dim, task=task, encoder=enc, **sizes)
    if enc in ATTENTION_ENCODERS:
        where = f"train.unimodal.{modality}.{task}" if "hidden_dim" in sizes else "train"
        _check_heads(cfg.hidden_dim, cfg.heads, f"{where}.hidden_dim")
    return cfg


def _eval_batches(model, n: int, fn: Callable[[slice], tuple]) -> list[np.ndarray]:
    """`fn(rows)` -> tuple of tensors over rows 0..n in eval batches, without gradients;
    each column concatenated to one array."""
    model.eval()
    parts: list[list[np.ndarray]] = []
    with torch.no_grad():
        for s in range(0, n, EVAL_BATCH):
            parts.append([r.float().cpu().numpy() for r in fn(slice(s, s + EVAL_BATCH))])
    return [np.concatenate(col) for col in zip(*parts, strict=True)] if parts else []


def _run_model(model, x: np.ndarray, mask: np.ndarray, device, fn, idx=None) -> list[np.ndarray]:
    """Apply `fn(model(xb, mb))` -> tuple of tensors over rows `idx` (default all)."""
    if idx is not None:
        x, mask = x[idx], mask[idx]
    return _eval_batches(model, len(x), lambda r: fn(model(_t(x[r], device), _t(mask[r], device))))


def train_unimodal(
    *,
    modality: str,
    corpus: str,
    manifest: str | Path,
    embeddings: list[str | Path],
    params: TrainParams,
    seed: int,
    out: str | Path,
) -> dict[str, Any]:
    out = Path(out)
    params = params.for_stage("unimodal")  # train.stages.unimodal settings
    device = _prepare(out, seed, params)
    labels = load_labels([manifest])
    tasks = sorted(set(labels.task))
    if len(tasks) != 1 or tasks[0] not in ("emotion", "personality"):
        raise ValueError(f"{manifest}: expected one task (emotion|personality), found {tasks}")
    task = tasks[0]
    has = labels.has_emotion if task == "emotion" else labels.has_traits
    seqs = load_sequences(embeddings, labels.video_id, params.max_steps)
    cfg = unimodal_config(params, modality, task, seqs.dim)
    model = UnimodalModel(cfg).to(device)
    opt = _optimizer(model, params)

    train_idx = _rows(labels, "train", has)
    if len(train_idx) == 0:
        raise ValueError(f"{manifest}: no labelled train rows for task '{task}'")
    fit_idx = train_idx[seqs.present[train_idx]]
    if len(fit_idx) == 0:
        fit_idx = train_idx  # nothing but empty inputs: the model can only learn the prior
    dev_idx = _dev_index(labels, has)
    x, m = seqs.x, seqs.mask
    y_emo = torch.from_numpy(labels.emotion)
    y_tr = torch.from_numpy(labels.traits)
    # train.loss; class weights from the rows this model is fit on (training split only)
    sup = SupervisedLoss.from_params(
        params.loss, labels.emotion[fit_idx] if task == "emotion" else None
    )
    gen = torch.Generator().manual_seed(seed)

    def predict(idx=None) -> Predictions:
        (o,) = _run_model(model, x, m, device, lambda r: (r["output"],), idx)
        if task == "emotion":
            return softmax(o), None
        return None, o

    def step(b: np.ndarray) -> float:
        out_ = model(_t(x[b], device), _t(m[b], device))["output"]
        if task == "emotion":
            loss = sup.emotion(out_, y_emo[b].to(device))
        else:
            loss = sup.personality(out_, y_tr[b].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    def train_epoch(_epoch):
        return _epoch_loss(loop.batches(fit_idx, params.batch_size, gen), step), {}

    dev = (labels, dev_idx, lambda: predict(dev_idx))
    log = f"train-unimodal {modality}/{corpus}: "
    res = _fit(model, opt, params, params.max_epochs, train_epoch, dev, out, log)
    probs, scores = predict()
    base_probs, base_scores = baseline_predictions(labels, train_idx)
    if task == "emotion":
        base_scores = None
    else:
        base_probs = None
    ident = {"stage": "unimodal", "modality": modality, "corpus": corpus, "task": task}
    metrics: dict[str, Any] = {
        **ident,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "n_train": int(len(fit_idx)),
        "n_missing": int((~seqs.present).sum()),
        "baseline": _split_outputs(labels, base_probs, base_scores, params.selection),
        **_split_outputs(labels, probs, scores, params.selection),
    }
    return _save(out, model, {**ident, "model": cfg.to_dict()}, metrics, params, seed, res)


class _Sub(Labels):
    """Labels restricted to rows `idx` (renumbered 0..len-1)."""

    def __init__(self, labels: Labels, idx: np.ndarray):
        super().__init__(
            video_id=[labels.video_id[i] for i in idx],
            corpus=[labels.corpus[i] for i in idx],
            split=labels.split[idx],
            task=[labels.task[i] for i in idx],
            emotion=labels.emotion[idx],
            has_emotion=labels.has_emotion[idx],
            traits=labels.traits[idx],
            has_traits=labels.has_traits[idx],
        )


def load_unimodal(directory: str | Path, device: str | torch.device = "cpu") -> UnimodalModel:
    """A stage-1 folder's model, in eval mode (checked by mepr.models.checkpoints)."""
    return checkpoints.load_model(directory, "unimodal", device)[0]


# --------------------------------------------------------------------------- stage 2
def _stage1_pair(dirs: list[str | Path], modality: str) -> tuple[Path, Path]:
    found: dict[str, Path] = {}
    for d in map(Path, dirs):
        cfg = checkpoints.read_config(d, "unimodal")
        if cfg["modality"] != modality:
            raise ValueError(f"{d}: a '{cfg['modality']}' model, expected '{modality}'")
        if cfg["task"] in found:
            raise ValueError(f"two stage-1 {cfg['task']} models: {found[cfg['task']]} and {d}")
        found[cfg["task"]] = d
    missing = {"emotion", "personality"} - set(found)
    if missing:
        raise ValueError(f"--stage1 lacks a {' and '.join(sorted(missing))} model")
    return found["emotion"], found["personality"]


def _multitask_step(model, opt, weighting, out, targets, teacher, params: TrainParams):
    """One optimisation step of a two-task model (stages 2 and 3): the loss components of
    `weighting` (an Objective), its weight update (GradNorm), then backward + Adam.
    Returns the weighted loss, or None when the batch gave no loss term at all."""
    comps = weighting.components(out, targets, teacher)
    if not comps:
        return None
    weighting.update(comps, model)
    loss = weighting.total(comps)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def _multitask_epoch(
    model, opt, weighting, batches, forward, tensors, device, params: TrainParams
) -> tuple[float, dict[str, float]]:
    """One epoch of stage 2 or 3: `forward(b)` gives a batch's outputs and its SSL teacher
    (logits, scores).  Returns the mean loss and the loss weights as curve columns."""

    def step(b: np.ndarray) -> float | None:
        out, teacher = forward(b)
        targets = [t[b].to(device) for t in tensors]
        return _multitask_step(model, opt, weighting, out, targets, teacher, params)

    loss = _epoch_loss(batches, step)
    return loss, {f"w_{k}": v for k, v in weighting.weights.items()}


def train_cross(
    *,
    modality: str,
    stage1: list[str | Path],
    manifests: list[str | Path],
    embeddings: list[str | Path],
    params: TrainParams,
    seed: int,
    out: str | Path,
) -> dict[str, Any]:
    out = Path(out)
    params = params.for_stage("cross")  # train.stages.cross settings
    device = _prepare(out, seed, params)
    emo_dir, per_dir = _stage1_pair(stage1, modality)
    labels = load_labels(manifests)
    _require_both_tasks(labels)
    emo_model, per_model = load_unimodal(emo_dir), load_unimodal(per_dir)
    seqs = load_sequences(embeddings, labels.video_id, params.max_steps)
    if seqs.present.any() and seqs.dim != emo_model.cfg.in_dim:
        raise ValueError(
            f"embeddings have dim {seqs.dim}, the stage-1 models expect {emo_model.cfg.in_dim}"
        )
    # the modality's train.cross.<modality> overrides, then the bridge's widths, the shared head
    sizes = params.cross.given(modality)
    ccfg = pick(CrossConfig, params.cross, params, **sizes)
    where = f"train.cross.{modality}" if "hidden_dim" in sizes else "train.cross"
    _check_heads(ccfg.hidden_dim, ccfg.heads, f"{where}.hidden_dim")
    model = CrossDomainModel(emo_model, per_model, ccfg).to(device)
    opt = _optimizer(model, params)
    missing = "no labelled train rows with this modality present"
    train_idx, dev_idx = _multitask_rows(labels, seqs.present, missing)
    weighting = Objective(params, "cross", labels.emotion[train_idx[labels.has_emotion[train_idx]]])
    x, m = seqs.x, seqs.mask
    train_idx_sorted = np.sort(train_idx)
    tensors = _label_tensors(labels)
    gen = torch.Generator().manual_seed(seed)
    keys = ("emotion_logits", "personality_scores", "emotion_features", "personality_features")
    base_keys = ("base_emotion_logits", "base_personality_scores")

    def predict(idx=None, which=keys):
        return _run_model(model, x, m, device, lambda r: tuple(r[k] for k in which), idx)

    # The stage-1 models are frozen and deterministic: encode the train rows once.
    base = _precompute_base(model, x, m, train_idx, device)

    def forward(b: np.ndarray):
        mb = _t(m[b], device)
        if base is None:
            o = model(_t(x[b], device), mb)
        else:
            rows = torch.from_numpy(np.searchsorted(train_idx_sorted, b))
            o = model(None, mb, base={k: v[rows].to(device) for k, v in base.items()})
        return o, (o["base_emotion_logits"], o["base_personality_scores"])

    def train_epoch(_epoch):
        batches = loop.batches(train_idx, params.batch_size, gen)
        return _multitask_epoch(model, opt, weighting, batches, forward, tensors, device, params)

    dev = (labels, dev_idx, lambda: _probs(*predict(dev_idx, keys[:2])))
    log = f"train-cross {modality}: "
    res = _fit(model, opt, params, params.cross.max_epochs, train_epoch, dev, out, log)
    logits, scores, fe, fp = predict()
    base_logits, base_scores = predict(which=base_keys)
    probs = softmax(logits, float64=True)
    prior_probs, mean_scores = baseline_predictions(labels, labels.index("train"))
    kind = params.selection
    metrics: dict[str, Any] = {
        "stage": "cross",
        "modality": modality,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "n_train": int(len(train_idx)),
        "n_missing": int((~seqs.present).sum()),
        "loss_weights": weighting.weights,
        "baseline": _split_outputs(labels, prior_probs, mean_scores, kind),
        "stage1": _split_outputs(labels, softmax(base_logits, float64=True), base_scores, kind),
        **_split_outputs(labels, probs, scores, kind),
    }
    present = seqs.present
    fe[~present] = 0.0
    fp[~present] = 0.0
    columns = {
        "present": present.tolist(),
        "emotion_features": fe,
        "personality_features": fp,
        "emotion_logits": logits,
        "personality_scores": scores,
    }
    written = {"modality": modality, "stage": "cross", "seed": seed}
    _write_rows(labels, columns, CROSS_FEATURES, out / "features.parquet", written)
    config = {
        "stage": "cross",
        "modality": modality,
        "model": {
            "emotion": emo_model.cfg.to_dict(),
            "personality": per_model.cfg.to_dict(),
            "cross": ccfg.to_dict(),
        },
    }
    return _save(out, model, config, metrics, params, seed, res)


PRECOMPUTE_LIMIT = 1 << 28  # elements (1 GiB of float32) of cached stage-1 sequences


def _precompute_base(model, x, m, idx, device) -> dict[str, torch.Tensor] | None:
    """Stage-1 outputs for rows `idx` (sorted order), on the CPU; None when too large."""
    idx = np.sort(idx)
    he = model.emotion_base.cfg.hidden_dim
    hp = model.personality_base.cfg.hidden_dim
    if len(idx) * x.shape[1] * (he + hp) > PRECOMPUTE_LIMIT:
        return None
    model.eval()
    parts: list[dict[str, torch.Tensor]] = []
    for s in range(0, len(idx), EVAL_BATCH):
        b = idx[s : s + EVAL_BATCH]
        out = model.base_outputs(_t(x[b], device), _t(m[b], device))
        parts.append({k: v.cpu() for k, v in out.items()})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def load_cross(directory: str | Path, device: str | torch.device = "cpu") -> CrossDomainModel:
    """A stage-2 folder's model, in eval mode (checked by mepr.models.checkpoints)."""
    return checkpoints.load_model(directory, "cross", device)[0]


def _require_both_tasks(labels: Labels) -> None:
    if not labels.has_emotion.any() or not labels.has_traits.any():
        raise ValueError("cross-domain training needs emotion-labelled and trait-labelled rows")


def _label_tensors(labels: Labels) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(labels.emotion),  # rows: the loss takes the argmax or the row
        torch.from_numpy(labels.has_emotion),
        torch.from_numpy(labels.traits),
        torch.from_numpy(labels.has_traits),
    )


def _probs(logits: np.ndarray, scores: np.ndarray) -> Predictions:
    return softmax(logits, float64=True), scores


def _multitask_rows(
    labels: Labels, usable: np.ndarray, missing: str
) -> tuple[np.ndarray, np.ndarray]:
    """Stages 2-3: the train rows (labelled for either task and `usable`; none: ValueError
    `missing`) and the dev rows that select the model (labelled)."""
    labelled = labels.has_emotion | labels.has_traits
    train_idx = _rows(labels, "train", labelled & usable)
    if len(train_idx) == 0:
        raise ValueError(missing)
    return train_idx, _dev_index(labels, labelled)


def _write_rows(
    labels: Labels,
    columns: dict[str, Any],
    schema: shards.ShardSchema,
    path: Path,
    params: dict[str, Any],
) -> None:
    """One row per video of `labels` (id, corpus, split, then row i of each of `columns`)."""
    rows = [
        {
            "video_id": labels.video_id[i],
            "corpus": labels.corpus[i],
            "split": str(labels.split[i]),
            **{name: col[i] for name, col in columns.items()},
        }
        for i in range(len(labels))
    ]
    shards.write_table(_table(rows, schema), schema, path, params=params)


def _table(rows: list[dict[str, Any]], schema: shards.ShardSchema):
    import pyarrow as pa

    cols = {name: [r[name] for r in rows] for name in schema.arrow.names}
    arrays = []
    for field in schema.arrow:
        vals = cols[field.name]
        if pa.types.is_list(field.type):
            width = len(vals[0]) if vals else 0
            flat = np.asarray(vals, np.float32).reshape(-1) if vals else np.zeros(0, np.float32)
            offsets = np.arange(0, (len(vals) + 1) * width, width, dtype=np.int32)
            arrays.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)))
        else:
            arrays.append(pa.array(vals, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema.arrow)


# --------------------------------------------------------------------------- stage 3
def _cross_inputs(cross: list[str | Path], drop: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in map(Path, cross):
        m = checkpoints.read_config(d, "cross")["modality"]
        if m in found:
            raise ValueError(f"two '{m}' stage-2 folders: {found[m]} and {d}")
        found[m] = d
    order = [m for m in MODALITIES if m in found] + sorted(set(found) - set(MODALITIES))
    used = {m: found[m] / "features.parquet" for m in order if m not in drop}
    if not used:
        raise ValueError("no modality left to fuse (check train.fusion.drop_modalities)")
    return used


def train_fusion(
    *,
    cross: list[str | Path],
    manifests: list[str | Path],
    params: TrainParams,
    seed: int,
    out: str | Path,
) -> dict[str, Any]:
    out = Path(out)
    params = params.for_stage("fusion")  # train.stages.fusion settings
    device = _prepare(out, seed, params)
    fp = params.fusion
    inputs = _cross_inputs(cross, fp.drop_modalities)
    labels = load_labels(manifests)
    _require_both_tasks(labels)
    feats = {m: load_cross_features(p, m, labels.video_id) for m, p in inputs.items()}
    mods = list(feats)
    fcfg = pick(
        FusionConfig,
        fp,
        params,
        modalities=tuple(mods),
        input_dims=tuple(int(feats[m].features.shape[1]) for m in mods),
    )
    _check_heads(fcfg.hidden_dim, fcfg.heads, "train.fusion.hidden_dim")
    model = FusionModel(fcfg).to(device)
    opt = _optimizer(model, params)
    weighting = Objective(params, "fusion")
    feat_t = {m: torch.from_numpy(f.features) for m, f in feats.items()}
    logits_t = torch.from_numpy(np.stack([feats[m].logits for m in mods], axis=1))
    scores_t = torch.from_numpy(np.stack([feats[m].scores for m in mods], axis=1))
    present_np = np.stack([feats[m].present for m in mods], axis=1)
    present_t = torch.from_numpy(present_np)
    w = present_t.float().unsqueeze(-1)
    denom = w.sum(1).clamp_min(1.0)
    teacher_logits, teacher_scores = (logits_t * w).sum(1) / denom, (scores_t * w).sum(1) / denom
    everywhere = np.ones(len(labels), bool)
    train_idx, dev_idx = _multitask_rows(labels, everywhere, "no labelled train rows")
    tensors = _label_tensors(labels)
    gen = torch.Generator().manual_seed(seed)

    def forward(b):
        bt = torch.from_numpy(np.asarray(b))
        return model(
            {m: feat_t[m][bt].to(device) for m in mods},
            logits_t[bt].to(device),
            scores_t[bt].to(device),
            present_t[bt].to(device),
        )

    def predict(idx=None):
        idx = np.arange(len(labels)) if idx is None else idx

        def outputs(r: slice):
            o = forward(idx[r])
            return o["emotion_logits"], o["personality_scores"]

        return _eval_batches(model, len(idx), outputs)

    def teach(b: np.ndarray):
        o = forward(b)
        if params.ssl.fusion_teacher == "self":  # self-training, as in the reference
            t_logits, t_scores = o["emotion_logits"], o["personality_scores"]
        else:  # the stage-2 predictions averaged over the present modalities
            t_logits, t_scores = teacher_logits[b].to(device), teacher_scores[b].to(device)
        return o, (t_logits.detach(), t_scores.detach())

    def train_epoch(_epoch):
        batches = loop.batches(train_idx, params.batch_size, gen)
        return _multitask_epoch(model, opt, weighting, batches, teach, tensors, device, params)

    dev = (labels, dev_idx, lambda: _probs(*predict(dev_idx)))
    res = _fit(model, opt, params, fp.max_epochs, train_epoch, dev, out, "train-fusion: ")
    logits, scores = predict()
    probs = softmax(logits, float64=True)
    prior_probs, mean_scores = baseline_predictions(labels, labels.index("train"))
    kind = params.selection
    metrics: dict[str, Any] = {
        "stage": "fusion",
        "modalities": mods,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "loss_weights": weighting.weights,
        "baseline": _split_outputs(labels, prior_probs, mean_scores, kind),
        "unimodal": {
            m: _split_outputs(labels, softmax(feats[m].logits, float64=True), feats[m].scores, kind)
            for m in mods
        },
        **_split_outputs(labels, probs, scores, kind),
    }
    columns = {
        "task": labels.task,
        "emotion_probs": probs,
        "personality_scores": scores,
        "n_modalities": present_np.sum(axis=1).tolist(),
    }
    written = {"stage": "fusion", "modalities": mods, "seed": seed}
    _write_rows(labels, columns, FUSION_PREDICTIONS, out / "predictions.parquet", written)
    config = {"stage": "fusion", "modalities": mods, "model": fcfg.to_dict()}
    return _save(out, model, config, metrics, params, seed, res)


def load_fusion(directory: str | Path, device: str | torch.device = "cpu") -> FusionModel:
    """A stage-3 folder's model, in eval mode (checked by mepr.models.checkpoints)."""
    return checkpoints.load_model(directory, "fusion", device)[0]
