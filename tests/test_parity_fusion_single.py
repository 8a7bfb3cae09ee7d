"""mepr's SingleTaskFusionModel computes the authors' single-task fusion, proven on their
stored numbers.

tests/data/parity/fusion_single/ holds, per case, the state dict of their
``SingleTaskAsymModel`` (fixed-seed random weights) for each ``single_task_id`` of their
trainer, fixed full inputs and the output their code gave (see that folder's README).  Each
case is loaded through mepr.reference.fusion_single into mepr's model, which must reproduce
the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mepr.reference.fusion import reference_inputs
from mepr.reference.fusion_single import (
    ReferenceMappingError,
    ReferenceSingleTaskArgs,
    load_reference_fusion_single,
    map_reference_fusion_single,
)

DATA = Path(__file__).parent / "data" / "parity" / "fusion_single"
CASES = sorted(p.stem for p in DATA.glob("*.safetensors"))
TOL = 1e-5
KEYS = {"emo": "emotion_logits", "pkl": "personality_scores"}


def _case(name: str):
    """(record, their state dict, their batch, their output tensor) of one stored case."""
    record = json.loads((DATA / f"{name}.json").read_text())
    tensors = load_file(DATA / f"{name}.safetensors")

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    mods = record["emotion_widths"]
    batch = {
        key: {m: part(f"input/{key}/")[m] for m in mods}
        for key in ("features", "emotion_logits", "personality_scores")
    }
    (out,) = part("output/").items()
    assert out[0] == KEYS[record["constructor"]["target"]]  # their other output is None
    return record, part("state/"), batch, out[1]


def _args(record: dict) -> ReferenceSingleTaskArgs:
    return ReferenceSingleTaskArgs.from_kwargs(
        record["constructor"], record["emotion_widths"], record["personality_widths"]
    )


def _run(model, batch) -> torch.Tensor:
    x = reference_inputs(batch, model.cfg)
    with torch.no_grad():
        (out,) = model(x.features, x.logits, x.scores, x.present).values()
    return out


def test_cases_cover_every_single_task_id():
    records = [json.loads((DATA / f"{n}.json").read_text()) for n in CASES]
    assert {r["single_task_id"] for r in records} == {0, 1, 2, 3}
    assert {r["commit"] for r in records} == {"97b2ec243b2856f75a206517cc4ecec83f434569"}
    # asymmetric widths, so a split at the middle instead of the emotion width would show
    r = records[0]
    assert any(r["emotion_widths"][m] != r["personality_widths"][m] for m in r["emotion_widths"])


@pytest.mark.parametrize("name", CASES)
def test_mepr_reproduces_their_outputs(name):
    record, state, batch, want = _case(name)
    model = load_reference_fusion_single(state, _args(record))
    out = _run(model, batch)
    assert tuple(out.shape) == tuple(want.shape)
    assert float((out - want).abs().max()) <= TOL


@pytest.mark.parametrize("name", CASES)
def test_config_is_derived_from_their_model(name):
    record, state, _, _ = _case(name)
    kwargs = record["constructor"]
    cfg = map_reference_fusion_single(state, _args(record)).config
    assert cfg.task == {"emo": "emotion", "pkl": "personality"}[kwargs["target"]]
    assert cfg.feature_slice == ("both" if kwargs["feature_slice"] == "both" else "own")
    emo, per = record["emotion_widths"], record["personality_widths"]
    assert dict(zip(cfg.modalities, cfg.emotion_dims, strict=True)) == emo
    assert dict(zip(cfg.modalities, cfg.input_dims, strict=True)) == {
        m: emo[m] + per[m] for m in emo
    }
    own = emo if kwargs["target"] == "emo" else per
    want = {m: own[m] if kwargs["feature_slice"] != "both" else emo[m] + per[m] for m in emo}
    assert dict(zip(cfg.modalities, cfg.projector_dims(), strict=True)) == want
    assert (cfg.hidden_dim, cfg.heads, cfg.dropout) == (
        kwargs["hidden_dim"],
        kwargs["num_heads"],
        kwargs["dropout"],
    )


@pytest.mark.parametrize("name", ["id1_emo_emo", "id3_pkl_pkl"])
def test_own_slice_reads_its_own_part_only(name):
    """With feature_slice own, the other task's columns do not matter and the own ones do."""
    record, state, batch, want = _case(name)
    model = load_reference_fusion_single(state, _args(record))
    cfg = model.cfg
    other, own = {}, {}
    for i, m in enumerate(cfg.modalities):
        x = batch["features"][m]
        keep = torch.zeros(x.shape[1], dtype=torch.bool)
        keep[cfg.slice_of(i)] = True
        other[m] = torch.where(keep, x, x + 5.0)
        own[m] = torch.where(keep, x + 5.0, x)
    assert float((_run(model, {**batch, "features": other}) - want).abs().max()) <= TOL
    assert float((_run(model, {**batch, "features": own}) - want).abs().max()) > 1000 * TOL


def test_a_wrong_mapping_would_be_caught():
    """Swapping the graph-attention halves misses their outputs by far more than the
    tolerance, so the parity test has teeth."""
    record, state, batch, want = _case("id0_both_emo")
    args = _args(record)
    assert float((_run(load_reference_fusion_single(state, args), batch) - want).abs().max()) <= TOL
    a = state["gat.a"]
    slip = dict(state, **{"gat.a": torch.cat([a[len(a) // 2 :], a[: len(a) // 2]])})
    wrong = _run(load_reference_fusion_single(slip, args), batch)
    assert float((wrong - want).abs().max()) > 1000 * TOL


# --------------------------------------------------------------------------- strictness
@pytest.fixture
def emo():
    record, state, _, _ = _case("id0_both_emo")
    return _args(record), state


def test_unknown_tensor_is_named(emo):
    args, state = emo
    with pytest.raises(ReferenceMappingError, match="'emo_head.weight'"):
        map_reference_fusion_single({**state, "emo_head.weight": torch.zeros(1, 2)}, args)


def test_missing_tensor_is_named(emo):
    args, state = emo
    state = {k: v for k, v in state.items() if k != "projectors.face.1.layernorm.bias"}
    with pytest.raises(ReferenceMappingError, match="'projectors.face.norm.bias'"):
        map_reference_fusion_single(state, args)


def test_shape_mismatch_is_named(emo):
    args, state = emo
    with pytest.raises(ReferenceMappingError, match=r"'head.bias' is \(7,\)"):
        map_reference_fusion_single(dict(state, **{"head.bias": torch.zeros(6)}), args)
    # widths that do not fit their projectors
    wrong = ReferenceSingleTaskArgs(
        target="emo",
        feature_slice="both",
        num_heads=4,
        dropout=0.1,
        emotion_widths={**args.emotion_widths, "face": 3},
        personality_widths=args.personality_widths,
    )
    with pytest.raises(ReferenceMappingError, match="'projectors.face.proj.0.weight'"):
        map_reference_fusion_single(state, wrong)


def test_a_guide_bank_on_a_personality_model_is_refused():
    record, state, _, _ = _case("id2_both_pkl")
    extra = dict(state, **{"guide.embeddings": torch.zeros(5, 16)})
    with pytest.raises(ReferenceMappingError, match="fill 'guide'"):
        map_reference_fusion_single(extra, _args(record))


def test_bad_constructor_arguments_are_refused(emo):
    args, state = emo
    widths = (args.emotion_widths, args.personality_widths)
    with pytest.raises(ReferenceMappingError, match="unknown constructor arguments"):
        ReferenceSingleTaskArgs.from_kwargs({"target": "emo", "ablation_config": {}}, *widths)
    with pytest.raises(ReferenceMappingError, match="needs 'target'"):
        ReferenceSingleTaskArgs.from_kwargs({"num_heads": 4}, *widths)
    with pytest.raises(ReferenceMappingError, match="pkl_out_dim=4"):
        ReferenceSingleTaskArgs.from_kwargs({"target": "pkl", "pkl_out_dim": 4}, *widths)
    with pytest.raises(ReferenceMappingError, match="hidden_dim=512"):
        map_reference_fusion_single(
            state, ReferenceSingleTaskArgs.from_kwargs({"target": "emo", "num_heads": 4}, *widths)
        )
    crossed = ReferenceSingleTaskArgs.from_kwargs(
        {"target": "emo", "feature_slice": "pkl", "hidden_dim": 16, "num_heads": 4}, *widths
    )
    with pytest.raises(ReferenceMappingError, match="feature_slice 'pkl' with target 'emo'"):
        map_reference_fusion_single(state, crossed)
    with pytest.raises(ReferenceMappingError, match=r"no emotion/personality widths .*'text'"):
        map_reference_fusion_single(
            state,
            ReferenceSingleTaskArgs(
                target="emo",
                feature_slice="both",
                num_heads=4,
                dropout=0.1,
                emotion_widths={k: v for k, v in args.emotion_widths.items() if k != "text"},
                personality_widths=args.personality_widths,
            ),
        )
