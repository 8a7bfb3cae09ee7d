"""The per-stage figures of `snakemake --report` (`mepr report-plots stage1|stage2|fusion`).

Per stage: training curves (from ``curves.csv``), a confusion matrix of the dominant emotion
and predicted-vs-true trait scores on the held-out split (the metrics table:
:mod:`mepr.report.metrics_table`). Stage 1 stores no predictions, so its models are re-run on
the run's embedding shards (the same loader as training); stages 2 and 3 are read from
``features.parquet`` and ``predictions.parquet``.  Figures are SVG (deterministic: fixed hash
salt, no dates).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from mepr.labels import EMOTIONS, MODALITIES, TRAITS
from mepr.metrics import softmax

TRAIT_COLOURS = ("#0d9488", "#0284c7", "#ea580c", "#16a34a", "#9333ea")


# --------------------------------------------------------------------------- helpers
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.hashsalt": "mepr",
            "svg.fonttype": "path",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 10,
        }
    )
    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(
        path, format=path.suffix.lstrip(".") or "svg", bbox_inches="tight", metadata={"Date": None}
    )
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def read_curves(path: str | Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols: dict[str, np.ndarray] = {}
    for name in rows[0] if rows else []:
        cols[name] = np.array(
            [float(r[name]) if r[name] not in ("", None) else np.nan for r in rows]
        )
    return cols


def _order(dirs: list[Path], key) -> list[Path]:
    rank = {m: i for i, m in enumerate(MODALITIES)}
    return sorted(dirs, key=lambda d: (rank.get(key(d)[0], 99), *key(d)))


def _config(d: Path) -> dict[str, Any]:
    return json.loads((d / "config.json").read_text())


def _curve_panel(ax, curves: dict[str, np.ndarray], best: int | None, title: str) -> None:
    ep = curves.get("epoch", np.arange(1, 1 + len(next(iter(curves.values()), []))))
    ax.plot(ep, curves["train_loss"], color="#4f46e5", lw=1.6, label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss", color="#4f46e5")
    ax2 = ax.twinx()
    ax2.spines["right"].set_visible(True)
    ax2.plot(ep, curves["dev_selection"], color="#ea580c", lw=1.6, label="dev selection")
    for name, style in (("dev_mWACC", ":"), ("dev_mACC", "--")):
        if name in curves and np.isfinite(curves[name]).any():
            ax2.plot(ep, curves[name], color="#ea580c", lw=1.0, ls=style, alpha=0.7, label=name[4:])
    ax2.set_ylabel("dev score", color="#ea580c")
    if best:
        ax.axvline(best, color="#6b7280", ls="--", lw=0.8)
        ax.text(best, ax.get_ylim()[1], f" best {best}", va="top", fontsize=7.5, color="#374151")
    ax.set_title(title)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="best", frameon=False)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _grid(plt, n: int, ncols: int, w: float = 3.6, h: float = 2.8):
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def plot_curves(dirs: list[Path], out: Path, *, title: str, label) -> Path:
    plt = _plt()
    ncols = min(len(dirs), 5 if len(dirs) != 10 else 2)
    fig, axes = _grid(plt, len(dirs), ncols)
    for ax, d in zip(axes, dirs, strict=True):
        _curve_panel(ax, read_curves(d / "curves.csv"), _config(d).get("best_epoch"), label(d))
    fig.suptitle(title, fontsize=12, y=1.0)
    fig.tight_layout()
    return _save(fig, out)


def _fusion_curves(d: Path, out: Path) -> Path:
    plt = _plt()
    c = read_curves(d / "curves.csv")
    best = _config(d).get("best_epoch")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    _curve_panel(axes[0], c, best, "loss and selection score")
    ep = c["epoch"]
    for name in [k for k in c if k.startswith("dev_") and k != "dev_selection"]:
        if np.isfinite(c[name]).any():
            axes[1].plot(ep, c[name], lw=1.3, label=name[4:])
    axes[1].set_title("dev metrics")
    axes[1].set_xlabel("epoch")
    axes[1].legend(fontsize=7, frameon=False, ncol=2)
    weights = [k for k in c if k.startswith("w_")]
    for name in weights:
        axes[2].plot(ep, c[name], lw=1.3, label=name[2:])
    axes[2].set_title("loss weights (GradNorm)" if weights else "no loss weights logged")
    axes[2].set_xlabel("epoch")
    if weights:
        axes[2].legend(fontsize=7, frameon=False)
    for ax in axes[1:]:
        if best:
            ax.axvline(best, color="#6b7280", ls="--", lw=0.8)
    fig.suptitle("Stage 3 (fusion): training curves", fontsize=12, y=1.02)
    fig.tight_layout()
    return _save(fig, out)


# --------------------------------------------------------------------------- predictions
def _held_out(labels, has: np.ndarray) -> tuple[np.ndarray, str]:
    """Rows of the dev and test splits with a label (all labelled rows when there are none)."""
    idx = np.flatnonzero(has & np.isin(labels.split, ["dev", "test"]))
    if len(idx):
        return idx, "dev+test"
    return np.flatnonzero(has), "all"


def _confusion_panel(ax, true_cls: np.ndarray, probs: np.ndarray, title: str) -> None:
    k = len(EMOTIONS)
    cm = np.zeros((k, k))
    for t, p in zip(true_cls, probs.argmax(axis=1), strict=True):
        cm[t, p] += 1
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.55 else "#111827")  # fmt: skip
    short = [e[:4] for e in EMOTIONS]
    ax.set_xticks(range(k), short, rotation=45, fontsize=7)
    ax.set_yticks(range(k), short, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("dominant true emotion")
    acc = float((probs.argmax(1) == true_cls).mean()) if len(true_cls) else float("nan")
    ax.set_title(f"{title}\n(n={len(true_cls)}, top-1 acc {acc:.2f})")


def _scores_panel(ax, true: np.ndarray, pred: np.ndarray, title: str) -> None:
    for j, t in enumerate(TRAITS):
        ax.scatter(
            true[:, j],
            pred[:, j],
            s=14,
            alpha=0.8,
            color=TRAIT_COLOURS[j],
            label=t.replace("_", "-"),
        )
    ax.plot([0, 1], [0, 1], color="#9ca3af", lw=0.8, ls="--")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("true score")
    ax.set_ylabel("predicted score")
    mae = float(np.abs(true - pred).mean()) if len(true) else float("nan")
    ax.set_title(f"{title}\n(n={len(true)}, mACC {1 - mae:.3f})")


def _prediction_figures(
    panels: list[dict[str, Any]], labels, out_dir: Path, stage: str
) -> list[Path]:
    """panels: {"title", "probs" (N, 7) or None, "scores" (N, 5) or None} over all label rows."""
    plt = _plt()
    # the training target (mepr.train.losses.emotion_class): argmax, ties to the lowest index
    true_cls = np.argmax(labels.emotion, axis=1)
    written = []
    emo = [p for p in panels if p.get("probs") is not None]
    if emo:
        fig, axes = _grid(plt, len(emo), min(len(emo), 5), w=3.2, h=3.3)
        for ax, p in zip(axes, emo, strict=True):
            idx, split = _held_out(labels, labels.has_emotion & p.get("present", True))
            _confusion_panel(ax, true_cls[idx], p["probs"][idx], f"{p['title']} · {split}")
        fig.suptitle(f"{stage}: dominant-emotion confusion (held-out split)", fontsize=12, y=1.02)
        fig.tight_layout()
        written.append(_save(fig, out_dir / "confusion.svg"))
    per = [p for p in panels if p.get("scores") is not None]
    if per:
        fig, axes = _grid(plt, len(per), min(len(per), 5), w=3.2, h=3.2)
        for ax, p in zip(axes, per, strict=True):
            idx, split = _held_out(labels, labels.has_traits & p.get("present", True))
            _scores_panel(ax, labels.traits[idx], p["scores"][idx], f"{p['title']} · {split}")
        axes[0].legend(fontsize=6.5, frameon=False, loc="upper left")
        fig.suptitle(
            f"{stage}: predicted vs true trait scores (held-out split)", fontsize=12, y=1.02
        )
        fig.tight_layout()
        written.append(_save(fig, out_dir / "scores.svg"))
    return written


def stage1(
    dirs: list[Path], manifests: list[Path], embeddings: list[Path], out: Path
) -> list[Path]:
    import torch

    from mepr import shards
    from mepr.train.data import load_labels, load_sequences
    from mepr.train.stages import load_unimodal

    dirs = _order(dirs, lambda d: (_config(d)["modality"], _config(d)["corpus"]))
    written = [
        plot_curves(
            dirs,
            out / "curves.svg",
            title="Stage 1 (unimodal, single corpus): training curves",
            label=lambda d: f"{_config(d)['modality']} · {_config(d)['corpus']}",
        )  # fmt: skip
    ]
    labels = load_labels(manifests)
    by_modality: dict[str, list[Path]] = {}
    for p in embeddings:
        by_modality.setdefault(shards.read_params(p).get("modality"), []).append(p)
    panels = []
    for d in dirs:
        cfg = _config(d)
        m, task = cfg["modality"], cfg["task"]
        if m not in by_modality:
            continue
        model = load_unimodal(d)
        seqs = load_sequences(by_modality[m], labels.video_id, cfg["params"]["max_steps"])
        if seqs.dim != model.cfg.in_dim:
            continue
        with torch.no_grad():
            o = model(torch.from_numpy(seqs.x), torch.from_numpy(seqs.mask))["output"].numpy()
        in_corpus = np.array([c == cfg["corpus"] for c in labels.corpus])
        present = seqs.present & in_corpus
        title = f"{m} · {cfg['corpus']}"
        if task == "emotion":
            panels.append({"title": title, "probs": softmax(o), "present": present})
        else:
            panels.append({"title": title, "scores": o, "present": present})
    return written + _prediction_figures(panels, labels, out, "Stage 1")


def stage2(dirs: list[Path], manifests: list[Path], out: Path) -> list[Path]:
    from mepr.train.data import load_cross_features, load_labels

    dirs = _order(dirs, lambda d: (_config(d)["modality"],))
    written = [
        plot_curves(
            dirs,
            out / "curves.svg",
            title="Stage 2 (cross-domain, per modality): training curves",
            label=lambda d: _config(d)["modality"],
        )  # fmt: skip
    ]
    labels = load_labels(manifests)
    panels = []
    for d in dirs:
        m = _config(d)["modality"]
        f = load_cross_features(d / "features.parquet", m, labels.video_id)
        panels.append(
            {"title": m, "probs": softmax(f.logits), "scores": f.scores, "present": f.present}
        )
    return written + _prediction_figures(panels, labels, out, "Stage 2")


def fusion(dirs: list[Path], manifests: list[Path], out: Path) -> list[Path]:
    from mepr import shards
    from mepr.train.data import FUSION_PREDICTIONS, load_labels

    (d,) = dirs
    written = [_fusion_curves(d, out / "curves.svg")]
    labels = load_labels(manifests)
    table = shards.read_table(d / "predictions.parquet", FUSION_PREDICTIONS)
    row = {v: i for i, v in enumerate(table.column("video_id").to_pylist())}
    probs_all = np.asarray(table.column("emotion_probs").to_pylist(), np.float32)
    scores_all = np.asarray(table.column("personality_scores").to_pylist(), np.float32)
    n = len(labels)
    probs = np.full((n, len(EMOTIONS)), 1 / len(EMOTIONS), np.float32)
    scores = np.full((n, len(TRAITS)), 0.5, np.float32)
    present = np.zeros(n, bool)
    for i, v in enumerate(labels.video_id):
        if v in row:
            probs[i], scores[i], present[i] = probs_all[row[v]], scores_all[row[v]], True
    panels = [{"title": "fusion", "probs": probs, "scores": scores, "present": present}]
    return written + _prediction_figures(panels, labels, out, "Stage 3 (fusion)")
