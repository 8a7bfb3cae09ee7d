"""Write the stage-1/2 parity cases of tests/test_parity_unimodal.py from the authors' code.

    python tests/data/parity/make_unimodal.py --reference /tmp/ref-app

`--reference` is a copy of the app branch of github.com/LEYA-HSE/SSL-MEPR (its
`core/modalities/{video,text,audio}/architectures.py` are imported from there; nothing of
theirs is copied here).  For every case the script builds their model with a fixed seed at
small shapes, puts it in eval mode, runs it on fixed random inputs and writes
`unimodal/CASE.safetensors` (their state dict under `state.`, the inputs under `input.`, their
outputs under `output.`) and `unimodal/CASE.json` (their class, its constructor arguments).
Their position-encoding buffers (5000 x D each) are cut to their first PE_ROWS rows to keep
the files small; mepr checks whatever rows it is given against its own encoding.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent / "unimodal"
PE_ROWS = 8
B, T = 3, 6
IN_VIDEO, IN_TEXT = 32, 24
AUDIO_LENGTHS = [6, 3, 0]  # stage 1: their pooling averages the first `length` steps


def _load(reference: Path, family: str) -> types.ModuleType:
    """Their `core/modalities/<family>/architectures.py`, imported from the copy."""
    if family == "audio":
        try:  # their audio module imports wav2vec2 classes it never uses in these models
            import transformers.models.wav2vec2.modeling_wav2vec2  # noqa: F401
        except ImportError:
            _stub_transformers()
    path = reference / "core" / "modalities" / family / "architectures.py"
    spec = importlib.util.spec_from_file_location(f"reference_{family}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stub_transformers() -> None:
    names = ["transformers", "transformers.models", "transformers.models.wav2vec2"]
    names.append("transformers.models.wav2vec2.modeling_wav2vec2")
    for name in names:
        sys.modules[name] = types.ModuleType(name)
    leaf = sys.modules[names[-1]]
    leaf.Wav2Vec2Model = leaf.Wav2Vec2PreTrainedModel = torch.nn.Module


def _inputs(seed: int, dim: int) -> torch.Tensor:
    return torch.randn(B, T, dim, generator=torch.Generator().manual_seed(1000 + seed))


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    state = {}
    for k, v in model.state_dict().items():
        if k.endswith("positional_encoding.pe"):
            v = v[:PE_ROWS]
        state[f"state.{k}"] = v.detach().clone().contiguous()
    return state


def _write(name: str, meta: dict, model, inputs: dict, outputs: dict) -> None:
    tensors = {**_state(model)}
    tensors.update({f"input.{k}": v.contiguous() for k, v in inputs.items()})
    tensors.update({f"output.{k}": v.detach().contiguous() for k, v in outputs.items()})
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT / f"{name}.safetensors"), metadata={"format": "pt"})
    (OUT / f"{name}.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _build(module, cls: str, kwargs: dict, seed: int):
    torch.manual_seed(seed)
    return getattr(module, cls)(**kwargs).eval()


# their video/text stage-1 constructors take both input widths
def _vt_kwargs(dim: int, **kw) -> dict:
    return {"input_dim_emotion": dim, "input_dim_personality": dim, "dropout": 0.1, **kw}


STAGE1 = {
    # case: (family, class, kwargs)
    "video_emotion_gated": (
        "video",
        "EmotionMamba",
        _vt_kwargs(IN_VIDEO, hidden_dim=16, out_features=24, mamba_layer_number=2, mamba_d_model=8),
    ),
    "video_emotion_transformer_pe": (
        "video",
        "EmotionTransformer",
        _vt_kwargs(
            IN_VIDEO,
            hidden_dim=16,
            out_features=24,
            num_transformer_heads=4,
            tr_layer_number=2,
            positional_encoding=True,
        ),
    ),
    "video_emotion_transformer": (
        "video",
        "EmotionTransformer",
        _vt_kwargs(
            IN_VIDEO,
            hidden_dim=16,
            out_features=24,
            num_transformer_heads=2,
            tr_layer_number=2,
            positional_encoding=False,
        ),
    ),
    "video_personality_gated_sigmoid": (
        "video",
        "PersonalityMamba",
        _vt_kwargs(
            IN_VIDEO,
            hidden_dim=12,
            out_features=20,
            mamba_layer_number=2,
            mamba_d_model=8,
            per_activation="sigmoid",
        ),
    ),
    "video_personality_gated_relu": (
        "video",
        "PersonalityMamba",
        _vt_kwargs(
            IN_VIDEO,
            hidden_dim=12,
            out_features=20,
            mamba_layer_number=2,
            mamba_d_model=8,
            per_activation="relu",
        ),
    ),
    # their text EmotionMamba's head normalises at hidden_dim: it needs out_features == hidden
    "text_emotion_gated": (
        "text",
        "EmotionMamba",
        _vt_kwargs(IN_TEXT, hidden_dim=16, out_features=16, mamba_layer_number=2, mamba_d_model=8),
    ),
    "text_personality_transformer": (
        "text",
        "PersonalityTransformer",
        _vt_kwargs(
            IN_TEXT,
            hidden_dim=16,
            out_features=24,
            num_transformer_heads=2,
            tr_layer_number=2,
            positional_encoding=True,
        ),
    ),
    "audio_emotion_classifier": (
        "audio",
        "CustomMambaClassifier",
        {"input_size": IN_TEXT, "d_model": 16, "num_layers": 2, "num_classes": 7, "dropout": 0.1},
    ),
    "audio_personality_regressor": (
        "audio",
        "CustomMambaRegressor",
        {"input_size": IN_TEXT, "d_model": 16, "num_layers": 2, "num_targets": 5, "dropout": 0.1},
    ),
}

STAGE2 = {
    # case: (emotion stage-1 case, personality stage-1 case, kwargs or audio config)
    "video_cross_pe": (
        "video_emotion_gated",
        "video_personality_gated_sigmoid",
        {
            "hidden_dim": 16,
            "out_features": 20,
            "num_transformer_heads": 2,
            "tr_layer_number": 2,
            "positional_encoding": True,
            "per_activation": "sigmoid",
            "dropout": 0.1,
        },
    ),
    "video_cross_relu": (
        "video_emotion_transformer",
        "video_personality_gated_relu",
        {
            "hidden_dim": 8,
            "out_features": 12,
            "num_transformer_heads": 4,
            "tr_layer_number": 1,
            "positional_encoding": False,
            "per_activation": "relu",
            "dropout": 0.1,
        },
    ),
    "text_cross": (
        "text_emotion_gated",
        "text_personality_transformer",
        {
            "hidden_dim": 16,
            "out_features": 16,
            "num_transformer_heads": 4,
            "tr_layer_number": 2,
            "dropout": 0.1,
        },
    ),
    "audio_cross": (
        "audio_emotion_classifier",
        "audio_personality_regressor",
        {"hidden_dim": 12, "dropout": 0.1, "tr_heads": 4, "num_emotions": 7, "num_traits": 5},
    ),
}


def _stage1_outputs(family: str, model, x: torch.Tensor, lengths: torch.Tensor) -> dict:
    if family == "audio":
        seq = _audio_sequence(model, x)
        return {"output": model(x, lengths), "sequence": seq}
    key = "emotion" if type(model).__name__.startswith("Emotion") else "personality"
    given = {f"{key}_input": x, "return_features": True}
    out = model(**given)
    result = out["emotion_logits"] if key == "emotion" else out["personality_scores"]
    return {"output": result, "sequence": out["last_encoder_features"]}


def _audio_sequence(model, x: torch.Tensor) -> torch.Tensor:
    """The audio encoder's per-step features: their blocks over their input projection (their
    loader attaches the same computation to the model as `extract_features`)."""
    h = model.input_proj(x)
    for block in model.blocks:
        h = block(h)
    return h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, type=Path, help="a copy of their app branch")
    args = ap.parse_args()
    modules = {f: _load(args.reference, f) for f in ("video", "text", "audio")}
    torch.set_num_threads(1)
    built = {}
    with torch.no_grad():
        for seed, (name, (family, cls, kwargs)) in enumerate(STAGE1.items()):
            model = _build(modules[family], cls, kwargs, seed)
            dim = kwargs.get("input_dim_emotion", kwargs.get("input_size"))
            x = _inputs(seed, dim)
            full = torch.full((B,), T, dtype=torch.long)
            lengths = torch.tensor(AUDIO_LENGTHS) if family == "audio" else full
            out = _stage1_outputs(family, model, x, lengths)
            meta = {"family": family, "model": cls, "kwargs": kwargs, "seed": seed}
            _write(name, meta, model, {"x": x, "lengths": lengths}, out)
            built[name] = (family, cls, kwargs, seed)
        for offset, (name, (emo_case, per_case, kwargs)) in enumerate(STAGE2.items()):
            seed = 100 + offset
            family = built[emo_case][0]
            emo = _build(modules[family], *built[emo_case][1:3], built[emo_case][3])
            per = _build(modules[family], *built[per_case][1:3], built[per_case][3])
            torch.manual_seed(seed)
            x = _inputs(seed, built[emo_case][2].get("input_dim_emotion", IN_TEXT))
            lengths = torch.full((B,), T, dtype=torch.long)
            if family == "audio":
                for enc in (emo, per):  # what their audio loader attaches to each encoder
                    enc.output_dim = enc.input_proj.out_features
                    enc.extract_features = lambda v, _lengths, enc=enc: _audio_sequence(enc, v)
                model = modules[family].FusionTransformer(emo, per, kwargs).eval()
                out = model(emo_input=(x, lengths), per_input=(x, lengths), return_features=True)
            else:
                model = modules[family].FusionTransformer(emo, per, **kwargs).eval()
                out = model(emotion_input=x, personality_input=x, return_features=True)
            outputs = {
                "emotion_logits": out["emotion_logits"],
                "personality_scores": out["personality_scores"],
                "emotion_sequence": out["last_emo_encoder_features"],
                "personality_sequence": out["last_per_encoder_features"],
            }
            meta = {
                "family": family,
                "model": "FusionTransformer",
                "kwargs": kwargs,
                "seed": seed,
                "emotion": {"model": built[emo_case][1], "kwargs": built[emo_case][2]},
                "personality": {"model": built[per_case][1], "kwargs": built[per_case][2]},
            }
            _write(name, meta, model, {"x": x, "lengths": lengths}, outputs)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(STAGE1) + len(STAGE2)} cases to {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
