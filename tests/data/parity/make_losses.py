"""Record the authors' losses and GradNorm weights on fixed random inputs (see losses/README.md).

    python tests/data/parity/make_losses.py --reference /tmp/ref-main --scene /tmp/ref-scene
    python tests/data/parity/make_losses.py --mepr-defaults

``--reference`` and ``--scene`` are unpacked copies of their main and scene_trainer branches
(``git archive BRANCH | tar -x -C DIR``), kept outside this repository.  Their modules are
loaded from those copies by path and run; only numbers are written:

* ``losses/inputs.safetensors``: the fixed inputs (made here, seeded; the reference run writes
  them, ``--mepr-defaults`` reads them back);
* ``losses/reference.safetensors`` + ``losses/reference.json``: their loss values and their
  GradNorm weights per step, and the constructor arguments used;
* ``losses/mepr_defaults.safetensors``: mepr's numbers under its default options, recorded
  once before the authors' options were added, so the demo's behaviour is pinned.

Nothing of theirs is copied: their ``get_weights`` is compiled from their file at run time.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

MAIN_COMMIT = "97b2ec243b2856f75a206517cc4ecec83f434569"
SCENE_COMMIT = "a8c1768ba927cb5112d4ab7194b9886a17201e1d"
OUT = Path(__file__).resolve().parent / "losses"

ROWS, TRAIN_ROWS, STEPS, BATCH, IN_DIM, HIDDEN = 12, 40, 20, 8, 6, 8
# steps whose batch holds one task only: each wallet then has a single active component
ONLY_EMOTION_STEP, ONLY_PERSONALITY_STEP = 6, 13
FACTOR = 0.1  # their weight_emotion with class weights (app:core/modalities/video/config)

# Their GradNorm run: main:config.toml's [train.model] loss and GradNorm values.
GRADNORM_ARGS = {
    "weight_emotion": 1.0,
    "weight_personality": 1.0,
    "personality_loss_type": "mae",
    "emotion_loss_type": "CE",
    "ssl_confidence_threshold_emo": 0.6,
    "ssl_confidence_threshold_pt": 0.6,
    "alpha_sup": 1.0,
    "w_lr_sup": 0.005,
    "alpha_ssl": 1.5,
    "w_lr_ssl": 0.01,
    "lambda_ssl": 0.4,
    "w_floor": 1e-3,
}
KEYS = ("emo_sup", "per_sup", "emo_ssl", "per_ssl")


def tiny_forward(state: dict[str, torch.Tensor], x: torch.Tensor):
    """A two-head model with one shared layer: (emotion logits, trait scores in (0, 1))."""
    h = torch.tanh(x @ state["trunk.weight"].T + state["trunk.bias"])
    logits = h @ state["emotion.weight"].T + state["emotion.bias"]
    scores = torch.sigmoid(h @ state["personality.weight"].T + state["personality.bias"])
    return logits, scores


def _intensity_rows(n: int, gen: torch.Generator) -> torch.Tensor:
    """MOSEI-like rows: six intensities in [0, 3] (mostly absent), neutral 1 iff none."""
    six = 3 * torch.rand(n, 6, generator=gen) * (torch.rand(n, 6, generator=gen) < 0.35)
    neutral = (six.sum(1, keepdim=True) == 0).float()
    return torch.cat([neutral, six], 1)


def make_inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(2025)
    t: dict[str, torch.Tensor] = {}
    t["logits"] = 2 * torch.randn(ROWS, 7, generator=gen)
    t["rows"] = _intensity_rows(ROWS, gen)
    t["scores"] = torch.sigmoid(2 * torch.randn(ROWS, 5, generator=gen))
    t["traits"] = torch.rand(ROWS, 5, generator=gen)
    t["has_emotion"] = torch.arange(ROWS) % 3 != 2  # 8 emotion rows, 4 trait rows
    t["has_traits"] = ~t["has_emotion"]
    train = _intensity_rows(TRAIN_ROWS, gen)
    train[:7, :] = torch.eye(7)  # every class present in the training split
    t["train_rows"] = train
    t["state.trunk.weight"] = torch.randn(HIDDEN, IN_DIM, generator=gen)
    t["state.trunk.bias"] = 0.1 * torch.randn(HIDDEN, generator=gen)
    # large head weights: confident predictions, so both pseudo-label terms appear
    t["state.emotion.weight"] = 2 * torch.randn(7, HIDDEN, generator=gen)
    t["state.emotion.bias"] = 0.1 * torch.randn(7, generator=gen)
    t["state.personality.weight"] = 2 * torch.randn(5, HIDDEN, generator=gen)
    t["state.personality.bias"] = 0.1 * torch.randn(5, generator=gen)
    t["steps.x"] = torch.randn(STEPS, BATCH, IN_DIM, generator=gen)
    has_e = torch.rand(STEPS, BATCH, generator=gen) < 0.5
    has_e[:, 0], has_e[:, 1] = True, False  # both tasks in every other batch
    has_e[ONLY_EMOTION_STEP] = True
    has_e[ONLY_PERSONALITY_STEP] = False
    t["steps.has_emotion"] = has_e
    t["steps.has_traits"] = ~has_e
    t["steps.rows"] = _intensity_rows(STEPS * BATCH, gen).view(STEPS, BATCH, 7) * has_e[..., None]
    t["steps.traits"] = torch.rand(STEPS, BATCH, 5, generator=gen) * (~has_e)[..., None]
    return {k: v.contiguous() for k, v in t.items()}


def state_of(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tiny model's weights as fresh leaves that require gradients."""
    return {
        k.removeprefix("state."): v.clone().requires_grad_(True)
        for k, v in inputs.items()
        if k.startswith("state.")
    }


# --------------------------------------------------------------------------- their code
def _load_module(path: Path, name: str) -> types.ModuleType:
    sys.dont_write_bytecode = True  # leave their copy as it was
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _their_function(path: Path, name: str, namespace: dict):
    """One top-level function of their file, compiled alone (the file's imports need their
    whole training stack; this function needs only `namespace`)."""
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    code = compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec")
    exec(code, namespace)
    return namespace[name]


def _nan_where(t: torch.Tensor, absent: torch.Tensor) -> torch.Tensor:
    """Their batches mark a row without a label by NaN in every column."""
    return torch.where(absent[:, None], torch.full_like(t, float("nan")), t)


def run_reference(main_dir: Path, scene_dir: Path, inputs: dict[str, torch.Tensor]):
    v2 = _load_module(main_dir / "utils" / "losses.py", "ref_main_losses")
    v1 = _load_module(scene_dir / "utils" / "losses.py", "ref_scene_losses")
    quiet = types.SimpleNamespace(tqdm=lambda it, **_: it)
    get_weights = _their_function(
        scene_dir / "training" / "train_utils_video.py",
        "get_weights",
        {"np": np, "tqdm": quiet.tqdm, "print": lambda *a, **k: None},
    )
    t = inputs
    out: dict[str, torch.Tensor] = {}
    train_batches = [{"label": t["train_rows"][i : i + 16]} for i in range(0, TRAIN_ROWS, 16)]
    w = torch.FloatTensor(get_weights(train_batches))
    out["class_weights"] = w
    he, ht = t["has_emotion"], t["has_traits"]
    emo_out, emo_lab = {"emotion_logits": t["logits"][he]}, {"emotion": t["rows"][he]}
    per_out = {"personality_scores": t["scores"][ht]}
    per_lab = {"personality": t["traits"][ht]}
    # stage 1: their scene trainer's MultiTaskLoss (soft-target CE), with / without weights
    out["soft"] = v1.MultiTaskLoss(personality_loss_type="mae")(emo_out, emo_lab)
    paper = v1.MultiTaskLoss(weight_emotion=FACTOR, emo_weights=w, personality_loss_type="mae")
    out["soft_weighted"] = paper(emo_out, emo_lab)
    out["mae"] = v1.MultiTaskLoss(personality_loss_type="mae")(per_out, per_lab)
    # their released video stage-2 objective: both terms of the same criterion
    out["cross_weighted"] = paper({**emo_out, **per_out}, {**emo_lab, **per_lab})
    # main's v2 components (hard CE on the argmax, MAE, both pseudo-label terms)
    labels = {
        "emotion": _nan_where(t["rows"], ~he),
        "valid_emo": he,
        "personality": _nan_where(t["traits"], ~ht),
        "valid_per": ht,
    }
    outputs = {"emotion_logits": t["logits"], "personality_scores": t["scores"]}
    comps = v2.MultiTaskLossWithNaN_v2(**GRADNORM_ARGS)._collect_components(outputs, labels)
    for k in KEYS:
        out[f"v2.{k}"] = comps[k]
    weighted = v2.MultiTaskLossWithNaN_v2(**{**GRADNORM_ARGS, "emo_weights": w})
    out["hard_weighted"] = weighted._collect_components(outputs, labels)["emo_sup"]
    out.update(_reference_gradnorm(v2, inputs))
    return {k: v.detach().float().reshape(-1).contiguous() for k, v in out.items()}


def _reference_gradnorm(v2: types.ModuleType, inputs: dict[str, torch.Tensor]):
    """Their criterion over the fixed batches; the model's weights stay fixed (no optimiser
    step), so the weights move only by their GradNorm rule."""
    criterion = v2.MultiTaskLossWithNaN_v2(**GRADNORM_ARGS)
    state = state_of(inputs)
    shared = list(state.values())  # their fusion model: no name holds emotion/personality
    weights, totals, comps = [], [], []
    for s in range(STEPS):
        logits, scores = tiny_forward(state, inputs["steps.x"][s])
        he, ht = inputs["steps.has_emotion"][s], inputs["steps.has_traits"][s]
        labels = {
            "emotion": _nan_where(inputs["steps.rows"][s], ~he),
            "valid_emo": he,
            "personality": _nan_where(inputs["steps.traits"][s], ~ht),
            "valid_per": ht,
        }
        outputs = {"emotion_logits": logits, "personality_scores": scores}
        c = criterion._collect_components(outputs, labels)
        total, info = criterion(outputs, labels, shared_params=shared)
        comps.append([float(c[k].detach()) if k in c else float("nan") for k in KEYS])
        ws = {**info["weights_sup"], **info["weights_ssl"]}
        weights.append([ws[k] for k in KEYS])
        totals.append(float(total.detach()))
    return {
        "gradnorm.weights": torch.tensor(weights),
        "gradnorm.total": torch.tensor(totals),
        "gradnorm.components": torch.tensor(comps),
    }


# --------------------------------------------------------------------------- mepr today
def run_mepr_defaults(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """mepr's numbers with its default options (its API of commit b626bc1)."""
    import torch.nn.functional as F

    from mepr.config.train import GradNormParams, SslParams
    from mepr.train.losses import LossWeighting, loss_components

    t, out = inputs, {}
    he, ht = t["has_emotion"], t["has_traits"]
    target = t["rows"].argmax(1)
    out["stage1_emotion"] = F.cross_entropy(t["logits"][he], target[he])
    out["stage1_personality"] = (t["scores"][ht] - t["traits"][ht]).abs().mean()
    comps = loss_components(
        t["logits"], t["scores"], target, he, t["traits"], ht, ssl=SslParams(),
        teacher_logits=t["logits"], teacher_scores=t["scores"],
    )  # fmt: skip
    for k in KEYS:
        out[f"components.{k}"] = comps[k]
    lw = LossWeighting(GradNormParams(), SslParams())
    state = state_of(inputs)
    trunk = [state["trunk.weight"], state["trunk.bias"]]  # the tiny model's "bridge"
    weights, totals = [], []
    for s in range(STEPS):
        logits, scores = tiny_forward(state, t["steps.x"][s])
        he, ht = t["steps.has_emotion"][s], t["steps.has_traits"][s]
        c = loss_components(
            logits, scores, t["steps.rows"][s].argmax(1), he, t["steps.traits"][s], ht,
            ssl=SslParams(), teacher_logits=logits, teacher_scores=scores,
        )  # fmt: skip
        lw.update(c, trunk)
        weights.append([lw.weights[k] for k in KEYS])
        totals.append(float(lw.total(c).detach()))
    out["gradnorm.weights"] = torch.tensor(weights)
    out["gradnorm.total"] = torch.tensor(totals)
    return {k: v.detach().float().reshape(-1).contiguous() for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, help="copy of their main branch")
    ap.add_argument("--scene", type=Path, help="copy of their scene_trainer branch")
    ap.add_argument("--mepr-defaults", action="store_true", help="record mepr's default numbers")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    if args.reference is not None:
        if args.scene is None:
            ap.error("--reference needs --scene (their scene_trainer branch) too")
        inputs = make_inputs()
        save_file(inputs, args.out / "inputs.safetensors")
        ref = run_reference(args.reference, args.scene, inputs)
        meta = {"main": MAIN_COMMIT, "scene_trainer": SCENE_COMMIT}
        save_file(ref, args.out / "reference.safetensors", metadata=meta)
        record = {
            **meta,
            "gradnorm_constructor": GRADNORM_ARGS,
            "stage1_constructor": {
                "weight_emotion": FACTOR,
                "emo_weights": "get_weights(train_rows in batches of 16)",
                "personality_loss_type": "mae",
            },
            "single_task_steps": [ONLY_EMOTION_STEP, ONLY_PERSONALITY_STEP],
            "shared_params": "every tensor of the tiny model",
        }
        (args.out / "reference.json").write_text(json.dumps(record, indent=1) + "\n")
        print("reference:", {k: v.numel() for k, v in ref.items()})
    if args.mepr_defaults:
        inputs = load_file(args.out / "inputs.safetensors")
        save_file(run_mepr_defaults(inputs), args.out / "mepr_defaults.safetensors")
        print("mepr defaults written")


if __name__ == "__main__":
    main()
