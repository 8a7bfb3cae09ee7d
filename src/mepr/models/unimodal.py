"""Stage 1 (single-task unimodal) and stage 2 (cross-domain multi-task unimodal) models.

mepr's own choices are the defaults; the SSL-MEPR authors' variants are options of the same
models (encoders ``gated_mlp`` / ``postnorm_transformer``, a bare Linear projection or head,
relu or no personality activation; bridge blocks ``postnorm`` / ``mha``, a SiLU head), so
their trained weights load into these classes (:mod:`mepr.reference.unimodal`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn

from mepr.labels import EMOTIONS, TRAITS
from mepr.models.encoders import AttentionBlock, build_encoder, masked_mean
from mepr.models.reference_layers import PostNormBlock, ResidualAttention

N_EMOTIONS = len(EMOTIONS)
N_TRAITS = len(TRAITS)

HEAD_ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU}
PERSONALITY_ACTIVATIONS = ("sigmoid", "relu", "none")
PROJECTIONS = ("norm", "linear")
HEADS = ("mlp", "linear")
BRIDGE_BLOCKS = ("prenorm", "postnorm", "mha")


def head(
    in_dim: int, hidden: int, n_out: int, dropout: float, activation: str = "gelu"
) -> nn.Sequential:
    """Prediction head: Linear - LayerNorm - GELU|SiLU - Dropout - Linear (as the reference's
    fc_out)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.LayerNorm(hidden),
        _choose(HEAD_ACTIVATIONS, activation, "head activation")(),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_out),
    )


def _choose(options, name: str, what: str):
    """options[name] (or name itself when it is one of a tuple of names); ValueError otherwise."""
    if name not in options:
        raise ValueError(f"unknown {what} '{name}' (choose from {', '.join(options)})")
    return options[name] if isinstance(options, dict) else name


def activate_personality(scores: torch.Tensor, activation: str) -> torch.Tensor:
    """The personality head's output activation: sigmoid (mepr), relu or none."""
    if activation == "sigmoid":
        return torch.sigmoid(scores)
    if activation == "relu":
        return torch.relu(scores)
    return scores


def projection(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """Input projection to the model width: Linear - LayerNorm - Dropout."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.Dropout(dropout))


@dataclass(frozen=True)
class UnimodalConfig:
    """Everything needed to rebuild a stage-1 model (stored in its config.json)."""

    in_dim: int
    task: str  # emotion | personality
    encoder: str
    hidden_dim: int
    out_features: int
    layers: int
    heads: int
    dropout: float
    d_state: int
    d_conv: int
    expand: int
    # Added after the first checkpoints were written: their defaults are the behaviour those
    # had (and the train section's defaults, checked by tests/test_config_drift.py), so an
    # older config.json still builds its model.
    block_width: int = 64  # gated_mlp: the MLP's width
    positional: bool = True  # (postnorm_)transformer: sinusoidal position encoding
    projection: str = "norm"  # norm: Linear - LayerNorm - Dropout | linear: a bare Linear
    head: str = "mlp"  # mlp: Linear - LayerNorm - GELU - Dropout - Linear | linear
    personality_activation: str = "sigmoid"  # sigmoid | relu | none
    COMPAT: ClassVar[tuple[str, ...]] = (
        "block_width",
        "positional",
        "projection",
        "head",
        "personality_activation",
    )

    def to_dict(self) -> dict:
        return asdict(self)


class UnimodalModel(nn.Module):
    """Stage 1: projection -> temporal encoder -> masked mean -> task head.

    Emotion: 7 logits (``output`` = logits).  Personality: 5 scores, through the configured
    activation (mepr: sigmoid, in [0, 1]).  Also returns the encoded ``sequence`` (B, T, H)
    and the pooled ``features`` (B, H).
    """

    def __init__(self, cfg: UnimodalConfig):
        super().__init__()
        if cfg.task not in ("emotion", "personality"):
            raise ValueError(f"unknown task '{cfg.task}'")
        _choose(PROJECTIONS, cfg.projection, "projection")
        _choose(HEADS, cfg.head, "head")
        _choose(PERSONALITY_ACTIVATIONS, cfg.personality_activation, "personality activation")
        self.cfg = cfg
        h = cfg.hidden_dim
        if cfg.projection == "norm":
            self.proj = projection(cfg.in_dim, h, cfg.dropout)
        else:
            self.proj = nn.Linear(cfg.in_dim, h)
        self.encoder = build_encoder(
            cfg.encoder,
            h,
            layers=cfg.layers,
            heads=cfg.heads,
            dropout=cfg.dropout,
            d_state=cfg.d_state,
            d_conv=cfg.d_conv,
            expand=cfg.expand,
            block_width=cfg.block_width,
            positional=cfg.positional,
        )
        n_out = N_EMOTIONS if cfg.task == "emotion" else N_TRAITS
        if cfg.head == "mlp":
            self.head = head(h, cfg.out_features, n_out, cfg.dropout)
        else:
            self.head = nn.Linear(h, n_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        seq = self.encoder(self.proj(x), mask)
        feats = masked_mean(seq, mask)
        out = self.head(feats)
        if self.cfg.task == "personality":
            out = activate_personality(out, self.cfg.personality_activation)
        return {"sequence": seq, "features": feats, "output": out}


@dataclass(frozen=True)
class CrossConfig:
    """The stage-2 bridge of one modality (stored in its config.json)."""

    hidden_dim: int
    out_features: int  # the heads' hidden width
    heads: int
    layers: int
    dropout: float
    # Added after the first checkpoints were written (see UnimodalConfig.COMPAT).
    block: str = "prenorm"  # prenorm (mepr) | postnorm (the authors' layer) | mha (audio)
    positional: bool = False  # postnorm: sinusoidal position encoding in every layer
    head_activation: str = "gelu"  # gelu | silu
    personality_activation: str = "sigmoid"  # on the bridge's head: sigmoid | relu | none
    COMPAT: ClassVar[tuple[str, ...]] = (
        "block",
        "positional",
        "head_activation",
        "personality_activation",
    )

    def to_dict(self) -> dict:
        return asdict(self)


def _attention_blocks(cfg: CrossConfig) -> nn.ModuleList:
    """One branch of the bridge: an attention block per layer, each ``x <- f(x, context)``."""
    h, n, p = cfg.hidden_dim, cfg.heads, cfg.dropout
    if cfg.block == "prenorm":
        return nn.ModuleList(AttentionBlock(h, n, p) for _ in range(cfg.layers))
    if cfg.block == "postnorm":
        return nn.ModuleList(PostNormBlock(h, n, p, cfg.positional) for _ in range(cfg.layers))
    return nn.ModuleList(ResidualAttention(h, n, p) for _ in range(cfg.layers))


class CrossDomainModel(nn.Module):
    """Stage 2: the frozen stage-1 emotion and personality models of one modality, bridged.

    Both frozen models encode the clip; their sequences are projected to a common width H
    (the input widths are the stage-1 models'), then the emotion branch attends to the
    personality branch (every layer) and the personality branch to the updated emotion
    branch.  Heads read the concatenated time means; the final predictions are the mean of
    the new heads' and the frozen models' predictions (as in the reference), the personality
    activation applied to the new head first.  Only the bridge is trainable.
    """

    def __init__(
        self, emotion_model: UnimodalModel, personality_model: UnimodalModel, cfg: CrossConfig
    ):
        super().__init__()
        if emotion_model.cfg.task != "emotion" or personality_model.cfg.task != "personality":
            raise ValueError("CrossDomainModel needs an emotion and a personality stage-1 model")
        _choose(BRIDGE_BLOCKS, cfg.block, "bridge block")
        _choose(PERSONALITY_ACTIVATIONS, cfg.personality_activation, "personality activation")
        if cfg.positional and cfg.block != "postnorm":
            raise ValueError(f"a '{cfg.block}' bridge has no position encoding (postnorm has)")
        self.cfg = cfg
        self.emotion_base = emotion_model
        self.personality_base = personality_model
        for p in (*emotion_model.parameters(), *personality_model.parameters()):
            p.requires_grad_(False)
        h = cfg.hidden_dim
        # the creation order decides each layer's seeded initial weights: keep it
        self.emo_proj = projection(emotion_model.cfg.hidden_dim, h, cfg.dropout)
        self.per_proj = projection(personality_model.cfg.hidden_dim, h, cfg.dropout)
        self.emo_blocks = _attention_blocks(cfg)
        self.per_blocks = _attention_blocks(cfg)
        act = cfg.head_activation
        self.emotion_head = head(2 * h, cfg.out_features, N_EMOTIONS, cfg.dropout, act)
        self.personality_head = head(2 * h, cfg.out_features, N_TRAITS, cfg.dropout, act)

    def train(self, mode: bool = True):
        super().train(mode)
        self.emotion_base.eval()  # frozen: no dropout, ever
        self.personality_base.eval()
        return self

    def shared_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters both tasks' losses reach (GradNorm measures gradients here)."""
        mods = (self.emo_proj, self.per_proj, self.emo_blocks, self.per_blocks)
        return [p for m in mods for p in m.parameters() if p.requires_grad]

    def base_outputs(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The frozen stage-1 models' sequences and predictions (deterministic: eval mode)."""
        with torch.no_grad():
            e = self.emotion_base(x, mask)
            p = self.personality_base(x, mask)
        return {
            "emotion_sequence": e["sequence"],
            "personality_sequence": p["sequence"],
            "base_emotion_logits": e["output"],
            "base_personality_scores": p["output"],
        }

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        base: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """`base` may carry precomputed :meth:`base_outputs` (then `x` is not used)."""
        if base is None:
            base = self.base_outputs(x, mask)
        e = self.emo_proj(base["emotion_sequence"])
        p = self.per_proj(base["personality_sequence"])
        for block in self.emo_blocks:
            e = block(e, p, mask)
        for block in self.per_blocks:
            p = block(p, e, mask)
        fe, fp = masked_mean(e, mask), masked_mean(p, mask)
        pooled = torch.cat([fe, fp], dim=-1)
        logits = 0.5 * (self.emotion_head(pooled) + base["base_emotion_logits"])
        new_scores = activate_personality(
            self.personality_head(pooled), self.cfg.personality_activation
        )
        scores = 0.5 * (new_scores + base["base_personality_scores"])
        return {
            "emotion_logits": logits,
            "personality_scores": scores,
            "emotion_features": fe,
            "personality_features": fp,
            "base_emotion_logits": base["base_emotion_logits"],
            "base_personality_scores": base["base_personality_scores"],
        }
