"""Record the authors' whole released system on fixed random weights (see system/README.md).

    python tests/data/parity/make_system.py --reference /tmp/ref-app

`--reference` is an unpacked copy of their app branch (``git archive app core | tar -x -C
DIR``), kept outside this repository; their modules are imported from it and only numbers
are written.  The script builds, each with its own seed and at small widths, the five
stage-2 models the app loads (video ``FusionTransformer`` for face, body and scene with the
stage-1 classes their configs name, the text and audio ``FusionTransformer`` with theirs)
and the app's multi-task fusion, with the app's constructor arguments wherever the shapes
cannot tell them (attention heads, activations) so that ``mepr import-reference``'s defaults
apply.  Then, as ``app:core/runtime.py`` does for one video, it runs every stage-2 model on
that video's embedding sequences, averages their per-step features over the steps, and feeds
the fusion; three videos with different sequence lengths are run one at a time.  Written:
``system/system.safetensors`` (state dicts, inputs, outputs) and ``system/system.json``
(every constructor call).
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

APP_COMMIT = "b423b35f37c65148f6be2b22ebb1bd60d616d5e5"
OUT = Path(__file__).resolve().parent / "system"
PE_ROWS = 8  # their position-encoding buffers (5000 rows) are cut to keep the file small
IN = {"video": 16, "audio": 20, "text": 12}  # CLIP / wav2vec2 / bge widths, made small
# steps per video and modality: unequal, so that mepr's batch pads and masks
LENGTHS = {
    "face": [6, 4, 5],
    "body": [6, 5, 3],
    "scene": [6, 6, 6],
    "audio": [9, 5, 7],
    "text": [5, 2, 4],
}
N_VIDEOS = 3


def _video(hidden, out, **kw) -> dict:
    return {"input_dim_emotion": IN["video"], "input_dim_personality": IN["video"],
            "hidden_dim": hidden, "out_features": out, **kw}  # fmt: skip


# (their stage-1 emotion class + kwargs, stage-1 personality class + kwargs, bridge kwargs).
# Heads / activations / position encoding are the app's (its video configs and loaders);
# widths and depths are small, each head count dividing its width.
VIDEO = {
    "face": (
        ("EmotionMamba", _video(12, 10, mamba_layer_number=1, mamba_d_model=6, dropout=0.15)),
        ("PersonalityMamba", _video(8, 12, mamba_layer_number=1, mamba_d_model=4,
                                    per_activation="sigmoid", dropout=0.15)),
        _video(10, 8, num_transformer_heads=2, tr_layer_number=2, positional_encoding=True,
               per_activation="sigmoid", dropout=0.15),
    ),
    "body": (
        ("EmotionMamba", _video(8, 6, mamba_layer_number=2, mamba_d_model=4, dropout=0.15)),
        ("PersonalityMamba", _video(12, 8, mamba_layer_number=1, mamba_d_model=4,
                                    per_activation="sigmoid", dropout=0.15)),
        _video(16, 8, num_transformer_heads=16, tr_layer_number=1, positional_encoding=True,
               per_activation="sigmoid", dropout=0.15),
    ),
    "scene": (
        ("EmotionTransformer", _video(8, 6, num_transformer_heads=4, tr_layer_number=2,
                                      positional_encoding=False, dropout=0.1)),
        ("PersonalityMamba", _video(8, 8, mamba_layer_number=2, mamba_d_model=4,
                                    per_activation="relu", dropout=0.1)),
        _video(12, 8, num_transformer_heads=4, tr_layer_number=2, positional_encoding=True,
               per_activation="relu", dropout=0.1),
    ),
}  # fmt: skip
TEXT = (
    # their text EmotionMamba's head normalises at hidden_dim: out_features == hidden_dim
    ("EmotionMamba", {"input_dim_emotion": IN["text"], "input_dim_personality": IN["text"],
                      "hidden_dim": 8, "out_features": 8, "mamba_layer_number": 2,
                      "mamba_d_model": 8, "dropout": 0.2}),
    ("PersonalityTransformer", {"input_dim_emotion": IN["text"],
                                "input_dim_personality": IN["text"], "hidden_dim": 8,
                                "out_features": 6, "num_transformer_heads": 8,
                                "tr_layer_number": 1, "dropout": 0.2}),
    {"input_dim_emotion": IN["text"], "input_dim_personality": IN["text"], "hidden_dim": 4,
     "out_features": 6, "tr_layer_number": 2, "num_transformer_heads": 4},
)  # fmt: skip
AUDIO = (
    ("CustomMambaClassifier", {"input_size": IN["audio"], "d_model": 8, "num_layers": 2,
                               "num_classes": 7, "dropout": 0.2}),
    ("CustomMambaRegressor", {"input_size": IN["audio"], "d_model": 8, "num_layers": 2,
                              "num_targets": 5, "dropout": 0.2}),
    # their audio bridge takes one config dict (stored in its checkpoint)
    {"hidden_dim": 6, "dropout": 0.2, "tr_heads": 2, "num_emotions": 7, "num_traits": 5},
)  # fmt: skip
# the app's fusion call (app:core/runtime.py) at a small hidden width
FUSION = {
    "hidden_dim": 16,
    "num_heads": 8,
    "dropout": 0.2,
    "emo_out_dim": 7,
    "pkl_out_dim": 5,
    "device": "cpu",
    "ablation_config": {"disabled_modalities": [], "disable_guide_pkl": True},
}
APP_ORDER = ("body", "face", "scene", "audio", "text")  # the app's batch dictionaries


def _import(reference: Path, relative: str, name: str) -> types.ModuleType:
    if "audio" in relative:
        try:  # their audio module imports wav2vec2 classes these models never use
            import transformers.models.wav2vec2.modeling_wav2vec2  # noqa: F401
        except ImportError:
            _stub_transformers()
    spec = importlib.util.spec_from_file_location(name, reference / relative)
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


def _seeded(seed: int, factory, *args, **kwargs):
    torch.manual_seed(seed)
    return factory(*args, **kwargs).eval()


def _audio_steps(enc, x):
    """Per-step features of an audio encoder: what the app's loader attaches to each."""
    h = enc.input_proj(x)
    for block in enc.blocks:
        h = block(h)
    return h


def _with_widths(cls: type, widths: dict[str, int]) -> type:
    """Their fusion class with its hard-coded modality widths replaced by `widths` (their
    constructor reads the table right after assigning it; the rest runs unchanged)."""

    class Small(cls):
        def __setattr__(self, name, value):
            if name == "modalities":
                value = dict(widths)
            super().__setattr__(name, value)

    return Small


def _build(ref: Path) -> tuple[dict, torch.nn.Module]:
    mods = {
        f: _import(ref, f"core/modalities/{f}/architectures.py", f"reference_{f}")
        for f in ("video", "text", "audio")
    }
    cross: dict[str, torch.nn.Module] = {}
    seed = 2000
    for m, ((ec, ek), (pc, pk), ck) in VIDEO.items():
        v = mods["video"]
        emo = _seeded(seed, getattr(v, ec), **ek)
        per = _seeded(seed + 1, getattr(v, pc), **pk)
        cross[m] = _seeded(seed + 2, v.FusionTransformer, emo, per, **ck)
        seed += 10
    (ec, ek), (pc, pk), ck = TEXT
    t = mods["text"]
    emo = _seeded(seed, getattr(t, ec), **ek)
    per = _seeded(seed + 1, getattr(t, pc), **pk)
    cross["text"] = _seeded(seed + 2, t.FusionTransformer, emo, per, **ck)
    seed += 10
    (ec, ek), (pc, pk), cfg = AUDIO
    a = mods["audio"]
    aemo = _seeded(seed, getattr(a, ec), **ek)
    aper = _seeded(seed + 1, getattr(a, pc), **pk)
    for enc in (aemo, aper):  # as their audio loader does
        enc.output_dim = enc.input_proj.out_features
        enc.extract_features = lambda x, _lengths, enc=enc: _audio_steps(enc, x)
    cross["audio"] = _seeded(seed + 2, a.FusionTransformer, aemo, aper, cfg)
    fusion_mod = _import(ref, "core/models/models.py", "reference_fusion")
    widths = {m: 2 * _bridge_width(cross[m]) for m in APP_ORDER}
    cls = _with_widths(fusion_mod.MultiModalFusionModelWithAblation, widths)
    fusion = _seeded(seed + 10, cls, **FUSION)
    return cross, fusion


def _bridge_width(model) -> int:
    return int(model.emo_proj[0].out_features)


def _inputs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per modality: embedding sequences (videos, max steps, width), zero past each length."""
    gen = torch.Generator().manual_seed(77)
    out = {}
    for m in APP_ORDER:
        family = "audio" if m == "audio" else "text" if m == "text" else "video"
        lengths = torch.tensor(LENGTHS[m])
        x = torch.randn(N_VIDEOS, int(lengths.max()), IN[family], generator=gen)
        x[torch.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0.0
        out[m] = (x, lengths)
    return out


def _stage2(model, m: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One video through one stage-2 model, as the app's feature extractors call it."""
    if m == "audio":
        n = torch.tensor([x.shape[1]])  # the app's lengths: every step of the one clip
        out = model(emo_input=(x, n), per_input=(x, n), return_features=True)
    else:
        out = model(emotion_input=x, personality_input=x, return_features=True)
    return {
        "features": torch.cat(
            (out["last_emo_encoder_features"].mean(dim=1), out["last_per_encoder_features"].mean(dim=1)),
            dim=1,
        ),
        "emotion_logits": out["emotion_logits"],
        "personality_scores": out["personality_scores"],
    }  # fmt: skip


def _logit_if_probability(t: torch.Tensor) -> torch.Tensor:
    """The app's last step before its fusion: scores that all lie in [0, 1] are taken for
    probabilities and replaced by their logits (clamped 1e-4 away from 0 and 1)."""
    if float(t.min()) >= 0.0 and float(t.max()) <= 1.0:
        return torch.logit(t.clamp(1e-4, 1 - 1e-4))
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, type=Path, help="a copy of their app branch")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    cross, fusion = _build(args.reference)
    inputs = _inputs()
    tensors: dict[str, torch.Tensor] = {}
    rows: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for i in range(N_VIDEOS):
            per_mod = {
                m: _stage2(cross[m], m, inputs[m][0][i : i + 1, : int(inputs[m][1][i])])
                for m in APP_ORDER
            }
            for path, transform in (("app", _logit_if_probability), ("direct", lambda t: t)):
                batch = {
                    "features": {m: per_mod[m]["features"] for m in APP_ORDER},
                    "emotion_logits": {m: per_mod[m]["emotion_logits"] for m in APP_ORDER},
                    "personality_scores": {
                        m: transform(per_mod[m]["personality_scores"]) for m in APP_ORDER
                    },
                }
                out = fusion(batch)
                for key in ("emotion_logits", "personality_scores"):
                    rows.setdefault(f"output/{path}/{key}", []).append(out[key])
                for m in APP_ORDER:
                    rows.setdefault(f"fusion_input/{path}/personality_scores/{m}", []).append(
                        batch["personality_scores"][m]
                    )
            for m in APP_ORDER:
                for key, value in per_mod[m].items():
                    rows.setdefault(f"stage2/{m}/{key}", []).append(value)
    tensors.update({k: torch.cat(v).contiguous() for k, v in rows.items()})
    for m in APP_ORDER:
        tensors[f"input/{m}/x"], tensors[f"input/{m}/lengths"] = inputs[m]
    for name, model in (*cross.items(), ("fusion", fusion)):
        for k, v in model.state_dict().items():
            if k.endswith("positional_encoding.pe"):
                v = v[:PE_ROWS]
            tensors[f"state/{name}/{k}"] = v.detach().clone().contiguous()
    OUT.mkdir(parents=True, exist_ok=True)
    # one metadata key only: safetensors writes several in hash order, not reproducibly
    save_file(tensors, str(OUT / "system.safetensors"), metadata={"commit": APP_COMMIT})
    record = {
        "commit": APP_COMMIT,
        "video": {m: {"emotion": e, "personality": p, "cross": c}
                  for m, (e, p, c) in VIDEO.items()},
        "text": {"emotion": TEXT[0], "personality": TEXT[1], "cross": TEXT[2]},
        "audio": {"emotion": AUDIO[0], "personality": AUDIO[1], "config": AUDIO[2]},
        "fusion": {"class": "MultiModalFusionModelWithAblation", "constructor": FUSION,
                   "modality_widths": {m: 2 * _bridge_width(cross[m]) for m in APP_ORDER}},
        "lengths": LENGTHS,
        "pe_rows": PE_ROWS,
    }  # fmt: skip
    (OUT / "system.json").write_text(json.dumps(record, indent=1) + "\n")
    size = (OUT / "system.safetensors").stat().st_size
    print(f"wrote {len(tensors)} tensors to {OUT} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
