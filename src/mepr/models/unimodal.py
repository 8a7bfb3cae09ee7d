"""Stage 1 (single-task unimodal) and stage 2 (cross-domain multi-task unimodal) models."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from mepr.labels import EMOTIONS, TRAITS
from mepr.models.encoders import AttentionBlock, build_encoder, masked_mean

N_EMOTIONS = len(EMOTIONS)
N_TRAITS = len(TRAITS)


def head(in_dim: int, hidden: int, n_out: int, dropout: float) -> nn.Sequential:
    """Prediction head: Linear - LayerNorm - GELU - Dropout - Linear (as the reference's fc_out)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.LayerNorm(hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_out),
    )


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

    def to_dict(self) -> dict:
        return asdict(self)


class UnimodalModel(nn.Module):
    """Stage 1: projection -> temporal encoder -> masked mean -> task head.

    Emotion: 7 logits (``output`` = logits).  Personality: 5 sigmoid scores in [0, 1].
    Also returns the encoded ``sequence`` (B, T, H) and the pooled ``features`` (B, H).
    """

    def __init__(self, cfg: UnimodalConfig):
        super().__init__()
        if cfg.task not in ("emotion", "personality"):
            raise ValueError(f"unknown task '{cfg.task}'")
        self.cfg = cfg
        h = cfg.hidden_dim
        self.proj = projection(cfg.in_dim, h, cfg.dropout)
        self.encoder = build_encoder(
            cfg.encoder,
            h,
            layers=cfg.layers,
            heads=cfg.heads,
            dropout=cfg.dropout,
            d_state=cfg.d_state,
            d_conv=cfg.d_conv,
            expand=cfg.expand,
        )
        n_out = N_EMOTIONS if cfg.task == "emotion" else N_TRAITS
        self.head = head(h, cfg.out_features, n_out, cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        seq = self.encoder(self.proj(x), mask)
        feats = masked_mean(seq, mask)
        out = self.head(feats)
        if self.cfg.task == "personality":
            out = torch.sigmoid(out)
        return {"sequence": seq, "features": feats, "output": out}


@dataclass(frozen=True)
class CrossConfig:
    """The stage-2 bridge of one modality (stored in its config.json)."""

    hidden_dim: int
    out_features: int
    heads: int
    layers: int
    dropout: float

    def to_dict(self) -> dict:
        return asdict(self)


def _attention_blocks(cfg: CrossConfig) -> nn.ModuleList:
    """One branch of the bridge: an attention block per layer."""
    return nn.ModuleList(
        AttentionBlock(cfg.hidden_dim, cfg.heads, cfg.dropout) for _ in range(cfg.layers)
    )


class CrossDomainModel(nn.Module):
    """Stage 2: the frozen stage-1 emotion and personality models of one modality, bridged.

    Both frozen models encode the clip; their sequences are projected to a common width H,
    then (per layer) the emotion branch attends to the personality branch and the
    personality branch attends to the updated emotion branch.  Heads read the concatenated
    time means; the final predictions are the mean of the new heads' and the frozen models'
    predictions (as in the reference).  Only the bridge is trainable.
    """

    def __init__(
        self, emotion_model: UnimodalModel, personality_model: UnimodalModel, cfg: CrossConfig
    ):
        super().__init__()
        if emotion_model.cfg.task != "emotion" or personality_model.cfg.task != "personality":
            raise ValueError("CrossDomainModel needs an emotion and a personality stage-1 model")
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
        self.emotion_head = head(2 * h, cfg.out_features, N_EMOTIONS, cfg.dropout)
        self.personality_head = head(2 * h, cfg.out_features, N_TRAITS, cfg.dropout)

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
        scores = 0.5 * (
            torch.sigmoid(self.personality_head(pooled)) + base["base_personality_scores"]
        )
        return {
            "emotion_logits": logits,
            "personality_scores": scores,
            "emotion_features": fe,
            "personality_features": fp,
            "base_emotion_logits": base["base_emotion_logits"],
            "base_personality_scores": base["base_personality_scores"],
        }
