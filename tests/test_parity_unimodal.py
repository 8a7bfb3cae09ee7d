"""mepr's stage-1/2 models reproduce the authors' (SSL-MEPR, app branch) outputs.

Each case in tests/data/parity/unimodal/ holds one of their models (fixed-seed random weights),
its inputs and its outputs, computed by their code (make_unimodal.py; README.md there).  Here
the weights go through mepr.reference.unimodal into mepr models, which must give the same
encoder features and predictions within 1e-5 in eval mode; the mapping must also refuse
state dicts that do not fit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mepr.reference import ReferenceMappingError
from mepr.reference.unimodal import (
    ReferenceCrossArgs,
    ReferenceUnimodalArgs,
    load_reference_cross,
    load_reference_unimodal,
    map_reference_unimodal,
)

DATA = Path(__file__).parent / "data" / "parity" / "unimodal"
STAGE1 = sorted(p.stem for p in DATA.glob("*.json") if "cross" not in p.stem)
STAGE2 = sorted(p.stem for p in DATA.glob("*.json") if "cross" in p.stem)
TOL = {"atol": 1e-5, "rtol": 0.0}


def _case(name: str):
    meta = json.loads((DATA / f"{name}.json").read_text())
    tensors = load_file(str(DATA / f"{name}.safetensors"))
    parts: dict[str, dict[str, torch.Tensor]] = {"state": {}, "input": {}, "output": {}}
    for key, value in tensors.items():
        kind, rest = key.split(".", 1)
        parts[kind][rest] = value
    return meta, parts["state"], parts["input"], parts["output"]


def _args(meta: dict) -> ReferenceUnimodalArgs:
    return ReferenceUnimodalArgs.from_kwargs(meta["family"], meta["model"], meta["kwargs"])


def _mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.arange(steps)[None, :] < lengths[:, None]


def _mean(seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Their pooling: the mean of the first `length` steps (zeros without any)."""
    rows = [seq[i, :n].mean(0) if n > 0 else seq.new_zeros(seq.shape[-1]) for i, n in
            enumerate(lengths.tolist())]  # fmt: skip
    return torch.stack(rows)


def test_every_kind_has_a_case():
    assert len(STAGE1) == 9 and len(STAGE2) == 4
    kinds = {(m["family"], m["model"]) for m in (_case(n)[0] for n in STAGE1)}
    assert kinds == {
        ("video", "EmotionMamba"),
        ("video", "EmotionTransformer"),
        ("video", "PersonalityMamba"),
        ("text", "EmotionMamba"),
        ("text", "PersonalityTransformer"),
        ("audio", "CustomMambaClassifier"),
        ("audio", "CustomMambaRegressor"),
    }


@pytest.mark.parametrize("name", STAGE1)
def test_stage1_matches_theirs(name):
    meta, state, inputs, theirs = _case(name)
    model = load_reference_unimodal(_args(meta), state)
    x, lengths = inputs["x"], inputs["lengths"]
    mask = _mask(lengths, x.shape[1])
    with torch.no_grad():
        ours = model(x, mask)
    valid = mask.unsqueeze(-1).expand_as(ours["sequence"])
    torch.testing.assert_close(ours["sequence"][valid], theirs["sequence"][valid], **TOL)
    torch.testing.assert_close(ours["features"], _mean(theirs["sequence"], lengths), **TOL)
    torch.testing.assert_close(ours["output"], theirs["output"], **TOL)
    cfg = model.cfg
    assert cfg.in_dim == x.shape[-1] and cfg.task == _args(meta).task
    if meta["family"] == "audio":
        assert (cfg.projection, cfg.head) == ("linear", "linear")
        assert cfg.task == "emotion" or cfg.personality_activation == "none"
    if meta["kwargs"].get("per_activation") == "relu":
        assert cfg.personality_activation == "relu" and bool((ours["output"] == 0).any())


@pytest.mark.parametrize("name", STAGE2)
def test_stage2_matches_theirs(name):
    meta, state, inputs, theirs = _case(name)
    fam = meta["family"]
    sides = [
        ReferenceUnimodalArgs.from_kwargs(fam, meta[t]["model"], meta[t]["kwargs"])
        for t in ("emotion", "personality")
    ]
    model = load_reference_cross(ReferenceCrossArgs.from_kwargs(*sides, meta["kwargs"]), state)
    x = inputs["x"]
    mask = torch.ones(x.shape[:2], dtype=torch.bool)  # their bridges attend to every step
    with torch.no_grad():
        ours = model(x, mask)
    for key in ("emotion_logits", "personality_scores"):
        torch.testing.assert_close(ours[key], theirs[key], **TOL)
    for task in ("emotion", "personality"):
        want = theirs[f"{task}_sequence"].mean(1)
        torch.testing.assert_close(ours[f"{task}_features"], want, **TOL)
    # the bridge reads the stage-1 widths from their tensors, not from a constant
    assert model.emo_proj[0].in_features == model.emotion_base.cfg.hidden_dim
    assert model.per_proj[0].in_features == model.personality_base.cfg.hidden_dim
    block = {"audio": "mha"}.get(fam, "postnorm")
    assert model.cfg.block == block
    assert model.cfg.head_activation == ("gelu" if fam == "video" else "silu")


def test_the_mapping_names_what_does_not_fit():
    meta, state, _, _ = _case("video_emotion_gated")
    args = _args(meta)
    extra = {**state, "emotion_encoder.0.s_D.weight": torch.zeros(8, 8)}
    with pytest.raises(ReferenceMappingError, match="'emotion_encoder.0.s_D.weight' matches no"):
        map_reference_unimodal(args, extra)
    missing = {k: v for k, v in state.items() if k != "emotion_encoder.1.s_C.bias"}
    with pytest.raises(ReferenceMappingError, match="'encoder.layers.1.gate_c.bias' is filled"):
        map_reference_unimodal(args, missing)
    bad = dict(state)
    bad["emotion_fc_out.1.weight"] = torch.ones(7)
    with pytest.raises(ReferenceMappingError, match="'emotion_fc_out.1.weight' is \\[7\\]"):
        map_reference_unimodal(args, bad)


def test_their_position_encoding_is_checked():
    meta, state, _, _ = _case("video_emotion_transformer_pe")
    key = "emotion_encoder.1.positional_encoding.pe"
    cfg, mapped = map_reference_unimodal(_args(meta), state)
    assert cfg.positional and not any("positional" in k or k.endswith(".pe") for k in mapped)
    bad = {**state, key: state[key] + 0.01}
    with pytest.raises(ReferenceMappingError, match=f"'{key}' is not the sinusoidal"):
        map_reference_unimodal(_args(meta), bad)
    without = {k: v for k, v in state.items() if k != key}  # one layer with, one without
    with pytest.raises(ReferenceMappingError, match="only some"):
        map_reference_unimodal(_args(meta), without)


def test_their_arguments_are_checked():
    with pytest.raises(ReferenceMappingError, match="not a stage-1 model of their audio"):
        ReferenceUnimodalArgs.from_kwargs("audio", "EmotionMamba", {})
    with pytest.raises(ReferenceMappingError, match="mepr predicts 7"):
        ReferenceUnimodalArgs.from_kwargs("video", "EmotionMamba", {"num_emotions": 6})
    with pytest.raises(ReferenceMappingError, match="per_activation 'tanh'"):
        ReferenceUnimodalArgs.from_kwargs("video", "PersonalityMamba", {"per_activation": "tanh"})


@pytest.mark.parametrize("name", ["video_cross_relu", "audio_cross"])
def test_mapped_models_survive_a_checkpoint_round_trip(name, tmp_path):
    """What `mepr import-reference` will write: a stage-2 folder that reloads to their outputs."""
    from mepr.models.checkpoints import load_model, save_model

    meta, state, inputs, theirs = _case(name)
    sides = [
        ReferenceUnimodalArgs.from_kwargs(meta["family"], meta[t]["model"], meta[t]["kwargs"])
        for t in ("emotion", "personality")
    ]
    model = load_reference_cross(ReferenceCrossArgs.from_kwargs(*sides, meta["kwargs"]), state)
    cfg = {
        "stage": "cross",
        "modality": meta["family"],
        "model": {
            "emotion": model.emotion_base.cfg.to_dict(),
            "personality": model.personality_base.cfg.to_dict(),
            "cross": model.cfg.to_dict(),
        },
    }
    save_model(model, tmp_path / "cross", cfg)
    loaded, _ = load_model(tmp_path / "cross", "cross")
    x = inputs["x"]
    with torch.no_grad():
        out = loaded(x, torch.ones(x.shape[:2], dtype=torch.bool))
    torch.testing.assert_close(out["personality_scores"], theirs["personality_scores"], **TOL)
    torch.testing.assert_close(out["emotion_logits"], theirs["emotion_logits"], **TOL)
