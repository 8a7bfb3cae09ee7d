"""The authors' multi-task fusion (``MultiModalFusionModelWithAblation``) mapped onto mepr's.

Their model and :class:`mepr.models.fusion.FusionModel` compute the same function; only the
tensor layout differs.  :func:`map_reference_fusion` turns one of their state dicts, together
with the constructor arguments that the shapes cannot tell (heads, dropout, ablation switches),
into a :class:`~mepr.models.fusion.FusionConfig` and a state dict for mepr.  It is strict:
every tensor of theirs is either loaded or unused by a named ablation switch, every mepr
tensor is filled, and every shape must agree; anything else raises :class:`ReferenceMappingError`
naming the tensor.  The proof that outputs agree is tests/test_parity_fusion.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from mepr.models.fusion import FusionConfig, FusionModel
from mepr.models.unimodal import N_EMOTIONS, N_TRAITS
from mepr.reference import ReferenceMappingError

# Their ablation_config keys; the values default to False / [] in their constructor.
_SWITCHES = (
    "disable_graph_attn",
    "disable_cross_attn",
    "disable_emo_logit_proj",
    "disable_pkl_logit_proj",
    "disable_guide_bank",  # removes both guide banks
    "disable_guide_emo",  # keeps the bank's tensor but does not use it
    "disable_guide_pkl",  # ditto (the released app checkpoint is built this way)
)
# Their constructor's own defaults, used when a kwarg is not given.
_DEFAULT_KWARGS = {"hidden_dim": 512, "num_heads": 8, "dropout": 0.1}


@dataclass(frozen=True)
class ReferenceFusionArgs:
    """Their constructor arguments that matter to mepr (``device`` does not).

    ``hidden_dim=None`` takes the width from the tensors; given, it is checked against them.
    """

    num_heads: int
    dropout: float
    hidden_dim: int | None = None
    disabled_modalities: tuple[str, ...] = ()
    disable_graph_attn: bool = False
    disable_cross_attn: bool = False
    disable_emo_logit_proj: bool = False
    disable_pkl_logit_proj: bool = False
    disable_guide_bank: bool = False
    disable_guide_emo: bool = False
    disable_guide_pkl: bool = False

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> ReferenceFusionArgs:
        """From the keyword arguments their constructor was called with (JSON-decoded)."""
        known = {"hidden_dim", "num_heads", "dropout", "emo_out_dim", "pkl_out_dim", "device"}
        unknown = set(kwargs) - known - {"ablation_config"}
        if unknown:
            raise ReferenceMappingError(f"unknown constructor arguments {sorted(unknown)}")
        for key, want in (("emo_out_dim", N_EMOTIONS), ("pkl_out_dim", N_TRAITS)):
            if kwargs.get(key, want) != want:
                raise ReferenceMappingError(f"{key}={kwargs[key]}: mepr predicts {want} outputs")
        ablation = dict(kwargs.get("ablation_config") or {})
        unknown = set(ablation) - set(_SWITCHES) - {"disabled_modalities"}
        if unknown:
            raise ReferenceMappingError(f"unknown ablation_config keys {sorted(unknown)}")
        given = {**_DEFAULT_KWARGS, **{k: kwargs[k] for k in _DEFAULT_KWARGS if k in kwargs}}
        return cls(
            num_heads=int(given["num_heads"]),
            dropout=float(given["dropout"]),
            hidden_dim=int(given["hidden_dim"]),
            disabled_modalities=tuple(ablation.get("disabled_modalities", ())),
            **{k: bool(ablation.get(k, False)) for k in _SWITCHES},
        )


@dataclass(frozen=True)
class MappedFusion:
    """mepr's config and state dict for one of their models."""

    config: FusionConfig
    state_dict: dict[str, torch.Tensor]
    unused: tuple[str, ...] = field(default=())  # their tensors their forward never reads


def projector_names(m: str) -> list[tuple[str, str]]:
    """(theirs, mepr) for one modality: their Sequential(ModalityProjector, AdapterFusion)."""
    pairs = [(f"0.proj.{i}.{p}", f"proj.{i}.{p}") for i in (0, 3) for p in ("weight", "bias")]
    pairs += [
        (f"1.adapter.{i}.{p}", f"adapter.{i}.{p}") for i in (0, 3) for p in ("weight", "bias")
    ]
    pairs += [(f"1.layernorm.{p}", f"norm.{p}") for p in ("weight", "bias")]
    return [(f"projectors.{m}.{a}", f"projectors.{m}.{b}") for a, b in pairs]


# (their prefix, mepr prefix, parameter names) for the one-to-one renames outside the projectors.
_RENAMES = (
    ("graph_attn.W", "graph.W", ("weight",)),
    ("cross_attn", "attn", ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")),
    ("emo_head", "emotion_head", ("weight", "bias")),
    ("pkl_head", "personality_head", ("weight", "bias")),
    ("emo_logit_proj", "emotion_predict_proj", ("weight", "bias")),
    ("per_logit_proj", "personality_predict_proj", ("weight", "bias")),
)


def state_modalities(state: Mapping[str, torch.Tensor]) -> list[str]:
    """Their modalities in state-dict (= their construction, = node) order."""
    suffix = ".0.proj.0.weight"
    return [
        k[len("projectors.") : -len(suffix)]
        for k in state
        if k.startswith("projectors.") and k.endswith(suffix)
    ]


def _present(state: Mapping[str, torch.Tensor], key: str, disabled: bool, switch: str) -> bool:
    """Whether a component exists; its tensors and their switch must tell the same story."""
    if (key in state) == disabled:
        how = "present" if disabled else "missing"
        raise ReferenceMappingError(f"'{key}' is {how} but {switch}={disabled}")
    return not disabled


def reference_fusion_config(
    state: Mapping[str, torch.Tensor], args: ReferenceFusionArgs
) -> FusionConfig:
    """The mepr FusionConfig equivalent to their model (widths from the tensors)."""
    if "emo_head.weight" not in state:
        raise ReferenceMappingError("'emo_head.weight' missing: not their multi-task fusion")
    hidden = int(state["emo_head.weight"].shape[1])
    if args.hidden_dim is not None and args.hidden_dim != hidden:
        raise ReferenceMappingError(
            f"'emo_head.weight' is {tuple(state['emo_head.weight'].shape)} but hidden_dim="
            f"{args.hidden_dim}"
        )
    if hidden % args.num_heads:
        raise ReferenceMappingError(f"hidden width {hidden} is not divisible by {args.num_heads}")
    theirs = state_modalities(state)
    unknown = sorted(set(args.disabled_modalities) - set(theirs))
    if unknown:
        raise ReferenceMappingError(f"disabled modalities {unknown} have no projector")
    mods = [m for m in theirs if m not in args.disabled_modalities]
    if not mods:
        raise ReferenceMappingError("every modality is disabled")
    bank = _present(
        state, "guide_bank_emo.embeddings", args.disable_guide_bank, "disable_guide_bank"
    )
    _present(state, "guide_bank_pkl.embeddings", args.disable_guide_bank, "disable_guide_bank")
    return FusionConfig(
        modalities=tuple(mods),
        input_dims=tuple(int(state[f"projectors.{m}.0.proj.0.weight"].shape[1]) for m in mods),
        hidden_dim=hidden,
        heads=args.num_heads,
        dropout=args.dropout,
        graph_attention=_present(
            state, "graph_attn.W.weight", args.disable_graph_attn, "disable_graph_attn"
        ),
        cross_attention=_present(
            state, "cross_attn.in_proj_weight", args.disable_cross_attn, "disable_cross_attn"
        ),
        predict_projection_emotion=_present(
            state, "emo_logit_proj.weight", args.disable_emo_logit_proj, "disable_emo_logit_proj"
        ),
        predict_projection_personality=_present(
            state, "per_logit_proj.weight", args.disable_pkl_logit_proj, "disable_pkl_logit_proj"
        ),
        guide_emotion=bank and not args.disable_guide_emo,
        guide_personality=bank and not args.disable_guide_pkl,
    )


def _renamed(
    cfg: FusionConfig, state: Mapping[str, torch.Tensor], unused: set[str]
) -> dict[str, torch.Tensor]:
    """mepr name -> their tensor (reshaped where mepr stores it differently)."""
    pairs = [p for m in cfg.modalities for p in projector_names(m)]
    pairs += [(f"{a}.{p}", f"{b}.{p}") for a, b, names in _RENAMES for p in names]
    pairs += [("guide_bank_emo.embeddings", "emotion_guide")]
    pairs += [("guide_bank_pkl.embeddings", "personality_guide")]
    out = {
        ours: state[theirs] for theirs, ours in pairs if theirs in state and theirs not in unused
    }
    # Their two (1, 1, D) queries are mepr's (2, D) rows 0 (emotion) and 1 (personality).
    if "emo_query" in state and "pkl_query" in state:
        d = cfg.hidden_dim
        out["queries"] = torch.cat(
            [state["emo_query"].reshape(-1, d), state["pkl_query"].reshape(-1, d)]
        )
    # Their attention vector a (2D, 1) scores [Wh_i ‖ Wh_j]; mepr splits it into source and
    # destination halves, which gives the same e_ij = a_src·Wh_i + a_dst·Wh_j.
    if "graph_attn.a" in state:
        a = state["graph_attn.a"].reshape(-1)
        out["graph.a_src"], out["graph.a_dst"] = a[: a.numel() // 2], a[a.numel() // 2 :]
    return out


def _unused(args: ReferenceFusionArgs, state: Mapping[str, Any]) -> set[str]:
    """Their tensors that their forward never reads under these switches."""
    unused = {k for m in args.disabled_modalities for k, _ in projector_names(m)}
    if args.disable_guide_emo and not args.disable_guide_bank:
        unused.add("guide_bank_emo.embeddings")
    if args.disable_guide_pkl and not args.disable_guide_bank:
        unused.add("guide_bank_pkl.embeddings")
    return unused & set(state)


def _consumed(cfg: FusionConfig, state: Mapping[str, Any]) -> set[str]:
    """Their tensor names that feed the mepr state dict."""
    names = {t for m in cfg.modalities for t, _ in projector_names(m)}
    names |= {f"{a}.{p}" for a, _, ps in _RENAMES for p in ps}
    names |= {"emo_query", "pkl_query", "graph_attn.a"}
    if cfg.guide_emotion:
        names.add("guide_bank_emo.embeddings")
    if cfg.guide_personality:
        names.add("guide_bank_pkl.embeddings")
    return names & set(state)


def map_reference_fusion(
    state: Mapping[str, torch.Tensor], args: ReferenceFusionArgs
) -> MappedFusion:
    """Their state dict -> mepr's config and state dict, strictly (see the module docstring)."""
    cfg = reference_fusion_config(state, args)
    unused = _unused(args, state)
    stray = sorted(set(state) - _consumed(cfg, state) - unused)
    if stray:
        raise ReferenceMappingError(f"their tensor '{stray[0]}' has no mepr counterpart ({stray})")
    renamed = _renamed(cfg, state, unused)
    expected = FusionModel(cfg).state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for name, like in expected.items():
        if name not in renamed:
            raise ReferenceMappingError(f"mepr tensor '{name}' is not filled by their state dict")
        got = renamed[name]
        if tuple(got.shape) != tuple(like.shape):
            raise ReferenceMappingError(
                f"mepr tensor '{name}' is {tuple(like.shape)} but theirs is {tuple(got.shape)}"
            )
        mapped[name] = got.detach().to(like.dtype).clone()
    extra = sorted(set(renamed) - set(expected))
    if extra:  # a component their tensors have but the config turned off
        raise ReferenceMappingError(f"their tensors fill '{extra[0]}', which mepr does not have")
    return MappedFusion(config=cfg, state_dict=mapped, unused=tuple(sorted(unused)))


def load_reference_fusion(
    state: Mapping[str, torch.Tensor], args: ReferenceFusionArgs
) -> FusionModel:
    """A mepr FusionModel holding their weights, in eval mode."""
    mapped = map_reference_fusion(state, args)
    model = FusionModel(mapped.config)
    model.load_state_dict(mapped.state_dict, strict=True)
    return model.eval()


@dataclass(frozen=True)
class FusionInputs:
    """The arguments of :meth:`FusionModel.forward`, in its modality order."""

    features: dict[str, torch.Tensor]
    logits: torch.Tensor  # (B, M, 7)
    scores: torch.Tensor  # (B, M, 5)
    present: torch.Tensor  # (B, M) bool


def reference_inputs(batch: Mapping[str, Any], cfg: FusionConfig) -> FusionInputs:
    """Their batch (``features``/``emotion_logits``/``personality_scores``: modality -> tensor
    or None) as mepr inputs; a None modality becomes zeros with ``present`` False."""
    feats = batch["features"]
    given = [m for m in cfg.modalities if feats.get(m) is not None]
    if not given:
        raise ReferenceMappingError("no modality of the model has features in the batch")
    b = int(feats[given[0]].shape[0])
    like = feats[given[0]]

    def column(key: str, m: str, width: int) -> torch.Tensor:
        if m in given:
            return batch[key][m].to(like.dtype)
        return like.new_zeros(b, width)

    features = {
        m: feats[m] if m in given else like.new_zeros(b, d)
        for m, d in zip(cfg.modalities, cfg.input_dims, strict=True)
    }
    logits = torch.stack([column("emotion_logits", m, N_EMOTIONS) for m in cfg.modalities], 1)
    scores = torch.stack([column("personality_scores", m, N_TRAITS) for m in cfg.modalities], 1)
    present = torch.tensor([m in given for m in cfg.modalities]).expand(b, -1)
    return FusionInputs(features, logits, scores, present)


__all__ = [
    "FusionInputs",
    "MappedFusion",
    "ReferenceFusionArgs",
    "ReferenceMappingError",
    "load_reference_fusion",
    "map_reference_fusion",
    "reference_fusion_config",
    "reference_inputs",
]
