"""The authors' stage-1 and stage-2 models mapped onto mepr's.

Their stage-1 classes (``EmotionMamba``, ``PersonalityMamba``, ``EmotionTransformer``,
``PersonalityTransformer`` of the video and text code; ``CustomMambaClassifier`` /
``CustomMambaRegressor`` of the audio code) are :class:`~mepr.models.unimodal.UnimodalModel`
configurations, their ``FusionTransformer`` (per modality family) a
:class:`~mepr.models.unimodal.CrossDomainModel` one; only the tensor names differ.

:func:`map_reference_unimodal` / :func:`map_reference_cross` turn one of their state dicts and
the constructor arguments the shapes cannot tell (heads, dropout, activations) into the mepr
config(s) and a mepr state dict.  They are strict: every tensor of theirs maps (their
position-encoding buffers are checked against mepr's encoding, which is computed, not
stored), every mepr tensor is filled, shapes agree; anything else is a
:class:`ReferenceMappingError` naming the tensor.  tests/test_parity_unimodal.py proves the
outputs equal theirs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from mepr.config import TrainParams, pick
from mepr.models.encoders import sinusoidal_encoding
from mepr.models.unimodal import (
    N_EMOTIONS,
    N_TRAITS,
    CrossConfig,
    CrossDomainModel,
    UnimodalConfig,
    UnimodalModel,
)
from mepr.reference import ReferenceMappingError

FAMILIES = ("video", "text", "audio")
# their stage-1 class -> (task, mepr encoder)
STAGE1 = {
    "EmotionMamba": ("emotion", "gated_mlp"),
    "PersonalityMamba": ("personality", "gated_mlp"),
    "EmotionTransformer": ("emotion", "postnorm_transformer"),
    "PersonalityTransformer": ("personality", "postnorm_transformer"),
    "CustomMambaClassifier": ("emotion", "gated_mlp"),
    "CustomMambaRegressor": ("personality", "gated_mlp"),
}
AUDIO_STAGE1 = ("CustomMambaClassifier", "CustomMambaRegressor")
# defaults of their video/text constructors, for keyword arguments not given
_DEFAULTS = {"num_transformer_heads": 4, "dropout": 0.1, "per_activation": "sigmoid"}
_PE = "positional encoding"  # the target of their `pe` buffers: checked, not loaded


@dataclass(frozen=True)
class ReferenceUnimodalArgs:
    """What mepr needs from one of their stage-1 constructor calls (the rest is in shapes)."""

    family: str  # video | text | audio: whose code the class is from
    model: str  # their class name (a key of STAGE1)
    heads: int
    dropout: float
    personality_activation: str  # sigmoid | relu | none (audio); unused for emotion

    @property
    def task(self) -> str:
        return STAGE1[self.model][0]

    @classmethod
    def from_kwargs(
        cls, family: str, model: str, kwargs: Mapping[str, Any]
    ) -> ReferenceUnimodalArgs:
        """From their class name and the keyword arguments it was called with."""
        if family not in FAMILIES:
            raise ReferenceMappingError(f"unknown model family '{family}' ({FAMILIES})")
        if model not in STAGE1 or (family == "audio") != (model in AUDIO_STAGE1):
            raise ReferenceMappingError(f"'{model}' is not a stage-1 model of their {family} code")
        if model in AUDIO_STAGE1:
            n_out = kwargs.get("num_classes" if model.endswith("Classifier") else "num_targets")
            # no attention (heads unused); their regressor has no output activation
            return cls(family, model, 1, float(kwargs.get("dropout", 0.1)), "none")._checked(n_out)
        given = {**_DEFAULTS, **kwargs}
        n_out = given.get("num_emotions" if model.startswith("Emotion") else "num_traits")
        return cls(
            family,
            model,
            int(given["num_transformer_heads"]),
            float(given["dropout"]),
            str(given["per_activation"]) if model.startswith("Personality") else "sigmoid",
        )._checked(n_out)

    def _checked(self, n_out: Any) -> ReferenceUnimodalArgs:
        want = N_EMOTIONS if self.task == "emotion" else N_TRAITS
        if n_out is not None and int(n_out) != want:
            raise ReferenceMappingError(f"{self.model} with {n_out} outputs: mepr predicts {want}")
        if self.personality_activation not in ("sigmoid", "relu", "none"):
            raise ReferenceMappingError(f"unknown per_activation '{self.personality_activation}'")
        return self


@dataclass(frozen=True)
class ReferenceCrossArgs:
    """One of their ``FusionTransformer`` calls and the two stage-1 models it bridges."""

    emotion: ReferenceUnimodalArgs
    personality: ReferenceUnimodalArgs
    heads: int
    dropout: float
    personality_activation: str

    @property
    def family(self) -> str:
        return self.emotion.family

    @classmethod
    def from_kwargs(
        cls,
        emotion: ReferenceUnimodalArgs,
        personality: ReferenceUnimodalArgs,
        kwargs: Mapping[str, Any],
    ) -> ReferenceCrossArgs:
        """`kwargs`: their video/text keyword arguments, or the audio code's `config` dict."""
        if emotion.task != "emotion" or personality.task != "personality":
            raise ReferenceMappingError(
                "a FusionTransformer bridges an emotion and a personality model"
            )
        if emotion.family != personality.family:
            raise ReferenceMappingError("both stage-1 models must come from the same family")
        if emotion.family == "audio":
            return cls(
                emotion, personality, int(kwargs["tr_heads"]), float(kwargs["dropout"]), "none"
            )
        given = {**_DEFAULTS, **kwargs}
        act = str(given["per_activation"])
        if act not in ("sigmoid", "relu"):
            raise ReferenceMappingError(f"unknown per_activation '{act}'")
        return cls(
            emotion, personality, int(given["num_transformer_heads"]), float(given["dropout"]), act
        )


# --------------------------------------------------------------------------- names
def _gated(theirs: str, ours: str) -> list[tuple[str, str]]:
    """Their gated-MLP block names under `theirs.<i>` -> ours under `ours.<i>`."""
    parts = {"in_proj": "in_proj", "s_B": "gate_b", "s_C": "gate_c", "out_proj": "out_proj",
             "norm": "norm"}  # fmt: skip
    return [
        (rf"{theirs}\.(\d+)\.{t}\.(weight|bias)", rf"{ours}.\1.{o}.\2") for t, o in parts.items()
    ]


def _postnorm(theirs: str, ours: str) -> list[tuple[str, str]]:
    """Their TransformerEncoderLayer names under `theirs.<i>` -> PostNormBlock's under `ours.<i>`."""
    parts = {
        r"self_attention\.(in_proj_weight|in_proj_bias)": r"attn.\2",
        r"self_attention\.out_proj\.(weight|bias)": r"attn.out_proj.\2",
        r"feed_forward\.layer_1\.(weight|bias)": r"ff.0.\2",
        r"feed_forward\.layer_2\.(weight|bias)": r"ff.3.\2",
        r"add_norm_after_attention\.norm\.(weight|bias)": r"norm_attn.\2",
        r"add_norm_after_ff\.norm\.(weight|bias)": r"norm_ff.\2",
    }
    rules = [(rf"{theirs}\.(\d+)\.{t}", rf"{ours}.\1.{o}") for t, o in parts.items()]
    return [*rules, (rf"{theirs}\.(\d+)\.positional_encoding\.pe", _PE)]


def _mlp_head(theirs: str, ours: str) -> list[tuple[str, str]]:
    """Linear - LayerNorm - act - Dropout - Linear: the tensors of layers 0, 1 and 4."""
    return [(rf"{theirs}\.([014])\.(weight|bias)", rf"{ours}.\1.\2")]


def _norm_projection(theirs: str, ours: str) -> list[tuple[str, str]]:
    return [(rf"{theirs}\.([01])\.(weight|bias)", rf"{ours}.\1.\2")]


def _stage1_names(model: str) -> dict[str, str]:
    """Their module names of a stage-1 class: projection, encoder layers, head."""
    if model == "CustomMambaClassifier":
        return {"proj": "input_proj", "encoder": "blocks", "head": "fc"}
    if model == "CustomMambaRegressor":
        return {"proj": "input_proj", "encoder": "blocks", "head": "head"}
    if model.startswith("Emotion"):
        return {"proj": "emo_proj", "encoder": "emotion_encoder", "head": "emotion_fc_out"}
    return {"proj": "per_proj", "encoder": "personality_encoder", "head": "personality_fc_out"}


def _stage1_rules(model: str) -> list[tuple[str, str]]:
    n = _stage1_names(model)
    if model in AUDIO_STAGE1:
        return [
            (rf"{n['proj']}\.(weight|bias)", r"proj.\1"),
            *_gated(n["encoder"], "encoder.layers"),
            (rf"{n['head']}\.(weight|bias)", r"head.\1"),
        ]
    layers = _gated if STAGE1[model][1] == "gated_mlp" else _postnorm
    return [
        *_norm_projection(n["proj"], "proj"),
        *layers(n["encoder"], "encoder.layers"),
        *_mlp_head(n["head"], "head"),
    ]


def _prefixed(rules: list[tuple[str, str]], theirs: str, ours: str) -> list[tuple[str, str]]:
    return [(rf"{theirs}\.{p}", t if t == _PE else f"{ours}.{t}") for p, t in rules]


def _cross_rules(args: ReferenceCrossArgs) -> list[tuple[str, str]]:
    if args.family == "audio":
        attn = r"(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)"
        return [
            *_prefixed(_stage1_rules(args.emotion.model), "emo_enc", "emotion_base"),
            *_prefixed(_stage1_rules(args.personality.model), "per_enc", "personality_base"),
            *_norm_projection("emo_proj", "emo_proj"),
            *_norm_projection("per_proj", "per_proj"),
            (rf"mha_e2p\.{attn}", r"emo_blocks.0.attn.\1"),
            (rf"mha_p2e\.{attn}", r"per_blocks.0.attn.\1"),
            *_mlp_head("emo_head", "emotion_head"),
            *_mlp_head("per_head", "personality_head"),
        ]
    return [
        *_prefixed(_stage1_rules(args.emotion.model), "emo_model", "emotion_base"),
        *_prefixed(_stage1_rules(args.personality.model), "per_model", "personality_base"),
        *_norm_projection("emo_proj", "emo_proj"),
        *_norm_projection("per_proj", "per_proj"),
        *_postnorm("emotion_to_personality_attn", "emo_blocks"),
        *_postnorm("personality_to_emotion_attn", "per_blocks"),
        *_mlp_head("emotion_personality_fc_out", "emotion_head"),
        *_mlp_head("personality_emotion_fc_out", "personality_head"),
    ]


def _renamed(
    state: Mapping[str, torch.Tensor],
    rules: list[tuple[str, str]],
    model: torch.nn.Module,
    what: str,
) -> dict[str, torch.Tensor]:
    """`state` under mepr's names, strictly (see the module docstring)."""
    compiled = [(re.compile(p), t) for p, t in rules]
    expected = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for name in sorted(state):
        tensor = state[name]
        hits = [(rx, t) for rx, t in compiled if rx.fullmatch(name)]
        if len(hits) != 1:
            why = "matches no" if not hits else "matches more than one"
            raise ReferenceMappingError(f"{what}: their tensor '{name}' {why} mepr tensor")
        rx, target = hits[0]
        if target == _PE:
            _check_positional(name, tensor)
            continue
        ours = rx.sub(target, name)
        if ours not in expected:
            raise ReferenceMappingError(
                f"{what}: their tensor '{name}' maps to '{ours}', which the mepr model lacks"
            )
        if tuple(tensor.shape) != tuple(expected[ours].shape):
            raise ReferenceMappingError(
                f"{what}: their tensor '{name}' is {list(tensor.shape)}, mepr's '{ours}' is "
                f"{list(expected[ours].shape)}"
            )
        if ours in out:
            raise ReferenceMappingError(f"{what}: two of their tensors map to '{ours}'")
        out[ours] = tensor.detach().clone()
    missing = sorted(set(expected) - set(out))
    if missing:
        raise ReferenceMappingError(
            f"{what}: mepr tensor '{missing[0]}' is filled by none of theirs"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    return out


def _check_positional(name: str, pe: torch.Tensor) -> None:
    """Their position-encoding buffer must be the encoding mepr computes."""
    if pe.ndim != 2:
        raise ReferenceMappingError(f"their tensor '{name}' is not a (length, dim) encoding")
    want = sinusoidal_encoding(pe.shape[0], pe.shape[1])
    if not torch.allclose(pe.float(), want, atol=1e-5, rtol=0):
        raise ReferenceMappingError(f"their tensor '{name}' is not the sinusoidal encoding")


# --------------------------------------------------------------------------- configs
def _shape(state: Mapping[str, torch.Tensor], name: str, dim: int, what: str) -> int:
    if name not in state:
        raise ReferenceMappingError(f"{what}: their state dict has no tensor '{name}'")
    return int(state[name].shape[dim])


def _layers(state: Mapping[str, torch.Tensor], prefix: str, what: str) -> list[int]:
    found = {int(m.group(1)) for k in state if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    if not found or found != set(range(len(found))):
        raise ReferenceMappingError(f"{what}: no layers 0..n-1 under '{prefix}' in their tensors")
    return sorted(found)


def _positional(state: Mapping[str, torch.Tensor], prefix: str, layers: list[int], what: str):
    have = [f"{prefix}.{i}.positional_encoding.pe" in state for i in layers]
    if len(set(have)) != 1:
        raise ReferenceMappingError(f"{what}: only some '{prefix}' layers have a position encoding")
    return have[0]


def reference_unimodal_config(
    args: ReferenceUnimodalArgs, state: Mapping[str, torch.Tensor]
) -> UnimodalConfig:
    """The mepr config of their stage-1 model: widths from the tensors, the rest from `args`;
    fields their model has no use for keep mepr's train-section defaults."""
    what = args.model
    n = _stage1_names(args.model)
    task, encoder = STAGE1[args.model]
    audio = args.model in AUDIO_STAGE1
    proj = f"{n['proj']}.weight" if audio else f"{n['proj']}.0.weight"
    layers = _layers(state, n["encoder"], what)
    sizes: dict[str, Any] = {
        "in_dim": _shape(state, proj, 1, what),
        "hidden_dim": _shape(state, proj, 0, what),
        "layers": len(layers),
        "dropout": args.dropout,
        "projection": "linear" if audio else "norm",
        "head": "linear" if audio else "mlp",
        "personality_activation": args.personality_activation,
    }
    if not audio:
        sizes["out_features"] = _shape(state, f"{n['head']}.0.weight", 0, what)
    if encoder == "gated_mlp":
        sizes["block_width"] = _shape(state, f"{n['encoder']}.0.in_proj.weight", 0, what)
    else:
        sizes["heads"] = args.heads
        sizes["positional"] = _positional(state, n["encoder"], layers, what)
    defaults = TrainParams()
    return pick(UnimodalConfig, defaults, defaults.mamba, task=task, encoder=encoder, **sizes)


def reference_cross_config(
    args: ReferenceCrossArgs, state: Mapping[str, torch.Tensor]
) -> tuple[UnimodalConfig, UnimodalConfig, CrossConfig]:
    """The mepr configs of their FusionTransformer: its two stage-1 models' and the bridge's."""
    audio = args.family == "audio"
    base = ("emo_enc", "per_enc") if audio else ("emo_model", "per_model")
    emo, per = (
        reference_unimodal_config(a, _sub(state, prefix))
        for a, prefix in ((args.emotion, base[0]), (args.personality, base[1]))
    )
    what = f"{args.family} FusionTransformer"
    head = "emo_head" if audio else "emotion_personality_fc_out"
    sizes: dict[str, Any] = {
        "hidden_dim": _shape(state, "emo_proj.0.weight", 0, what),
        "out_features": _shape(state, f"{head}.0.weight", 0, what),
        "heads": args.heads,
        "dropout": args.dropout,
        "head_activation": "gelu" if args.family == "video" else "silu",
        "personality_activation": args.personality_activation,
    }
    if audio:
        sizes.update(block="mha", layers=1, positional=False)
    else:
        layers = _layers(state, "emotion_to_personality_attn", what)
        if _layers(state, "personality_to_emotion_attn", what) != layers:
            raise ReferenceMappingError(f"{what}: the two attention branches differ in depth")
        pos = _positional(state, "emotion_to_personality_attn", layers, what)
        if _positional(state, "personality_to_emotion_attn", layers, what) != pos:
            raise ReferenceMappingError(f"{what}: only one branch has a position encoding")
        sizes.update(block="postnorm", layers=len(layers), positional=pos)
    defaults = TrainParams()
    return emo, per, pick(CrossConfig, defaults.cross, defaults, **sizes)


def _sub(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(f"{prefix}.")}


# --------------------------------------------------------------------------- loading
def map_reference_unimodal(
    args: ReferenceUnimodalArgs, state: Mapping[str, torch.Tensor]
) -> tuple[UnimodalConfig, dict[str, torch.Tensor]]:
    """(mepr config, mepr state dict) of their stage-1 model."""
    cfg = reference_unimodal_config(args, state)
    return cfg, _renamed(state, _stage1_rules(args.model), UnimodalModel(cfg), args.model)


def load_reference_unimodal(
    args: ReferenceUnimodalArgs, state: Mapping[str, torch.Tensor]
) -> UnimodalModel:
    """Their stage-1 model as a mepr model, in eval mode."""
    cfg, mapped = map_reference_unimodal(args, state)
    model = UnimodalModel(cfg)
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def map_reference_cross(
    args: ReferenceCrossArgs, state: Mapping[str, torch.Tensor]
) -> tuple[tuple[UnimodalConfig, UnimodalConfig, CrossConfig], dict[str, torch.Tensor]]:
    """(mepr configs, mepr state dict) of their FusionTransformer (stage-1 models included)."""
    cfgs = reference_cross_config(args, state)
    model = _cross_model(cfgs)
    what = f"{args.family} FusionTransformer"
    return cfgs, _renamed(state, _cross_rules(args), model, what)


def load_reference_cross(
    args: ReferenceCrossArgs, state: Mapping[str, torch.Tensor]
) -> CrossDomainModel:
    """Their FusionTransformer as a mepr stage-2 model, in eval mode."""
    cfgs, mapped = map_reference_cross(args, state)
    model = _cross_model(cfgs)
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def _cross_model(cfgs: tuple[UnimodalConfig, UnimodalConfig, CrossConfig]) -> CrossDomainModel:
    emo, per, cross = cfgs
    return CrossDomainModel(UnimodalModel(emo), UnimodalModel(per), cross)
