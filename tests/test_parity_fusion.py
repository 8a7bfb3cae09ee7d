"""mepr's FusionModel computes the authors' multi-task fusion, proven on their stored numbers.

tests/data/parity/fusion/ holds, per case, the state dict of their
``MultiModalFusionModelWithAblation`` (fixed-seed random weights), fixed inputs and the
outputs their code gave (see that folder's README).  Each case is loaded through
mepr.reference.fusion into mepr's model, which must reproduce the outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mepr.reference.fusion import (
    ReferenceFusionArgs,
    ReferenceMappingError,
    load_reference_fusion,
    map_reference_fusion,
    reference_inputs,
)

DATA = Path(__file__).parent / "data" / "parity" / "fusion"
CASES = sorted(p.stem for p in DATA.glob("*.safetensors"))
TOL = 1e-5
OUTPUTS = ("emotion_logits", "personality_scores")


def _case(name: str) -> tuple[dict, dict[str, torch.Tensor], dict, dict[str, torch.Tensor]]:
    """(record, their state dict, their batch, their outputs) of one stored case."""
    record = json.loads((DATA / f"{name}.json").read_text())
    tensors = load_file(DATA / f"{name}.safetensors")

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    widths = record["modality_widths"]
    batch = {
        key: {m: part(f"input/{key}/").get(m) for m in widths}
        for key in ("features", "emotion_logits", "personality_scores")
    }
    return record, part("state/"), batch, part("output/")


def _run(model, batch) -> dict[str, torch.Tensor]:
    x = reference_inputs(batch, model.cfg)
    with torch.no_grad():
        return model(x.features, x.logits, x.scores, x.present)


def _max_diff(out: dict, want: dict) -> float:
    return max(float((out[k] - want[k]).abs().max()) for k in OUTPUTS)


def test_cases_cover_every_ablation_and_missing_modalities():
    """The stored data exercises each switch of theirs, each modality left out, and gaps."""
    assert len(CASES) >= 20, CASES
    records = [json.loads((DATA / f"{n}.json").read_text()) for n in CASES]
    ablations = [r["constructor"]["ablation_config"] for r in records]
    switches = {k for a in ablations for k, v in a.items() if v is True}
    assert switches == {
        "disable_graph_attn",
        "disable_cross_attn",
        "disable_emo_logit_proj",
        "disable_pkl_logit_proj",
        "disable_guide_bank",
        "disable_guide_emo",
        "disable_guide_pkl",
    }
    left_out = {
        m for a in ablations if len(a["disabled_modalities"]) == 1 for m in a["disabled_modalities"]
    }
    assert left_out == set(records[0]["modality_widths"])
    assert sum(bool(r["missing_in_batch"]) for r in records) >= 5
    assert {r["commit"] for r in records} == {"97b2ec243b2856f75a206517cc4ecec83f434569"}


@pytest.mark.parametrize("name", CASES)
def test_mepr_reproduces_their_outputs(name):
    record, state, batch, want = _case(name)
    model = load_reference_fusion(state, ReferenceFusionArgs.from_kwargs(record["constructor"]))
    out = _run(model, batch)
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: tuple(want[k].shape) for k in OUTPUTS}
    assert _max_diff(out, want) <= TOL


@pytest.mark.parametrize("name", CASES)
def test_config_is_derived_from_their_model(name):
    record, state, _, _ = _case(name)
    kwargs = record["constructor"]
    ablation = kwargs["ablation_config"]
    cfg = map_reference_fusion(state, ReferenceFusionArgs.from_kwargs(kwargs)).config
    kept = {
        m: d
        for m, d in record["modality_widths"].items()
        if m not in ablation["disabled_modalities"]
    }
    assert dict(zip(cfg.modalities, cfg.input_dims, strict=True)) == kept
    # Node order is the state dict's (safetensors sorts names); outputs do not depend on it.
    assert list(cfg.modalities) == sorted(kept)
    assert (cfg.hidden_dim, cfg.heads, cfg.dropout) == (
        kwargs["hidden_dim"],
        kwargs["num_heads"],
        kwargs["dropout"],
    )
    off = {k for k, v in ablation.items() if v is True}
    bank = "disable_guide_bank" not in off
    assert cfg.graph_attention == ("disable_graph_attn" not in off)
    assert cfg.cross_attention == ("disable_cross_attn" not in off)
    assert cfg.predict_projection_emotion == ("disable_emo_logit_proj" not in off)
    assert cfg.predict_projection_personality == ("disable_pkl_logit_proj" not in off)
    assert cfg.guide_emotion == (bank and "disable_guide_emo" not in off)
    assert cfg.guide_personality == (bank and "disable_guide_pkl" not in off)


def test_released_app_arguments_leave_the_personality_guide_unused():
    record, state, _, _ = _case("app")
    mapped = map_reference_fusion(state, ReferenceFusionArgs.from_kwargs(record["constructor"]))
    assert mapped.unused == ("guide_bank_pkl.embeddings",)
    assert mapped.config.guide_emotion and not mapped.config.guide_personality


def test_a_wrong_mapping_would_be_caught():
    """Plausible mapping slips (task queries swapped, graph-attention halves swapped) miss
    their outputs by far more than the tolerance, so the parity test has teeth.  The
    queries are checked without graph attention: with it, all-to-all averaging makes the
    nodes so alike that the query barely moves the attention output (~4e-4)."""
    for name, slip in (
        ("no_graph_attn", lambda s: dict(s, emo_query=s["pkl_query"], pkl_query=s["emo_query"])),
        ("full", lambda s: dict(s, **{"graph_attn.a": s["graph_attn.a"].roll(16, 0)})),
    ):
        record, state, batch, want = _case(name)
        args = ReferenceFusionArgs.from_kwargs(record["constructor"])
        assert _max_diff(_run(load_reference_fusion(state, args), batch), want) <= TOL
        wrong = load_reference_fusion(slip(state), args)
        assert _max_diff(_run(wrong, batch), want) > 1000 * TOL


# --------------------------------------------------------------------------- strictness
@pytest.fixture
def full():
    record, state, _, _ = _case("full")
    return ReferenceFusionArgs.from_kwargs(record["constructor"]), state


def test_unknown_tensor_is_named(full):
    args, state = full
    with pytest.raises(ReferenceMappingError, match="'emo_fusion.weight'"):
        map_reference_fusion({**state, "emo_fusion.weight": torch.zeros(1, 2)}, args)


def test_missing_tensor_is_named(full):
    args, state = full
    state = {k: v for k, v in state.items() if k != "projectors.face.1.layernorm.bias"}
    with pytest.raises(ReferenceMappingError, match="'projectors.face.norm.bias'"):
        map_reference_fusion(state, args)


def test_shape_mismatch_is_named(full):
    args, state = full
    bad = dict(state, **{"pkl_head.bias": torch.zeros(4)})
    with pytest.raises(ReferenceMappingError, match=r"'personality_head.bias' is \(5,\)"):
        map_reference_fusion(bad, args)


def test_switch_contradicting_the_tensors_is_refused(full):
    args, state = full
    with pytest.raises(ReferenceMappingError, match="'graph_attn.W.weight' is present"):
        map_reference_fusion(
            state, ReferenceFusionArgs(num_heads=4, dropout=0.1, disable_graph_attn=True)
        )
    no_cross = {k: v for k, v in state.items() if not k.startswith("cross_attn.")}
    with pytest.raises(ReferenceMappingError, match="'cross_attn.in_proj_weight' is missing"):
        map_reference_fusion(no_cross, args)


def test_bad_constructor_arguments_are_refused(full):
    _, state = full
    with pytest.raises(ReferenceMappingError, match="unknown ablation_config keys"):
        ReferenceFusionArgs.from_kwargs({"ablation_config": {"disable_everything": True}})
    with pytest.raises(ReferenceMappingError, match="emo_out_dim=6"):
        ReferenceFusionArgs.from_kwargs({"emo_out_dim": 6})
    with pytest.raises(ReferenceMappingError, match="hidden_dim=512"):
        map_reference_fusion(state, ReferenceFusionArgs.from_kwargs({"num_heads": 4}))
    with pytest.raises(ReferenceMappingError, match="no projector"):
        map_reference_fusion(
            state, ReferenceFusionArgs(num_heads=4, dropout=0.1, disabled_modalities=("eeg",))
        )
