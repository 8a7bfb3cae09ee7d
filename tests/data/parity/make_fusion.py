"""Record the authors' multi-task fusion on fixed random weights and inputs (see README.md).

    python tests/data/parity/make_fusion.py --reference /tmp/ref-main

DIR is an unpacked copy of their main branch (``git archive main | tar -x -C DIR``), kept
outside this repository.  Their module is imported from it, run, and only numbers are
written: per case ``fusion/NAME.safetensors`` (their state dict, the inputs, the outputs) and
``fusion/NAME.json`` (the constructor arguments).  Nothing of theirs is copied.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

MAIN_COMMIT = "97b2ec243b2856f75a206517cc4ecec83f434569"
HERE = Path(__file__).resolve().parent

# Packages their modules import at top level but the code we run never calls (their
# PyG-based graph layers, an optimizer, a log formatter); stubbed only when not installed.
OPTIONAL = ("torch_geometric", "torch_sparse", "torch_scatter", "lion_pytorch", "colorlog")

# Small but distinct widths, in the order of their model's modality table.
DIMS = {"body": 24, "face": 20, "scene": 16, "audio": 12, "text": 8}
HIDDEN = 16
BATCH = 5


class _Stub(types.ModuleType):
    """A module whose every attribute is a fresh empty class (enough to define, not to run)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        value = type(name, (), {})
        setattr(self, name, value)
        return value


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, roots: set[str]):
        self.roots = roots

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.roots:
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _Stub(spec.name)

    def exec_module(self, module):
        pass


def import_reference(reference: Path, module: str) -> types.ModuleType:
    """Import one of their modules from the copy at ``reference`` (never from this repo)."""
    missing = {r for r in OPTIONAL if importlib.util.find_spec(r) is None}
    if missing and not any(isinstance(f, _StubFinder) for f in sys.meta_path):
        sys.meta_path.append(_StubFinder(missing))
    sys.dont_write_bytecode = True  # leave their copy as it was
    sys.path.insert(0, str(reference.resolve()))
    return importlib.import_module(module)


def _small(cls: type) -> type:
    """Their class with its hard-coded modality widths replaced by :data:`DIMS`.

    Their constructor reads ``self.modalities`` right after assigning it, so intercepting
    that one assignment is enough; the rest of their ``__init__`` runs unchanged.
    """

    class Small(cls):
        def __setattr__(self, name, value):
            if name == "modalities":
                value = dict(DIMS)
            super().__setattr__(name, value)

    return Small


def _cases() -> list[tuple[str, dict, list[str]]]:
    """(name, constructor kwargs, modalities missing from the batch) for every case."""
    base = {"hidden_dim": HIDDEN, "num_heads": 4, "dropout": 0.1, "emo_out_dim": 7}
    base |= {"pkl_out_dim": 5, "device": "cpu"}

    def kw(ablation: dict | None = None, **over) -> dict:
        return {**base, **over, "ablation_config": {"disabled_modalities": [], **(ablation or {})}}

    cases = [("full", kw(), []), ("heads2", kw(num_heads=2), [])]
    for switch in (
        "disable_graph_attn",
        "disable_cross_attn",
        "disable_emo_logit_proj",
        "disable_pkl_logit_proj",
        "disable_guide_emo",
        "disable_guide_pkl",
        "disable_guide_bank",
    ):
        cases.append(("no_" + switch.removeprefix("disable_"), kw({switch: True}), []))
    for m in DIMS:
        cases.append((f"without_{m}", kw({"disabled_modalities": [m]}), []))
    three = ["audio", "text", "scene"]
    cases.append(("without_audio_text_scene", kw({"disabled_modalities": three}), []))
    cases.append(("missing_face", kw(), ["face"]))
    cases.append(("missing_three", kw(), ["body", "scene", "text"]))
    cases.append(("missing_all_but_text", kw(), ["body", "face", "scene", "audio"]))
    cases.append(("missing_graph_attn_off", kw({"disable_graph_attn": True}), ["face", "text"]))
    cases.append(("missing_cross_attn_off", kw({"disable_cross_attn": True}), ["face", "text"]))
    cases.append(
        ("missing_and_without", kw({"disabled_modalities": ["body"]}), ["scene"])
    )  # a disabled modality present in the batch and another one missing from it
    # The released app checkpoint's arguments (app:core/runtime.py), at hidden width 16.
    cases.append(("app", kw({"disable_guide_pkl": True}, num_heads=8, dropout=0.2), []))
    return cases


def _batch(gen: torch.Generator, missing: list[str]) -> dict:
    feats, logits, scores = {}, {}, {}
    for m, d in DIMS.items():
        x = torch.randn(BATCH, d, generator=gen)
        lg = 2 * torch.randn(BATCH, 7, generator=gen)
        sc = torch.rand(BATCH, 5, generator=gen)
        feats[m], logits[m], scores[m] = (None, None, None) if m in missing else (x, lg, sc)
    return {"features": feats, "emotion_logits": logits, "personality_scores": scores}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="copy of their main branch")
    ap.add_argument("--commit", default=MAIN_COMMIT, help="their commit the copy is of")
    ap.add_argument("--out", type=Path, default=HERE / "fusion")
    args = ap.parse_args(argv)
    models = import_reference(args.reference, "models.models")
    cls = _small(models.MultiModalFusionModelWithAblation)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for i, (name, kwargs, missing) in enumerate(_cases()):
        seed = 1000 + i
        torch.manual_seed(seed)
        model = cls(**kwargs).eval()
        batch = _batch(torch.Generator().manual_seed(seed), missing)
        with torch.no_grad():
            out = model(batch)
        tensors = {
            f"state/{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()
        }
        for key in ("features", "emotion_logits", "personality_scores"):
            for m, t in batch[key].items():
                if t is not None:
                    tensors[f"input/{key}/{m}"] = t.contiguous()
        for key, t in out.items():
            tensors[f"output/{key}"] = t.detach().contiguous()
        meta = {"commit": args.commit, "class": "MultiModalFusionModelWithAblation"}
        # One metadata key only: safetensors writes several in hash order, not reproducibly.
        save_file(tensors, args.out / f"{name}.safetensors", metadata={"commit": args.commit})
        record = {
            **meta,
            "constructor": kwargs,
            "modality_widths": DIMS,  # replaces their hard-coded table (see _small)
            "missing_in_batch": missing,
            "seed": seed,
        }
        (args.out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"{name}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
