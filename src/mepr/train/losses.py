"""Losses: supervised emotion / personality terms, pseudo-label terms, GradNorm weighting.

Row masks make every term label-aware: an emotion row (MOSEI-like) gives no trait loss and
a personality row (FIv2-like) no emotion loss; the missing task of a row may instead get a
pseudo-label (semi-supervised term) when the teacher is confident.

Components are named ``emo_sup``, ``per_sup``, ``emo_ssl`` and ``per_ssl``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mepr.config.train import GradNormParams, SslParams

SUP_KEYS: tuple[str, ...] = ("emo_sup", "per_sup")
SSL_KEYS: tuple[str, ...] = ("emo_ssl", "per_ssl")


def emotion_class(intensities: torch.Tensor) -> torch.Tensor:
    """The 7-class CE target of intensity rows: argmax, ties to the lowest index (neutral first)."""
    return torch.argmax(intensities, dim=-1)


def emotion_sup_loss(logits: torch.Tensor, target: torch.Tensor, has: torch.Tensor):
    """CE over rows with an emotion label (target: class index); None when there are none."""
    if not bool(has.any()):
        return None
    return F.cross_entropy(logits[has], target[has])


def personality_sup_loss(scores: torch.Tensor, traits: torch.Tensor, has: torch.Tensor):
    """MAE over rows with trait labels; None when there are none."""
    if not bool(has.any()):
        return None
    return (scores[has] - traits[has]).abs().mean()


def emotion_ssl_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, unlabeled: torch.Tensor, threshold: float
):
    """CE to the teacher's argmax on unlabelled rows whose teacher max-softmax > threshold."""
    if not bool(unlabeled.any()):
        return None
    probs = torch.softmax(teacher_logits.detach()[unlabeled], dim=-1)
    conf, pseudo = probs.max(dim=-1)
    keep = conf > threshold
    if not bool(keep.any()):
        return None
    return F.cross_entropy(logits[unlabeled][keep], pseudo[keep])


def personality_ssl_loss(
    scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    unlabeled: torch.Tensor,
    threshold: float,
    target: str = "binary",
):
    """Pseudo-label loss on the traits whose teacher score is confident (> t or < 1 - t).

    ``binary`` (the reference): BCE to the binarised teacher score (1 if > 0.5).
    ``soft``: MAE to the teacher score itself (distillation; no pull towards 0 / 1).
    """
    if not bool(unlabeled.any()):
        return None
    t = teacher_scores.detach()[unlabeled].clamp(0.0, 1.0)
    keep = (t > threshold) | (t < 1.0 - threshold)
    if not bool(keep.any()):
        return None
    s = scores[unlabeled]
    if target == "soft":
        err = (s - t).abs()
    elif target == "binary":
        pseudo = (t > 0.5).to(scores.dtype)
        err = F.binary_cross_entropy(s.clamp(1e-6, 1.0 - 1e-6), pseudo, reduction="none")
    else:
        raise ValueError(f"unknown personality pseudo-label target '{target}'")
    return (err * keep).sum() / keep.sum()


def loss_components(
    out_logits: torch.Tensor,
    out_scores: torch.Tensor,
    emotion_target: torch.Tensor,
    has_emotion: torch.Tensor,
    traits: torch.Tensor,
    has_traits: torch.Tensor,
    ssl: SslParams | None = None,
    teacher_logits: torch.Tensor | None = None,
    teacher_scores: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The present loss components of one batch (absent ones are left out)."""
    comps = {
        "emo_sup": emotion_sup_loss(out_logits, emotion_target, has_emotion),
        "per_sup": personality_sup_loss(out_scores, traits, has_traits),
    }
    if ssl is not None and ssl.enabled:
        if teacher_logits is not None:
            comps["emo_ssl"] = emotion_ssl_loss(
                out_logits, teacher_logits, ~has_emotion, ssl.threshold_emotion
            )
        if teacher_scores is not None:
            comps["per_ssl"] = personality_ssl_loss(
                out_scores,
                teacher_scores,
                ~has_traits,
                ssl.threshold_personality,
                ssl.personality_target,
            )
    return {k: v for k, v in comps.items() if v is not None and bool(torch.isfinite(v))}


@dataclass
class Wallet:
    """A group of loss weights that share a fixed budget (their sum)."""

    keys: tuple[str, ...]
    weights: dict[str, float]
    budget: float
    alpha: float
    lr: float

    def __post_init__(self) -> None:
        total = sum(self.weights.values())
        self.weights = {k: self.budget * self.weights[k] / total for k in self.keys}


class LossWeighting:
    """Static weights, or the modified GradNorm of the reference with two wallets.

    GradNorm (Chen et al. 2018), per wallet and per batch, over its active components i
    (present in the batch, with a recorded first loss L_i(0)):
      g_i = ||dL_i/dθ_shared||,  G_i = w_i g_i,  r_i = L_i / L_i(0),
      target_i = mean(G) (r_i / mean(r))^alpha   (held constant),
      w_i <- max(w_i - lr * sign(G_i - target_i) g_i, floor)     (d/dw_i of sum_i |G_i - target_i|)
    and the active weights are rescaled to keep their previous sum, so the wallet always
    sums to its budget (supervised: 2; SSL: 2 * lambda_ssl) and absent components keep theirs.
    The total loss is sum_i w_i L_i with the weights as constants.
    """

    def __init__(self, gradnorm: GradNormParams, ssl: SslParams):
        self.enabled = gradnorm.enabled
        self.floor = gradnorm.w_floor
        ssl_ratio = {"emo_ssl": ssl.weight_emotion, "per_ssl": ssl.weight_personality}
        if self.enabled:
            if sum(ssl_ratio.values()) <= 0:
                ssl_ratio = {"emo_ssl": 1.0, "per_ssl": 1.0}
            self.wallets = [
                Wallet(
                    SUP_KEYS,
                    {"emo_sup": 1.0, "per_sup": 1.0},
                    2.0,
                    gradnorm.alpha_sup,
                    gradnorm.w_lr_sup,
                ),
                Wallet(
                    SSL_KEYS,
                    ssl_ratio,
                    2.0 * gradnorm.lambda_ssl,
                    gradnorm.alpha_ssl,
                    gradnorm.w_lr_ssl,
                ),
            ]
        else:
            self.static = {"emo_sup": 1.0, "per_sup": 1.0, **ssl_ratio}
        self.initial: dict[str, float] = {}

    @property
    def weights(self) -> dict[str, float]:
        if not self.enabled:
            return dict(self.static)
        return {k: w for wallet in self.wallets for k, w in wallet.weights.items()}

    def update(self, comps: dict[str, torch.Tensor], shared: list[torch.Tensor]) -> None:
        """One GradNorm step on the weights (no-op for static weights)."""
        if not self.enabled:
            return
        for k, v in comps.items():
            if k not in self.initial:
                self.initial[k] = max(float(v.detach()), 1e-8)
        params = [p for p in shared if p.requires_grad]
        for wallet in self.wallets:
            active = [k for k in wallet.keys if k in comps and comps[k].requires_grad]
            if len(active) < 2 or not params:
                continue  # one component: its gradient is zero and the rescale is a no-op
            g = []
            for k in active:
                grads = torch.autograd.grad(comps[k], params, retain_graph=True, allow_unused=True)
                flat = [t.reshape(-1) for t in grads if t is not None]
                g.append(float(torch.linalg.vector_norm(torch.cat(flat))) if flat else 0.0)
            self._step(wallet, active, g, [float(comps[k].detach()) for k in active])

    def _step(self, wallet: Wallet, active: list[str], g: list[float], losses: list[float]):
        w = [wallet.weights[k] for k in active]
        big_g = [wi * gi for wi, gi in zip(w, g, strict=True)]
        r = [max(li, 1e-8) / self.initial[k] for li, k in zip(losses, active, strict=True)]
        g_mean, r_mean = sum(big_g) / len(big_g), sum(r) / len(r)
        before = sum(w)
        new = []
        for wi, gi, Gi, ri in zip(w, g, big_g, r, strict=True):
            target = g_mean * (ri / r_mean) ** wallet.alpha
            sign = (Gi > target) - (Gi < target)
            new.append(max(wi - wallet.lr * sign * gi, self.floor))
        scale = before / sum(new)
        for k, wi in zip(active, new, strict=True):
            wallet.weights[k] = wi * scale

    def total(self, comps: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = self.weights
        return sum(weights[k] * v for k, v in comps.items())
