"""Stage 3: multimodal fusion of the stage-2 outputs (the reference's ablation-capable model).

Per sample and modality the input is the stage-2 feature vector (emotion ‖ personality
features), the 7 stage-2 emotion logits, the 5 stage-2 trait scores and a present flag.
Absent modalities are masked out of every step (graph attention, query attention and the
prediction means); a sample with no modality at all still gets a (prior-like) prediction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mepr.models.encoders import safe_mask
from mepr.models.unimodal import N_EMOTIONS, N_TRAITS


@dataclass(frozen=True)
class FusionConfig:
    """Architecture of the fusion model; each switch turns one component off (ablations)."""

    modalities: tuple[str, ...]  # node order: the order of logits/scores/present columns
    input_dims: tuple[int, ...]  # stage-2 feature width per modality
    hidden_dim: int
    heads: int
    dropout: float
    graph_attention: bool  # off: fused nodes = projected nodes
    cross_attention: bool  # off: task vectors = masked mean of the nodes
    predict_projection_emotion: bool  # add Linear(mean stage-2 logits)
    predict_projection_personality: bool  # add Linear(mean stage-2 scores)
    guide_emotion: bool  # logits = (head + cos(guide bank)) / 2
    guide_personality: bool  # scores = (sigmoid(head) + sigmoid(cos)) / 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        object.__setattr__(self, "input_dims", tuple(int(d) for d in self.input_dims))
        if len(self.modalities) != len(self.input_dims) or not self.modalities:
            raise ValueError("FusionConfig needs one input width per modality (at least one)")

    def to_dict(self) -> dict:
        return asdict(self)


class ModalityProjector(nn.Module):
    """Linear - ReLU - Dropout - LayerNorm to the hidden size, then a residual bottleneck adapter."""

    def __init__(self, in_dim: int, dim: int, dropout: float):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Linear(in_dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.LayerNorm(dim)
        )
        self.adapter = nn.Sequential(
            nn.Linear(dim, dim // 2), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim // 2, dim)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return self.norm(h + self.adapter(h))


class GraphAttention(nn.Module):
    """Single-head graph attention over modality nodes; edges only between present nodes."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.W = nn.Linear(dim, dim, bias=False)
        self.a_src = nn.Parameter(torch.empty(dim))
        self.a_dst = nn.Parameter(torch.empty(dim))
        bound = 1.414 * (6.0 / (2 * dim + 1)) ** 0.5  # xavier-uniform, gain 1.414
        nn.init.uniform_(self.a_src, -bound, bound)
        nn.init.uniform_(self.a_dst, -bound, bound)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        wh = self.W(x)  # (B, N, D)
        e = (wh @ self.a_src).unsqueeze(2) + (wh @ self.a_dst).unsqueeze(1)  # (B, N, N)
        e = F.leaky_relu(e, 0.2)
        e = e.masked_fill(~safe_mask(present).unsqueeze(1), float("-inf"))
        alpha = self.dropout(torch.softmax(e, dim=-1))
        return alpha @ wh


class FusionModel(nn.Module):
    def __init__(self, cfg: FusionConfig):
        super().__init__()
        self.cfg = cfg
        self.modalities = list(cfg.modalities)
        d = cfg.hidden_dim
        self.projectors = nn.ModuleDict(
            {
                m: ModalityProjector(dim, d, cfg.dropout)
                for m, dim in zip(cfg.modalities, cfg.input_dims, strict=True)
            }
        )
        self.graph = GraphAttention(d, cfg.dropout) if cfg.graph_attention else None
        self.queries = nn.Parameter(torch.randn(2, d))  # 0: emotion, 1: personality
        self.attn = (
            nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
            if cfg.cross_attention
            else None
        )
        self.emotion_predict_proj = (
            nn.Linear(N_EMOTIONS, d) if cfg.predict_projection_emotion else None
        )
        self.personality_predict_proj = (
            nn.Linear(N_TRAITS, d) if cfg.predict_projection_personality else None
        )
        self.emotion_head = nn.Linear(d, N_EMOTIONS)
        self.personality_head = nn.Linear(d, N_TRAITS)
        self.emotion_guide = nn.Parameter(torch.randn(N_EMOTIONS, d)) if cfg.guide_emotion else None
        self.personality_guide = (
            nn.Parameter(torch.randn(N_TRAITS, d)) if cfg.guide_personality else None
        )

    def shared_parameters(self) -> list[nn.Parameter]:
        """The trunk both tasks' losses reach (GradNorm measures gradients here)."""
        params = list(self.projectors.parameters()) + [self.queries]
        for m in (self.graph, self.attn):
            if m is not None:
                params += list(m.parameters())
        return params

    def forward(
        self,
        features: dict[str, torch.Tensor],
        logits: torch.Tensor,
        scores: torch.Tensor,
        present: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """features: modality -> (B, F_m); logits (B, M, 7); scores (B, M, 5); present (B, M).

        Modalities are in ``self.modalities`` order.  Returns ``emotion_logits`` (B, 7) and
        ``personality_scores`` (B, 5) in [0, 1].
        """
        x = torch.stack([self.projectors[m](features[m]) for m in self.modalities], dim=1)
        present = present.bool()
        nodes = self.graph(x, present) if self.graph is not None else x
        b = nodes.shape[0]
        if self.attn is not None:
            q = self.queries.unsqueeze(0).expand(b, -1, -1)
            ctx, _ = self.attn(
                q, nodes, nodes, key_padding_mask=~safe_mask(present), need_weights=False
            )
            r_e, r_p = ctx[:, 0], ctx[:, 1]
        else:
            w = present.to(nodes.dtype).unsqueeze(-1)
            pooled = (nodes * w).sum(1) / w.sum(1).clamp_min(1.0)
            r_e = r_p = pooled
        w = present.to(logits.dtype).unsqueeze(-1)
        denom = w.sum(1).clamp_min(1.0)
        if self.emotion_predict_proj is not None:
            r_e = r_e + self.emotion_predict_proj((logits * w).sum(1) / denom)
        if self.personality_predict_proj is not None:
            r_p = r_p + self.personality_predict_proj((scores * w).sum(1) / denom)
        emo = self.emotion_head(r_e)
        if self.emotion_guide is not None:
            cos = F.cosine_similarity(r_e.unsqueeze(1), self.emotion_guide.unsqueeze(0), dim=-1)
            emo = 0.5 * (emo + cos)
        per = torch.sigmoid(self.personality_head(r_p))
        if self.personality_guide is not None:
            cos = F.cosine_similarity(r_p.unsqueeze(1), self.personality_guide.unsqueeze(0), dim=-1)
            per = 0.5 * (per + torch.sigmoid(cos))
        return {"emotion_logits": emo, "personality_scores": per}
