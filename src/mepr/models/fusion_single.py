"""Stage 3, one task: the single-task fusion of the stage-2 outputs (the reference's
``SingleTaskAsymModel``), beside the multi-task :class:`mepr.models.fusion.FusionModel`.

Inputs are those of the multi-task fusion (per modality the stage-2 feature vector
emotion ‖ personality, the stage-2 logits and scores, a present flag).  With
``feature_slice="own"`` each modality's vector is cut to its own task's part, at that
modality's emotion width (the widths differ per modality, hence the per-modality split).

One model predicts one task: projected nodes -> graph attention -> attention from one learned
query -> + a projection of the mean stage-2 prediction of that task -> head; emotion logits
are averaged with the cosine to a guide bank, trait scores go through a sigmoid.  Absent
modalities are masked out everywhere, the prediction mean included (the reference averages
every modality given to it, and leaves absent ones out of the batch instead).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mepr.models.encoders import safe_mask
from mepr.models.fusion import GraphAttention, ModalityProjector
from mepr.models.unimodal import N_EMOTIONS, N_TRAITS

TASK_OUTPUTS = {
    "emotion": ("emotion_logits", N_EMOTIONS),
    "personality": ("personality_scores", N_TRAITS),
}
FEATURE_SLICES = ("both", "own")


@dataclass(frozen=True)
class SingleTaskFusionConfig:
    """Architecture of one single-task fusion model."""

    task: str  # emotion | personality
    modalities: tuple[str, ...]  # node order: the order of logits/scores/present columns
    input_dims: tuple[int, ...]  # stage-2 feature width per modality (emotion ‖ personality)
    emotion_dims: tuple[int, ...]  # per modality: where its emotion part ends
    feature_slice: str  # both | own (the task's part of each vector only)
    hidden_dim: int
    heads: int
    dropout: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        object.__setattr__(self, "input_dims", tuple(int(d) for d in self.input_dims))
        object.__setattr__(self, "emotion_dims", tuple(int(d) for d in self.emotion_dims))
        if self.task not in TASK_OUTPUTS:
            raise ValueError(f"unknown fusion task '{self.task}' (emotion | personality)")
        if self.feature_slice not in FEATURE_SLICES:
            raise ValueError(f"unknown feature_slice '{self.feature_slice}' (both | own)")
        n = len(self.modalities)
        if not n or len(self.input_dims) != n or len(self.emotion_dims) != n:
            raise ValueError("SingleTaskFusionConfig needs one width and one split per modality")
        for m, total, k in zip(self.modalities, self.input_dims, self.emotion_dims, strict=True):
            if not 0 < k < total:
                raise ValueError(f"{m}: emotion width {k} must split its {total} features")

    def slice_of(self, i: int) -> slice:
        """The columns of modality i's feature vector that the model reads."""
        if self.feature_slice == "both":
            return slice(None)
        k = self.emotion_dims[i]
        return slice(None, k) if self.task == "emotion" else slice(k, None)

    def projector_dims(self) -> tuple[int, ...]:
        """The width each modality's projector takes."""
        return tuple(len(range(total)[self.slice_of(i)]) for i, total in enumerate(self.input_dims))

    def to_dict(self) -> dict:
        return asdict(self)


class SingleTaskFusionModel(nn.Module):
    def __init__(self, cfg: SingleTaskFusionConfig):
        super().__init__()
        self.cfg = cfg
        self.modalities = list(cfg.modalities)
        self.output_key, n_out = TASK_OUTPUTS[cfg.task]
        d = cfg.hidden_dim
        self.projectors = nn.ModuleDict(
            {
                m: ModalityProjector(dim, d, cfg.dropout)
                for m, dim in zip(cfg.modalities, cfg.projector_dims(), strict=True)
            }
        )
        self.graph = GraphAttention(d, cfg.dropout)
        self.query = nn.Parameter(torch.randn(1, d))
        self.attn = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.predict_proj = nn.Linear(n_out, d)
        self.head = nn.Linear(d, n_out)
        self.guide = nn.Parameter(torch.randn(n_out, d)) if cfg.task == "emotion" else None

    def shared_parameters(self) -> list[nn.Parameter]:
        """The trunk below the head (GradNorm's ``bridge`` parameter set)."""
        params = list(self.projectors.parameters()) + [self.query]
        return params + list(self.graph.parameters()) + list(self.attn.parameters())

    def forward(
        self,
        features: dict[str, torch.Tensor],
        logits: torch.Tensor,
        scores: torch.Tensor,
        present: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """features: modality -> (B, F_m) (the full stage-2 vectors); logits (B, M, 7);
        scores (B, M, 5); present (B, M), in ``self.modalities`` order.  Returns the task's
        output only: ``emotion_logits`` (B, 7) or ``personality_scores`` (B, 5) in [0, 1]."""
        x = torch.stack(
            [
                self.projectors[m](features[m][:, self.cfg.slice_of(i)])
                for i, m in enumerate(self.modalities)
            ],
            dim=1,
        )
        present = present.bool()
        nodes = self.graph(x, present)
        q = self.query.unsqueeze(0).expand(nodes.shape[0], -1, -1)
        ctx, _ = self.attn(
            q, nodes, nodes, key_padding_mask=~safe_mask(present), need_weights=False
        )
        rep = ctx[:, 0]
        stage2 = logits if self.cfg.task == "emotion" else scores
        w = present.to(stage2.dtype).unsqueeze(-1)
        rep = rep + self.predict_proj((stage2 * w).sum(1) / w.sum(1).clamp_min(1.0))
        out = self.head(rep)
        if self.guide is None:
            return {self.output_key: torch.sigmoid(out)}
        cos = F.cosine_similarity(rep.unsqueeze(1), self.guide.unsqueeze(0), dim=-1)
        return {self.output_key: 0.5 * (out + cos)}
