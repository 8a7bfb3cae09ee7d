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

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mepr import shards
from mepr.labels import EMOTIONS, MODALITIES, TRAITS
from mepr.metrics import emotion_metrics, personality_metrics, selection_score
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
from mepr.train.losses import LossWeighting, emotion_class, loss_components
from mepr.train.params import TrainParams

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


def _dev_index(labels: Labels, ok: np.ndarray) -> np.ndarray:
    dev = labels.index("dev")
    dev = dev[ok[dev]]
    if len(dev) == 0:
        print("warning: no labelled dev rows; selecting on the train split", file=sys.stderr)
        dev = labels.index("train")
        dev = dev[ok[dev]]
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


# --------------------------------------------------------------------------- stage 1
def unimodal_config(params: TrainParams, modality: str, task: str, in_dim: int) -> UnimodalConfig:
    enc = params.encoder_for(modality)
    if enc == "transformer":
        _check_heads(params.hidden_dim, params.heads, "train.hidden_dim")
    return UnimodalConfig(
        in_dim=in_dim,
        task=task,
        encoder=enc,
        hidden_dim=params.hidden_dim,
        out_features=params.out_features,
        layers=params.layers,
        heads=params.heads,
        dropout=params.dropout,
        d_state=params.mamba.d_state,
        d_conv=params.mamba.d_conv,
        expand=params.mamba.expand,
    )


def _run_model(model, x: np.ndarray, mask: np.ndarray, device, fn) -> list[np.ndarray]:
    """Apply `fn(model(xb, mb))` -> tuple of tensors over all rows in eval batches."""
    model.eval()
    parts: list[list[np.ndarray]] = []
    with torch.no_grad():
        for s in range(0, len(x), EVAL_BATCH):
            res = fn(model(_t(x[s : s + EVAL_BATCH], device), _t(mask[s : s + EVAL_BATCH], device)))
            parts.append([r.float().cpu().numpy() for r in res])
    return [np.concatenate(col) for col in zip(*parts, strict=True)] if parts else []


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

    train_idx = labels.index("train")
    train_idx = train_idx[has[train_idx]]
    if len(train_idx) == 0:
        raise ValueError(f"{manifest}: no labelled train rows for task '{task}'")
    fit_idx = train_idx[seqs.present[train_idx]]
    if len(fit_idx) == 0:
        fit_idx = train_idx  # nothing but empty inputs: the model can only learn the prior
    dev_idx = _dev_index(labels, has)
    x, m = seqs.x, seqs.mask
    y_cls = torch.from_numpy(np.argmax(labels.emotion, axis=1))
    y_tr = torch.from_numpy(labels.traits)
    gen = torch.Generator().manual_seed(seed)

    def predict(idx=None):
        xi, mi = (x, m) if idx is None else (x[idx], m[idx])
        (o,) = _run_model(model, xi, mi, device, lambda r: (r["output"],))
        if task == "emotion":
            return torch.softmax(torch.from_numpy(o), -1).numpy(), None
        return None, o

    def train_epoch(_epoch):
        total, n = 0.0, 0
        for b in loop.batches(fit_idx, params.batch_size, gen):
            out_ = model(_t(x[b], device), _t(m[b], device))["output"]
            if task == "emotion":
                loss = F.cross_entropy(out_, y_cls[b].to(device))
            else:
                loss = (out_ - y_tr[b].to(device)).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(b), n + len(b)
        return total / max(n, 1), {}

    def evaluate():
        probs, scores = predict(dev_idx)
        sub = np.arange(len(dev_idx))
        met = split_metrics(_Sub(labels, dev_idx), sub, probs, scores, params.selection)
        return met["selection"], _summary(met)

    res = loop.fit(
        model,
        optimizer=opt,
        params=params,
        max_epochs=params.max_epochs,
        train_epoch=train_epoch,
        evaluate=evaluate,
        curves_path=out / "curves.csv",
        log_prefix=f"train-unimodal {modality}/{corpus}: ",
    )
    probs, scores = predict()
    base_probs, base_scores = baseline_predictions(labels, train_idx)
    if task == "emotion":
        base_scores = None
    else:
        base_probs = None
    metrics: dict[str, Any] = {
        "stage": "unimodal",
        "modality": modality,
        "corpus": corpus,
        "task": task,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "n_train": int(len(fit_idx)),
        "n_missing": int((~seqs.present).sum()),
        "baseline": {},
    }
    for split in ("dev", "test"):
        idx = labels.index(split)
        metrics[split] = split_metrics(labels, idx, probs, scores, params.selection)
        metrics["baseline"][split] = split_metrics(
            labels, idx, base_probs, base_scores, params.selection
        )
    config = {
        "stage": "unimodal",
        "modality": modality,
        "corpus": corpus,
        "task": task,
        "model": cfg.to_dict(),
        "params": params.to_dict(),
        "seed": seed,
        "best_epoch": res.best_epoch,
    }
    loop.save_model(model, out / "model.safetensors", config)
    loop.write_json(out / "metrics.json", metrics)
    return metrics


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
    d = Path(directory)
    cfg = json.loads((d / "config.json").read_text())
    if cfg.get("stage") != "unimodal":
        raise ValueError(f"{d}: not a stage-1 (train-unimodal) model folder")
    model = UnimodalModel(UnimodalConfig(**cfg["model"]))
    return loop.load_weights(model, d / "model.safetensors").to(device).eval()


# --------------------------------------------------------------------------- stage 2
def _stage1_pair(dirs: list[str | Path], modality: str) -> tuple[Path, Path]:
    found: dict[str, Path] = {}
    for d in map(Path, dirs):
        cfg = json.loads((d / "config.json").read_text())
        if cfg.get("stage") != "unimodal":
            raise ValueError(f"{d}: not a stage-1 (train-unimodal) model folder")
        if cfg["modality"] != modality:
            raise ValueError(f"{d}: a '{cfg['modality']}' model, expected '{modality}'")
        if cfg["task"] in found:
            raise ValueError(f"two stage-1 {cfg['task']} models: {found[cfg['task']]} and {d}")
        found[cfg["task"]] = d
    missing = {"emotion", "personality"} - set(found)
    if missing:
        raise ValueError(f"--stage1 lacks a {' and '.join(sorted(missing))} model")
    return found["emotion"], found["personality"]


def _outputs(labels: Labels, probs, scores, split: str, kind: str) -> dict[str, Any]:
    return split_metrics(labels, labels.index(split), probs, scores, kind)


def _multitask_step(model, opt, weighting, out, targets, teacher, params: TrainParams):
    """One optimisation step of a two-task model (stages 2 and 3): the supervised and SSL loss
    components, GradNorm's weight update on the shared trunk, then backward + Adam.
    Returns the weighted loss, or None when the batch gave no loss term at all."""
    comps = loss_components(
        out["emotion_logits"],
        out["personality_scores"],
        *targets,
        ssl=params.ssl,
        teacher_logits=teacher[0],
        teacher_scores=teacher[1],
    )
    if not comps:
        return None
    weighting.update(comps, model.shared_parameters())
    loss = weighting.total(comps)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


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
    ccfg = CrossConfig(
        hidden_dim=params.cross.hidden_dim,
        out_features=params.out_features,
        heads=params.cross.heads,
        layers=params.cross.layers,
        dropout=params.dropout,
    )
    _check_heads(ccfg.hidden_dim, ccfg.heads, "train.cross.hidden_dim")
    model = CrossDomainModel(emo_model, per_model, ccfg).to(device)
    opt = _optimizer(model, params)
    weighting = LossWeighting(params.gradnorm, params.ssl)
    labelled = labels.has_emotion | labels.has_traits
    train_idx = labels.index("train")
    train_idx = train_idx[labelled[train_idx] & seqs.present[train_idx]]
    if len(train_idx) == 0:
        raise ValueError("no labelled train rows with this modality present")
    dev_idx = _dev_index(labels, labelled)
    x, m = seqs.x, seqs.mask
    train_idx_sorted = np.sort(train_idx)
    tensors = _label_tensors(labels)
    gen = torch.Generator().manual_seed(seed)
    keys = ("emotion_logits", "personality_scores", "emotion_features", "personality_features")
    base_keys = ("base_emotion_logits", "base_personality_scores")

    def predict(idx=None, which=keys):
        xi, mi = (x, m) if idx is None else (x[idx], m[idx])
        return _run_model(model, xi, mi, device, lambda r: tuple(r[k] for k in which))

    # The stage-1 models are frozen and deterministic: encode the train rows once.
    base = _precompute_base(model, x, m, train_idx, device)

    def train_epoch(_epoch):
        total, n = 0.0, 0
        for b in loop.batches(train_idx, params.batch_size, gen):
            mb = _t(m[b], device)
            if base is None:
                o = model(_t(x[b], device), mb)
            else:
                rows = torch.from_numpy(np.searchsorted(train_idx_sorted, b))
                o = model(None, mb, base={k: v[rows].to(device) for k, v in base.items()})
            targets = [t[b].to(device) for t in tensors]
            teacher = (o["base_emotion_logits"], o["base_personality_scores"])
            loss = _multitask_step(model, opt, weighting, o, targets, teacher, params)
            if loss is not None:
                total, n = total + loss * len(b), n + len(b)
        return total / max(n, 1), {f"w_{k}": v for k, v in weighting.weights.items()}

    def evaluate():
        logits, scores = predict(dev_idx, keys[:2])
        sub = _Sub(labels, dev_idx)
        met = split_metrics(
            sub, np.arange(len(dev_idx)), _softmax(logits), scores, params.selection
        )
        return met["selection"], _summary(met)

    res = loop.fit(
        model,
        optimizer=opt,
        params=params,
        max_epochs=params.cross.max_epochs,
        train_epoch=train_epoch,
        evaluate=evaluate,
        curves_path=out / "curves.csv",
        log_prefix=f"train-cross {modality}: ",
    )
    logits, scores, fe, fp = predict()
    base_logits, base_scores = predict(which=base_keys)
    probs = _softmax(logits)
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
        "baseline": {},
        "stage1": {},
    }
    for split in ("dev", "test"):
        metrics[split] = _outputs(labels, probs, scores, split, kind)
        metrics["baseline"][split] = _outputs(labels, prior_probs, mean_scores, split, kind)
        metrics["stage1"][split] = _outputs(labels, _softmax(base_logits), base_scores, split, kind)
    present = seqs.present
    fe[~present] = 0.0
    fp[~present] = 0.0
    rows = [
        {
            "video_id": labels.video_id[i],
            "corpus": labels.corpus[i],
            "split": str(labels.split[i]),
            "present": bool(present[i]),
            "emotion_features": fe[i],
            "personality_features": fp[i],
            "emotion_logits": logits[i],
            "personality_scores": scores[i],
        }
        for i in range(len(labels))
    ]
    shards.write_table(
        _table(rows, CROSS_FEATURES),
        CROSS_FEATURES,
        out / "features.parquet",
        params={"modality": modality, "stage": "cross", "seed": seed},
    )
    config = {
        "stage": "cross",
        "modality": modality,
        "model": {
            "emotion": emo_model.cfg.to_dict(),
            "personality": per_model.cfg.to_dict(),
            "cross": ccfg.to_dict(),
        },
        "params": params.to_dict(),
        "seed": seed,
        "best_epoch": res.best_epoch,
    }
    loop.save_model(model, out / "model.safetensors", config)
    loop.write_json(out / "metrics.json", metrics)
    return metrics


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
    d = Path(directory)
    cfg = json.loads((d / "config.json").read_text())
    if cfg.get("stage") != "cross":
        raise ValueError(f"{d}: not a stage-2 (train-cross) model folder")
    mc = cfg["model"]
    model = CrossDomainModel(
        UnimodalModel(UnimodalConfig(**mc["emotion"])),
        UnimodalModel(UnimodalConfig(**mc["personality"])),
        CrossConfig(**mc["cross"]),
    )
    return loop.load_weights(model, d / "model.safetensors").to(device).eval()


def _require_both_tasks(labels: Labels) -> None:
    if not labels.has_emotion.any() or not labels.has_traits.any():
        raise ValueError("cross-domain training needs emotion-labelled and trait-labelled rows")


def _label_tensors(labels: Labels) -> tuple[torch.Tensor, ...]:
    return (
        emotion_class(torch.from_numpy(labels.emotion)),
        torch.from_numpy(labels.has_emotion),
        torch.from_numpy(labels.traits),
        torch.from_numpy(labels.has_traits),
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(logits).double(), dim=-1).float().numpy()


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
        cfg = json.loads((d / "config.json").read_text())
        if cfg.get("stage") != "cross":
            raise ValueError(f"{d}: not a stage-2 (train-cross) model folder")
        m = cfg["modality"]
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
    device = _prepare(out, seed, params)
    fp = params.fusion
    inputs = _cross_inputs(cross, fp.drop_modalities)
    labels = load_labels(manifests)
    _require_both_tasks(labels)
    feats = {m: load_cross_features(p, m, labels.video_id) for m, p in inputs.items()}
    mods = list(feats)
    fcfg = FusionConfig(
        modalities=tuple(mods),
        input_dims=tuple(int(feats[m].features.shape[1]) for m in mods),
        hidden_dim=fp.hidden_dim,
        heads=fp.heads,
        dropout=params.dropout,
        graph_attention=fp.graph_attention,
        cross_attention=fp.cross_attention,
        predict_projection_emotion=fp.predict_projection_emotion,
        predict_projection_personality=fp.predict_projection_personality,
        guide_emotion=fp.guide_emotion,
        guide_personality=fp.guide_personality,
    )
    _check_heads(fcfg.hidden_dim, fcfg.heads, "train.fusion.hidden_dim")
    model = FusionModel(fcfg).to(device)
    opt = _optimizer(model, params)
    weighting = LossWeighting(params.gradnorm, params.ssl)
    feat_t = {m: torch.from_numpy(f.features) for m, f in feats.items()}
    logits_t = torch.from_numpy(np.stack([feats[m].logits for m in mods], axis=1))
    scores_t = torch.from_numpy(np.stack([feats[m].scores for m in mods], axis=1))
    present_np = np.stack([feats[m].present for m in mods], axis=1)
    present_t = torch.from_numpy(present_np)
    w = present_t.float().unsqueeze(-1)
    denom = w.sum(1).clamp_min(1.0)
    teacher_logits, teacher_scores = (logits_t * w).sum(1) / denom, (scores_t * w).sum(1) / denom
    labelled = labels.has_emotion | labels.has_traits
    train_idx = labels.index("train")
    train_idx = train_idx[labelled[train_idx]]
    if len(train_idx) == 0:
        raise ValueError("no labelled train rows")
    dev_idx = _dev_index(labels, labelled)
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
        model.eval()
        lo, sc = [], []
        with torch.no_grad():
            for s in range(0, len(idx), EVAL_BATCH):
                o = forward(idx[s : s + EVAL_BATCH])
                lo.append(o["emotion_logits"].float().cpu().numpy())
                sc.append(o["personality_scores"].float().cpu().numpy())
        return np.concatenate(lo), np.concatenate(sc)

    def train_epoch(_epoch):
        total, n = 0.0, 0
        for b in loop.batches(train_idx, params.batch_size, gen):
            o = forward(b)
            if params.ssl.fusion_teacher == "self":  # self-training, as in the reference
                t_logits, t_scores = o["emotion_logits"], o["personality_scores"]
            else:  # the stage-2 predictions averaged over the present modalities
                t_logits, t_scores = teacher_logits[b].to(device), teacher_scores[b].to(device)
            targets = [t[b].to(device) for t in tensors]
            teacher = (t_logits.detach(), t_scores.detach())
            loss = _multitask_step(model, opt, weighting, o, targets, teacher, params)
            if loss is not None:
                total, n = total + loss * len(b), n + len(b)
        return total / max(n, 1), {f"w_{k}": v for k, v in weighting.weights.items()}

    def evaluate():
        lo, sc = predict(dev_idx)
        sub = _Sub(labels, dev_idx)
        met = split_metrics(sub, np.arange(len(dev_idx)), _softmax(lo), sc, params.selection)
        return met["selection"], _summary(met)

    res = loop.fit(
        model,
        optimizer=opt,
        params=params,
        max_epochs=fp.max_epochs,
        train_epoch=train_epoch,
        evaluate=evaluate,
        curves_path=out / "curves.csv",
        log_prefix="train-fusion: ",
    )
    logits, scores = predict()
    probs = _softmax(logits)
    prior_probs, mean_scores = baseline_predictions(labels, labels.index("train"))
    kind = params.selection
    metrics: dict[str, Any] = {
        "stage": "fusion",
        "modalities": mods,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "loss_weights": weighting.weights,
        "baseline": {},
        "unimodal": {m: {} for m in mods},
    }
    for split in ("dev", "test"):
        metrics[split] = _outputs(labels, probs, scores, split, kind)
        metrics["baseline"][split] = _outputs(labels, prior_probs, mean_scores, split, kind)
        for m in mods:
            metrics["unimodal"][m][split] = _outputs(
                labels, _softmax(feats[m].logits), feats[m].scores, split, kind
            )
    rows = [
        {
            "video_id": labels.video_id[i],
            "corpus": labels.corpus[i],
            "split": str(labels.split[i]),
            "task": labels.task[i],
            "emotion_probs": probs[i],
            "personality_scores": scores[i],
            "n_modalities": int(present_np[i].sum()),
        }
        for i in range(len(labels))
    ]
    shards.write_table(
        _table(rows, FUSION_PREDICTIONS),
        FUSION_PREDICTIONS,
        out / "predictions.parquet",
        params={"stage": "fusion", "modalities": mods, "seed": seed},
    )
    config = {
        "stage": "fusion",
        "modalities": mods,
        "model": fcfg.to_dict(),
        "params": params.to_dict(),
        "seed": seed,
        "best_epoch": res.best_epoch,
    }
    loop.save_model(model, out / "model.safetensors", config)
    loop.write_json(out / "metrics.json", metrics)
    return metrics


def load_fusion(directory: str | Path, device: str | torch.device = "cpu") -> FusionModel:
    d = Path(directory)
    cfg = json.loads((d / "config.json").read_text())
    if cfg.get("stage") != "fusion":
        raise ValueError(f"{d}: not a stage-3 (train-fusion) model folder")
    model = FusionModel(FusionConfig(**cfg["model"]))
    return loop.load_weights(model, d / "model.safetensors").to(device).eval()
