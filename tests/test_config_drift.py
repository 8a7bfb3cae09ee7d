"""The schema is the one source of defaults and allowed values: the typed sections, the model
configs and config.yaml are checked against it here, so any drift fails."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from mepr.config import (
    REPO_ROOT,
    AblationParams,
    AsrParams,
    AudioParams,
    ConfigError,
    DemoParams,
    DetectParams,
    EncoderParams,
    FramesParams,
    SweepParams,
    TrainParams,
    parse,
    pick,
    section_defaults,
    subschema,
    validate_config,
)
from mepr.config.schema import schema
from mepr.models.fusion import FusionConfig
from mepr.models.fusion_single import SingleTaskFusionConfig
from mepr.models.unimodal import CrossConfig, UnimodalConfig

SECTIONS = [
    FramesParams, DetectParams, AudioParams, AsrParams, DemoParams, TrainParams, AblationParams
]  # fmt: skip


def _plain(value):
    """A dataclass instance as the JSON values the schema holds (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(value)))


def _compare(ours: dict, schema_filled: dict, sub: dict, where: str) -> list[str]:
    drift = []
    props = sub.get("properties", {})
    if set(ours) != set(props):
        drift.append(f"{where}: fields {sorted(ours)} vs schema keys {sorted(props)}")
    for name in sorted(set(ours) & set(props)):
        mine, theirs = ours[name], schema_filled.get(name)
        if isinstance(mine, dict) and props[name].get("type") == "object":
            nested = props[name]
            drift += _compare(mine, theirs or {}, nested, f"{where}.{name}")
        elif mine != theirs:
            drift.append(f"{where}.{name}: dataclass default {mine!r}, schema {theirs!r}")
    return drift


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_section_defaults_are_the_schemas(cls):
    drift = _compare(
        _plain(cls()), section_defaults(cls.SECTION), subschema(cls.SECTION), ".".join(cls.SECTION)
    )
    assert not drift, "\n".join(drift)


def test_sweep_params_are_the_schemas_sweep():
    # a sweeps.NAME entry: its schema is $defs/sweep (NAME is the user's)
    sub = schema()["$defs"]["sweep"]
    defaults = {k: v["default"] for k, v in sub["properties"].items() if "default" in v}
    fields = {f.name: f.default for f in dataclasses.fields(SweepParams)}
    assert set(fields) == set(sub["properties"]) and sub["required"] == ["grid"]
    assert fields == {"grid": dataclasses.MISSING, **defaults}


def test_encoder_params_match_every_encoder_schema():
    fields = {f.name: f for f in dataclasses.fields(EncoderParams)}
    shared = subschema(("encoders",))["properties"]
    keys = {k for k in shared if k not in EncoderParams.MODALITIES}
    for modality in EncoderParams.MODALITIES:
        sub = subschema(("encoders", modality))
        keys |= set(sub["properties"])
        kind = sub["properties"]["kind"]["const"]
        filled = section_defaults(("encoders", modality), kind=kind, model="m")
        for name, value in filled.items():
            if name not in ("kind", "model"):
                assert fields[name].default == value, f"encoders.{modality}.{name}"
    assert keys == set(fields)
    for name in keys - set(EncoderParams.MODALITIES):
        if name in shared and "default" in shared[name]:
            assert fields[name].default == shared[name]["default"], f"encoders.{name}"
    required = {n for n, f in fields.items() if f.default is dataclasses.MISSING}
    assert required == {"kind", "model"}


@pytest.mark.parametrize("cls", [UnimodalConfig, CrossConfig, FusionConfig, SingleTaskFusionConfig])
def test_model_configs_declare_no_defaults_and_come_from_the_train_section(cls):
    # a default here would be one more place a hyper-parameter is declared; the only ones are
    # the fields added after checkpoints were first written (COMPAT), so that older
    # config.json files still build, and those must be the train section's defaults
    compat = set(getattr(cls, "COMPAT", ()))
    defaulted = {f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    assert defaulted == compat
    train = TrainParams()
    sources = {
        UnimodalConfig: (train, train.mamba),
        CrossConfig: (train.cross, train),
        FusionConfig: (train.fusion, train),
        # train.fusion_single's sizes are null by default: train.fusion's apply
        SingleTaskFusionConfig: (train.fusion, train),
    }[cls]
    given = {
        UnimodalConfig: {"in_dim": 8, "task": "emotion", "encoder": "mamba"},
        CrossConfig: {},
        FusionConfig: {"modalities": ("face",), "input_dims": (8,)},
        SingleTaskFusionConfig: {
            "task": "emotion",
            "modalities": ("face",),
            "input_dims": (8,),
            "emotion_dims": (4,),
            "feature_slice": "both",
        },
    }[cls]
    cfg = pick(cls, *sources, **given)
    for f in dataclasses.fields(cls):
        if f.name not in given:
            source = next(s for s in sources if hasattr(s, f.name))
            assert getattr(cfg, f.name) == getattr(source, f.name)
            if f.name in compat:
                assert f.default == getattr(source, f.name), f"{cls.__name__}.{f.name}"


def test_pick_names_a_field_nobody_gives():
    with pytest.raises(TypeError, match="UnimodalConfig.in_dim"):
        pick(UnimodalConfig, TrainParams(), task="emotion", encoder="mamba")


# config.yaml repeats the defaults so a reader sees every knob; it may differ from them only
# where the demo makes its own choice (these keys), so it can never drift silently.
DEMO_CHOICES = {("demo", "clips"), ("demo", "transcripts_for")}
USER_SET = {"corpora", "encoders", "predict.videos", "sweeps"}


def test_config_yaml_repeats_the_schema_defaults():
    raw = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    filled = validate_config({"corpora": raw["corpora"], "encoders": raw["encoders"]})
    drift = []

    def walk(mine, theirs, path):
        if ".".join(path) in USER_SET:
            return
        if isinstance(mine, dict):
            for key, value in mine.items():
                walk(value, (theirs or {}).get(key), (*path, key))
        elif mine != theirs and path not in DEMO_CHOICES:
            drift.append(f"{'.'.join(path)}: config.yaml {mine!r}, schema default {theirs!r}")

    walk(raw, filled, ())
    assert not drift, "\n".join(drift)


def test_parse_is_strict_and_uses_the_schema():
    assert parse(FramesParams, {"n_frames": 3}) == FramesParams(n_frames=3)
    assert parse(TrainParams, {}) == TrainParams()
    with pytest.raises(ConfigError, match="unknown key 'frames.nframes'"):
        parse(FramesParams, {"nframes": 3})
    with pytest.raises(ConfigError, match="bad value for 'train.selection'"):
        parse(TrainParams, {"selection": "best"})
    with pytest.raises(ConfigError, match="unknown key 'encoders.pooling_kind'"):
        parse(EncoderParams, {"kind": "hf_text", "model": "m", "pooling_kind": "cls"})
    # a stage-1/2 job receives its modality's encoder name alone
    assert parse(TrainParams, {"encoder": "transformer"}).encoder_for("face") == "transformer"


def test_encoder_entries_may_name_one_encoder_per_task():
    per_task = {"emotion": "postnorm_transformer", "personality": "gated_mlp"}
    p = parse(TrainParams, {"encoder": {"scene": per_task}})
    assert p.encoder == {**TrainParams().encoder, "scene": per_task}  # the rest: defaults
    assert p.encoder_for("scene", "emotion") == "postnorm_transformer"
    assert p.encoder_for("scene", "personality") == "gated_mlp"
    assert p.encoder_for("face", "emotion") == "mamba"
    with pytest.raises(ValueError, match="per task"):
        p.encoder_for("scene")
    # ... and a stage-1/2 job receives that entry alone
    assert parse(TrainParams, {"encoder": per_task}).encoder_for("scene", "emotion") == (
        "postnorm_transformer"
    )
    with pytest.raises(ConfigError, match="train.encoder"):
        parse(TrainParams, {"encoder": {"scene": {"emotion": "gated_mlp"}}})  # both tasks


def test_per_modality_overrides_default_to_the_train_values():
    p = parse(
        TrainParams,
        {
            "unimodal": {"face": {"emotion": {"hidden_dim": 1024, "block_width": 16}}},
            "cross": {"face": {"hidden_dim": 512, "block": "postnorm"}},
        },
    )
    assert p.unimodal.given("face", "emotion") == {"hidden_dim": 1024, "block_width": 16}
    assert p.unimodal.given("face", "personality") == {} and p.cross.given("body") == {}
    assert p.cross.given("face") == {"hidden_dim": 512, "block": "postnorm"}
    with pytest.raises(ConfigError, match="train.unimodal.face.emotion.width"):
        parse(TrainParams, {"unimodal": {"face": {"emotion": {"width": 16}}}})
    with pytest.raises(ConfigError, match="train.cross.face.block"):
        parse(TrainParams, {"cross": {"face": {"block": "lstm"}}})
