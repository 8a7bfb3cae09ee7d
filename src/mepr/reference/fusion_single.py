"""The authors' single-task fusion (``SingleTaskAsymModel``) mapped onto mepr's.

Their model and :class:`mepr.models.fusion_single.SingleTaskFusionModel` compute the same
function on full inputs; only the tensor layout differs.  :func:`map_reference_fusion_single`
turns one of their state dicts, with the constructor arguments the shapes cannot tell
(target, feature slice, heads, dropout) and the per-modality emotion / personality widths
their class keeps in a table, into a
:class:`~mepr.models.fusion_single.SingleTaskFusionConfig` and a state dict for mepr.  It is
strict: every tensor of theirs is loaded, every mepr tensor filled, every shape checked;
anything else raises :class:`ReferenceMappingError` naming the tensor.  The proof that
outputs agree is tests/test_parity_fusion_single.py.

One difference on partial inputs (none on full ones): their forward averages the stage-2
predictions of every modality handed to it, while mepr averages the present ones only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from mepr.models.fusion_single import SingleTaskFusionConfig, SingleTaskFusionModel
from mepr.models.unimodal import N_EMOTIONS, N_TRAITS
from mepr.reference import ReferenceMappingError
from mepr.reference.fusion import projector_names, state_modalities

# Their target names, and the feature slice that keeps a target's own part.
_TASKS = {"emo": "emotion", "pkl": "personality"}
# Their constructor's own defaults, used when a kwarg is not given.
_DEFAULT_KWARGS = {"feature_slice": "both", "hidden_dim": 512, "num_heads": 8, "dropout": 0.1}
_KNOWN = {"target", "emo_out_dim", "pkl_out_dim", "device", *_DEFAULT_KWARGS}


@dataclass(frozen=True)
class ReferenceSingleTaskArgs:
    """Their constructor arguments that matter to mepr, and their width tables.

    ``emotion_widths`` / ``personality_widths``: per modality the two parts of its stage-2
    vector (their class attributes; mepr keeps no copy of them, so the caller names them).
    ``hidden_dim=None`` takes the width from the tensors; given, it is checked against them.
    """

    target: str  # emo | pkl
    feature_slice: str  # both | emo | pkl
    num_heads: int
    dropout: float
    emotion_widths: Mapping[str, int]
    personality_widths: Mapping[str, int]
    hidden_dim: int | None = None

    @classmethod
    def from_kwargs(
        cls,
        kwargs: Mapping[str, Any],
        emotion_widths: Mapping[str, int],
        personality_widths: Mapping[str, int],
    ) -> ReferenceSingleTaskArgs:
        """From the keyword arguments their constructor was called with (JSON-decoded)."""
        unknown = set(kwargs) - _KNOWN
        if unknown:
            raise ReferenceMappingError(f"unknown constructor arguments {sorted(unknown)}")
        if "target" not in kwargs:
            raise ReferenceMappingError("their constructor needs 'target' (emo | pkl)")
        for key, want in (("emo_out_dim", N_EMOTIONS), ("pkl_out_dim", N_TRAITS)):
            if kwargs.get(key, want) != want:
                raise ReferenceMappingError(f"{key}={kwargs[key]}: mepr predicts {want} outputs")
        given = {**_DEFAULT_KWARGS, **{k: kwargs[k] for k in _DEFAULT_KWARGS if k in kwargs}}
        return cls(
            target=str(kwargs["target"]),
            feature_slice=str(given["feature_slice"]),
            num_heads=int(given["num_heads"]),
            dropout=float(given["dropout"]),
            emotion_widths=dict(emotion_widths),
            personality_widths=dict(personality_widths),
            hidden_dim=int(given["hidden_dim"]),
        )

    def task(self) -> str:
        if self.target not in _TASKS:
            raise ReferenceMappingError(f"target '{self.target}': expected emo or pkl")
        return _TASKS[self.target]

    def mepr_slice(self) -> str:
        """mepr's feature_slice: ``both``, or ``own`` when they keep the target's own part."""
        if self.feature_slice == "both":
            return "both"
        if self.feature_slice == self.target:
            return "own"
        raise ReferenceMappingError(
            f"feature_slice '{self.feature_slice}' with target '{self.target}': mepr feeds a "
            "task both parts or its own (their trainer's single_task_id 0-3)"
        )


@dataclass(frozen=True)
class MappedSingleTask:
    """mepr's config and state dict for one of their models."""

    config: SingleTaskFusionConfig
    state_dict: dict[str, torch.Tensor]


# (their prefix, mepr prefix, parameter names): one-to-one renames outside the projectors.
_RENAMES = (
    ("gat.W", "graph.W", ("weight",)),
    ("cross", "attn", ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")),
    ("head", "head", ("weight", "bias")),
    ("logit_proj", "predict_proj", ("weight", "bias")),
)


def reference_single_task_config(
    state: Mapping[str, torch.Tensor], args: ReferenceSingleTaskArgs
) -> SingleTaskFusionConfig:
    """The mepr config equivalent to their model (hidden width from the tensors)."""
    for key in ("head.weight", "gat.a", "query"):
        if key not in state:
            raise ReferenceMappingError(f"'{key}' missing: not their single-task fusion")
    hidden = int(state["head.weight"].shape[1])
    if args.hidden_dim is not None and args.hidden_dim != hidden:
        raise ReferenceMappingError(
            f"'head.weight' is {tuple(state['head.weight'].shape)} but hidden_dim={args.hidden_dim}"
        )
    if hidden % args.num_heads:
        raise ReferenceMappingError(f"hidden width {hidden} is not divisible by {args.num_heads}")
    mods = state_modalities(state)
    if not mods:
        raise ReferenceMappingError("no 'projectors.*' tensors: not their single-task fusion")
    lacking = [m for m in mods if m not in args.emotion_widths or m not in args.personality_widths]
    if lacking:
        raise ReferenceMappingError(f"no emotion/personality widths given for {lacking}")
    return SingleTaskFusionConfig(
        task=args.task(),
        modalities=tuple(mods),
        input_dims=tuple(
            int(args.emotion_widths[m]) + int(args.personality_widths[m]) for m in mods
        ),
        emotion_dims=tuple(int(args.emotion_widths[m]) for m in mods),
        feature_slice=args.mepr_slice(),
        hidden_dim=hidden,
        heads=args.num_heads,
        dropout=args.dropout,
    )


def _renamed(cfg: SingleTaskFusionConfig, state: Mapping[str, torch.Tensor]):
    """mepr name -> their tensor (reshaped where mepr stores it differently), and the set of
    their names that were used."""
    pairs = [p for m in cfg.modalities for p in projector_names(m)]
    pairs += [(f"{a}.{p}", f"{b}.{p}") for a, b, names in _RENAMES for p in names]
    pairs += [("guide.embeddings", "guide")]
    out = {ours: state[theirs] for theirs, ours in pairs if theirs in state}
    used = {theirs for theirs, _ in pairs if theirs in state}
    d = cfg.hidden_dim
    out["query"] = state["query"].reshape(-1, d)  # their (1, 1, D) is mepr's (1, D)
    # Their attention vector a (2D, 1) scores [Wh_i ‖ Wh_j]; mepr splits it into source and
    # destination halves, which gives the same e_ij = a_src·Wh_i + a_dst·Wh_j.
    a = state["gat.a"].reshape(-1)
    out["graph.a_src"], out["graph.a_dst"] = a[: a.numel() // 2], a[a.numel() // 2 :]
    return out, used | {"query", "gat.a"}


def map_reference_fusion_single(
    state: Mapping[str, torch.Tensor], args: ReferenceSingleTaskArgs
) -> MappedSingleTask:
    """Their state dict -> mepr's config and state dict, strictly (see the module docstring)."""
    cfg = reference_single_task_config(state, args)
    renamed, used = _renamed(cfg, state)
    stray = sorted(set(state) - used)
    if stray:
        raise ReferenceMappingError(f"their tensor '{stray[0]}' has no mepr counterpart ({stray})")
    expected = SingleTaskFusionModel(cfg).state_dict()
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
    if extra:  # e.g. a guide bank on a personality model
        raise ReferenceMappingError(f"their tensors fill '{extra[0]}', which mepr does not have")
    return MappedSingleTask(config=cfg, state_dict=mapped)


def load_reference_fusion_single(
    state: Mapping[str, torch.Tensor], args: ReferenceSingleTaskArgs
) -> SingleTaskFusionModel:
    """A mepr SingleTaskFusionModel holding their weights, in eval mode."""
    mapped = map_reference_fusion_single(state, args)
    model = SingleTaskFusionModel(mapped.config)
    model.load_state_dict(mapped.state_dict, strict=True)
    return model.eval()


__all__ = [
    "MappedSingleTask",
    "ReferenceMappingError",
    "ReferenceSingleTaskArgs",
    "load_reference_fusion_single",
    "map_reference_fusion_single",
    "reference_single_task_config",
]
