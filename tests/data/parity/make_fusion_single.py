"""Record the authors' single-task fusion on fixed random weights and inputs (see README.md).

    python tests/data/parity/make_fusion_single.py --reference /tmp/ref-main

DIR is an unpacked copy of their main branch (``git archive main | tar -x -C DIR``), kept
outside this repository.  Their ``SingleTaskAsymModel`` is imported from it (through
make_fusion.py's importer, which stubs the packages the fusion never calls), run once per
``single_task_id`` of their trainer, and only numbers are written: per case
``fusion_single/NAME.safetensors`` (their state dict, the inputs, the output) and
``fusion_single/NAME.json`` (the constructor arguments).  Nothing of theirs is copied.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from make_fusion import MAIN_COMMIT, import_reference  # this folder: run as a script
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent

# Small asymmetric widths per modality, emotion part and personality part (their table is
# asymmetric too, e.g. face 1024 + 256, body 256 + 1024).
EMO_DIMS = {"body": 6, "face": 10, "scene": 8, "audio": 5, "text": 4}
PKL_DIMS = {"body": 10, "face": 4, "scene": 8, "audio": 5, "text": 7}
HIDDEN = 16
BATCH = 5

# Their trainer's single_task_id -> (feature_slice, target) (main:training/train.py).
TASK_IDS = {0: ("both", "emo"), 1: ("emo", "emo"), 2: ("both", "pkl"), 3: ("pkl", "pkl")}


def _small(cls: type) -> type:
    """Their class with its hard-coded width tables replaced by the small ones above; their
    constructor reads the tables as class attributes, so overriding them is enough."""
    total = {m: EMO_DIMS[m] + PKL_DIMS[m] for m in EMO_DIMS}
    return type("Small", (cls,), {"EMO_DIMS": EMO_DIMS, "PKL_DIMS": PKL_DIMS, "TOTAL_DIMS": total})


def _cases() -> list[tuple[str, int, dict]]:
    """(name, single_task_id, constructor kwargs) for every case."""
    base = {"hidden_dim": HIDDEN, "num_heads": 4, "dropout": 0.1, "emo_out_dim": 7}
    base |= {"pkl_out_dim": 5, "device": "cpu"}
    cases = []
    for tid, (feature_slice, target) in TASK_IDS.items():
        kw = {**base, "target": target, "feature_slice": feature_slice}
        cases.append((f"id{tid}_{feature_slice}_{target}", tid, kw))
    for tid in (1, 3):  # other head counts and dropout (dropout is inert in eval mode)
        feature_slice, target = TASK_IDS[tid]
        kw = {**base, "target": target, "feature_slice": feature_slice}
        cases.append((f"id{tid}_heads2", tid, {**kw, "num_heads": 2, "dropout": 0.2}))
    return cases


def _batch(gen: torch.Generator) -> dict:
    feats, logits, scores = {}, {}, {}
    for m in EMO_DIMS:
        feats[m] = torch.randn(BATCH, EMO_DIMS[m] + PKL_DIMS[m], generator=gen)
        logits[m] = 2 * torch.randn(BATCH, 7, generator=gen)
        scores[m] = torch.rand(BATCH, 5, generator=gen)
    return {"features": feats, "emotion_logits": logits, "personality_scores": scores}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="copy of their main branch")
    ap.add_argument("--commit", default=MAIN_COMMIT, help="their commit the copy is of")
    ap.add_argument("--out", type=Path, default=HERE / "fusion_single")
    args = ap.parse_args(argv)
    models = import_reference(args.reference, "models.models")
    cls = _small(models.SingleTaskAsymModel)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for i, (name, tid, kwargs) in enumerate(_cases()):
        seed = 2000 + i
        torch.manual_seed(seed)
        model = cls(**kwargs).eval()
        batch = _batch(torch.Generator().manual_seed(seed))
        with torch.no_grad():
            out = model(batch)
        tensors = {
            f"state/{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()
        }
        for key in ("features", "emotion_logits", "personality_scores"):
            for m, t in batch[key].items():
                tensors[f"input/{key}/{m}"] = t.contiguous()
        for key, t in out.items():
            if t is not None:  # the other task's output is None
                tensors[f"output/{key}"] = t.detach().contiguous()
        # One metadata key only: safetensors writes several in hash order, not reproducibly.
        save_file(tensors, args.out / f"{name}.safetensors", metadata={"commit": args.commit})
        record = {
            "commit": args.commit,
            "class": "SingleTaskAsymModel",
            "single_task_id": tid,
            "constructor": kwargs,
            "emotion_widths": EMO_DIMS,  # replace their hard-coded tables (see _small)
            "personality_widths": PKL_DIMS,
            "seed": seed,
        }
        (args.out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"{name}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
