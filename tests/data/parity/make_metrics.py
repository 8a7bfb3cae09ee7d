"""Record the authors' evaluation measures on fixed random predictions (see README.md).

    python tests/data/parity/make_metrics.py --reference /tmp/ref-main

DIR is an unpacked copy of their main branch.  Their ``utils/measures.py`` (mf1, uar,
acc_func, ccc) and the evaluation code of ``training/train.py`` (process_predictions,
evaluate_epoch, log_and_aggregate_split) and ``utils/search_utils.py`` (mean_combo) are
imported from it and run; only the numbers are written to ``metrics/NAME.safetensors``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from make_fusion import MAIN_COMMIT, import_reference
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent


def _random(gen: torch.Generator, n: int, p_pos: float, neutral_bias: float) -> dict:
    logits = 2 * torch.randn(n, 7, generator=gen)
    logits[:, 0] += neutral_bias
    strength = 3 * torch.rand(n, 7, generator=gen)
    intensities = torch.where(torch.rand(n, 7, generator=gen) < p_pos, strength, 0.0)
    return {
        "logits": logits,
        "intensities": intensities,
        "trait_pred": torch.rand(n, 5, generator=gen),
        "trait_true": torch.rand(n, 5, generator=gen),
    }


def _degenerate(gen: torch.Generator) -> dict:
    """Columns where scikit-learn's zero_division rules decide the score."""
    n = 12
    pred = torch.zeros(n, 6, dtype=torch.bool)
    true = torch.zeros(n, 6, dtype=torch.bool)
    # 0: never true, never predicted; 1: never true, predicted twice; 2: always true and
    # predicted; 3: true four times, never predicted; 4: always true, predicted half the time;
    # 5: a mix.
    pred[[1, 5], 1] = True
    pred[:, 2] = true[:, 2] = True
    true[[0, 3, 6, 9], 3] = True
    pred[::2, 4] = True
    true[:, 4] = True
    pred[[0, 1, 2, 7], 5] = True
    true[[1, 2, 3, 8], 5] = True
    # Logits that decode to exactly these decisions: present emotions at +4, absent at -4,
    # and a dominant neutral (p >= 6/7, "no emotion") where a row has none.
    logits = torch.where(pred, 4.0, -4.0)
    neutral = torch.where(pred.any(1), 0.0, 10.0)
    logits = torch.cat([neutral[:, None], logits], 1)
    intensities = torch.cat(
        [torch.rand(n, 1, generator=gen), true * (0.5 + torch.rand(n, 6, generator=gen))], 1
    )
    trait_pred = torch.rand(n, 5, generator=gen)
    trait_pred[:, 0] = 0.5  # constant prediction: CCC 0
    trait_true = torch.rand(n, 5, generator=gen)
    trait_true[:, 1] = 0.25  # constant target
    return {
        "logits": logits,
        "intensities": intensities.float(),
        "trait_pred": trait_pred,
        "trait_true": trait_true,
        "_expect": pred,
    }


class _Replay(torch.nn.Module):
    """Stands in for a model in their evaluation loop: returns stored outputs."""

    def __init__(self, logits: torch.Tensor, scores: torch.Tensor):
        super().__init__()
        self.out = {"emotion_logits": logits, "personality_scores": scores}

    def forward(self, batch):
        return self.out


def _theirs(ref: Path, case: dict) -> dict[str, np.ndarray]:
    train = import_reference(ref, "training.train")
    measures = import_reference(ref, "utils.measures")
    search = import_reference(ref, "utils.search_utils")
    logits, inten = case["logits"], case["intensities"]
    tp, tt = case["trait_pred"].numpy(), case["trait_true"].numpy()
    pred, true = train.process_predictions(logits, inten)
    pred, true = np.asarray(pred), np.asarray(true)
    if "_expect" in case:  # the crafted logits decode as intended
        assert (pred.astype(bool) == case["_expect"].numpy()).all()
    m_f1, f1 = measures.mf1(true, pred, return_scores=True)
    m_uar, uar = measures.uar(true, pred, return_scores=True)
    # Their full evaluation path on one "dataset", then their mean_combo.
    batch = {"labels": {"emotion": inten, "personality": case["trait_true"]}}
    cfg = SimpleNamespace(single_task=False)
    model = _Replay(logits, case["trait_pred"])
    dev = train.log_and_aggregate_split("Dev", {"ds": [batch]}, model, "cpu", cfg)
    search.format_result_box_dual(1, "p", 0, {}, dev, {})
    out = {
        "probs": torch.softmax(logits, dim=1).numpy(),  # as process_predictions computes it
        "decisions": pred,
        "targets": true,
        "F1": np.asarray(f1),
        "UAR": np.asarray(uar),
        "mF1": m_f1,
        "mUAR": m_uar,
        "mACC": measures.acc_func(tt, tp),
        "CCC_pooled": measures.ccc(tt, tp),
        "CCC": np.asarray([measures.ccc(tt[:, i], tp[:, i]) for i in range(5)]),
    }
    out |= {k: dev[k] for k in ("mean_emo", "mean_pkl", "mean_combo")}
    for key, evaluated in (("mF1", "mF1_ds"), ("mUAR", "mUAR_ds"), ("mACC", "ACC_ds")):
        assert out[key] == dev[evaluated], key  # the loop computes what the functions do
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="copy of their main branch")
    ap.add_argument("--commit", default=MAIN_COMMIT, help="their commit the copy is of")
    ap.add_argument("--out", type=Path, default=HERE / "metrics")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cases = {
        "random": lambda g: _random(g, 64, 0.35, 0.0),
        "skewed": lambda g: _random(g, 40, 0.1, 2.5),  # many neutral-only rows, rare emotions
        "degenerate": _degenerate,
    }
    index = {}
    for i, (name, make) in enumerate(cases.items()):
        seed = 2000 + i
        case = make(torch.Generator().manual_seed(seed))
        theirs = _theirs(args.reference, case)
        tensors = {f"input/{k}": v.contiguous() for k, v in case.items() if not k.startswith("_")}
        for k, v in theirs.items():
            tensors[f"theirs/{k}"] = torch.from_numpy(np.array(v))  # 0-d stays 0-d
        save_file(tensors, args.out / f"{name}.safetensors", metadata={"commit": args.commit})
        index[name] = {"seed": seed, "rows": int(case["logits"].shape[0])}
        print(name, {k: float(np.mean(v)) for k, v in theirs.items() if np.ndim(v) == 0})
    record = {"commit": args.commit, "cases": index}
    (args.out / "cases.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
