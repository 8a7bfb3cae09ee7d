"""Losses: supervised emotion / personality terms, pseudo-label terms, GradNorm weighting.

Row masks make every term label-aware: an emotion row (MOSEI-like) gives no trait loss and
a personality row (FIv2-like) no emotion loss; the missing task of a row may instead get a
pseudo-label (semi-supervised term) when the teacher is confident.

Components are named ``emo_sup``, ``per_sup``, ``emo_ssl`` and ``per_ssl``.

Stage 1 uses :class:`SupervisedLoss` (``train.loss``); stages 2 and 3 use :class:`Objective`,
which is either the supervised + SSL terms under :class:`LossWeighting` (GradNorm), or, for
stage 2 with ``train.loss.cross_objective: weighted``, the two supervised terms with fixed
factors.  tests/test_parity_losses.py checks every option against the authors' numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mepr.config.train import GradNormParams, LossParams, SslParams, TrainParams

SUP_KEYS: tuple[str, ...] = ("emo_sup", "per_sup")
SSL_KEYS: tuple[str, ...] = ("emo_ssl", "per_ssl")


def emotion_class(intensities: torch.Tensor) -> torch.Tensor:
    """The 7-class CE target of intensity rows: argmax, ties to the lowest index (neutral first)."""
    return torch.argmax(intensities, dim=-1)


def class_weights_from(rows: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Emotion class weights from the training rows (N x 7 intensity rows as stored):
    w_c = (N - S_c) / S_c with S_c the column sum, as the authors weight their classes.

    A class with S_c = 0 gets weight 0 instead of their infinity: its target is 0 in every
    training row, so the weight never multiplies a training term, and 0 keeps losses finite."""
    r = torch.as_tensor(np.asarray(rows, dtype=np.float64))
    if r.ndim != 2 or len(r) == 0:
        raise ValueError("class weights need at least one training row of intensities")
    s = r.sum(0)
    w = torch.where(s > 0, (len(r) - s) / s.clamp_min(1e-300), torch.zeros_like(s))
    return w.float()


def emotion_sup_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    has: torch.Tensor,
    kind: str = "hard",
    class_weights: torch.Tensor | None = None,
):
    """The emotion term over rows with an emotion label; None when there are none.

    `target`: intensity rows (N x 7) or, for ``hard``, class indices.
    ``hard``: CE to the argmax class (with class weights: torch's weighted mean, normalised by
    the weights of the rows' classes).  ``soft``: the soft-target CE
    -sum_c w_c y_c log softmax(z)_c averaged over rows, y the row as stored (not renormalised),
    w_c = 1 without class weights."""
    if not bool(has.any()):
        return None
    return _emotion_term(logits[has], target[has], kind, class_weights)


def _emotion_term(z: torch.Tensor, y: torch.Tensor, kind: str, class_weights):
    w = None if class_weights is None else class_weights.to(z.device, z.dtype)
    if kind == "hard":
        return F.cross_entropy(z, y if y.ndim == 1 else emotion_class(y), weight=w)
    if kind != "soft":
        raise ValueError(f"unknown emotion loss '{kind}'")
    if y.ndim != 2:
        raise ValueError("the soft emotion loss needs intensity rows, not class indices")
    per_class = -F.log_softmax(z, dim=-1) * y.to(z.dtype)
    if w is not None:
        per_class = per_class * w
    return per_class.sum(-1).mean()


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
    emotion_kind: str = "hard",
    class_weights: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The present loss components of one batch (absent ones are left out); `emotion_target`
    holds intensity rows or class indices (see :func:`emotion_sup_loss`)."""
    comps = {
        "emo_sup": emotion_sup_loss(
            out_logits, emotion_target, has_emotion, emotion_kind, class_weights
        ),
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


@dataclass(frozen=True)
class SupervisedLoss:
    """Stage 1's loss (``train.loss``): the emotion term times `emotion_weight`, or the trait
    MAE times `personality_weight`, over every row of a batch."""

    emotion_kind: str = "hard"
    emotion_weight: float = 1.0
    personality_weight: float = 1.0
    class_weights: torch.Tensor | None = None

    @classmethod
    def from_params(cls, loss: LossParams, train_rows: np.ndarray | None = None) -> SupervisedLoss:
        """`train_rows`: the training split's emotion rows, which class weights come from
        (a personality model has none, and needs none)."""
        if loss.emotion not in ("hard", "soft"):
            raise ValueError(f"unknown train.loss.emotion '{loss.emotion}'")
        weights = None
        if loss.class_weights and train_rows is not None:
            weights = class_weights_from(train_rows)
        return cls(loss.emotion, loss.emotion_weight, loss.personality_weight, weights)

    def emotion(self, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.emotion_weight * _emotion_term(
            logits, rows, self.emotion_kind, self.class_weights
        )

    def personality(self, scores: torch.Tensor, traits: torch.Tensor) -> torch.Tensor:
        return self.personality_weight * (scores - traits).abs().mean()


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
    (present in the batch; L_i(0) is the first value a component had):
      g_i = ||dL_i/dθ_shared||,  G_i = w_i g_i,  r_i = L_i / L_i(0),
      target_i = mean(G) (r_i / mean(r))^alpha   (held constant),
      w_i <- max(w_i - lr * sign(G_i - target_i) g_i, floor)     (d/dw_i of sum_i |G_i - target_i|)
    then the active weights are rescaled (`gradnorm.rescale`): ``keep_sum`` to their previous
    sum, so the wallet keeps its budget (supervised: 2; SSL: 2 * lambda_ssl) and a lone active
    component is left as is; ``budget`` (the reference) to the whole budget, a lone component
    included, so absent components' weights come on top.  Absent components keep theirs.
    The total loss is sum_i w_i L_i with the weights as constants.
    """

    def __init__(
        self,
        gradnorm: GradNormParams,
        ssl: SslParams,
        static: dict[str, float] | None = None,
    ):
        """`static`: fixed weights instead (GradNorm off, whatever `gradnorm` says)."""
        self.enabled = gradnorm.enabled and static is None
        self.floor = gradnorm.w_floor
        self.rescale = gradnorm.rescale
        if self.rescale not in ("keep_sum", "budget"):
            raise ValueError(f"unknown train.gradnorm.rescale '{self.rescale}'")
        ssl_ratio = {"emo_ssl": ssl.weight_emotion, "per_ssl": ssl.weight_personality}
        if self.enabled:
            if gradnorm.ssl_init == "even" or sum(ssl_ratio.values()) <= 0:
                ssl_ratio = {"emo_ssl": 1.0, "per_ssl": 1.0}
            elif gradnorm.ssl_init != "ratio":
                raise ValueError(f"unknown train.gradnorm.ssl_init '{gradnorm.ssl_init}'")
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
            self.static = static or {"emo_sup": 1.0, "per_sup": 1.0, **ssl_ratio}
        self.initial: dict[str, float] = {}

    @property
    def weights(self) -> dict[str, float]:
        if not self.enabled:
            return dict(self.static)
        return {k: w for wallet in self.wallets for k, w in wallet.weights.items()}

    def update(self, comps: dict[str, torch.Tensor], shared: Sequence[torch.Tensor]) -> None:
        """One GradNorm step on the weights (no-op for static weights)."""
        if not self.enabled:
            return
        for k, v in comps.items():
            if k not in self.initial:
                self.initial[k] = max(float(v.detach()), 1e-8)
        params = [p for p in shared if p.requires_grad]
        for wallet in self.wallets:
            active = [k for k in wallet.keys if k in comps and comps[k].requires_grad]
            if not active or not params:
                continue
            if len(active) == 1:
                if self.rescale == "keep_sum":
                    continue  # the sign term is zero and the rescale keeps the weight: no-op
                g = [0.0]  # sign(G - mean(G)) = 0 whatever the norm: no need to compute it
            else:
                g = [self._grad_norm(comps[k], params) for k in active]
            self._step(wallet, active, g, [float(comps[k].detach()) for k in active])

    @staticmethod
    def _grad_norm(loss: torch.Tensor, params: list[torch.Tensor]) -> float:
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        flat = [t.reshape(-1) for t in grads if t is not None]
        return float(torch.linalg.vector_norm(torch.cat(flat))) if flat else 0.0

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
        scale = (wallet.budget if self.rescale == "budget" else before) / sum(new)
        for k, wi in zip(active, new, strict=True):
            wallet.weights[k] = wi * scale

    def total(self, comps: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = self.weights
        return sum(weights[k] * v for k, v in comps.items())


def shared_parameters(model: torch.nn.Module, kind: str) -> list[torch.nn.Parameter]:
    """GradNorm's parameter set (`gradnorm.shared`): ``bridge``, the trunk both tasks reach
    (`model.shared_parameters()`), or ``all`` trainable parameters, heads included (the
    reference: its name filter keeps every parameter of its fusion model)."""
    if kind == "bridge":
        return list(model.shared_parameters())
    if kind == "all":
        return [p for p in model.parameters() if p.requires_grad]
    raise ValueError(f"unknown train.gradnorm.shared '{kind}'")


class Objective:
    """The loss of one two-task step (stages 2 and 3): components, weights, total.

    ``ssl_gradnorm``: hard CE + MAE + the SSL terms, weighted by :class:`LossWeighting`.
    ``weighted`` (stage 2 with ``train.loss.cross_objective: weighted``, the authors' released
    video trainer): the ``train.loss`` emotion term times emotion_weight + the trait MAE times
    personality_weight, no SSL, no GradNorm.  `emotion_train_rows` (the training split's
    emotion rows) give the class weights when ``train.loss.class_weights`` is set.
    """

    def __init__(
        self, params: TrainParams, stage: str, emotion_train_rows: np.ndarray | None = None
    ):
        if stage not in ("cross", "fusion"):
            raise ValueError(f"no two-task objective for stage '{stage}'")
        if params.loss.cross_objective not in ("ssl_gradnorm", "weighted"):
            raise ValueError(f"unknown train.loss.cross_objective '{params.loss.cross_objective}'")
        self.shared = params.gradnorm.shared
        weighted = stage == "cross" and params.loss.cross_objective == "weighted"
        self.kind = "weighted" if weighted else "ssl_gradnorm"
        if weighted:
            sup = SupervisedLoss.from_params(params.loss, emotion_train_rows)
            self.emotion_kind, self.class_weights = sup.emotion_kind, sup.class_weights
            self.ssl: SslParams | None = None
            factors = {"emo_sup": sup.emotion_weight, "per_sup": sup.personality_weight}
            self.weighting = LossWeighting(params.gradnorm, params.ssl, static=factors)
        else:
            self.emotion_kind, self.class_weights = "hard", None
            self.ssl = params.ssl
            self.weighting = LossWeighting(params.gradnorm, params.ssl)

    @property
    def weights(self) -> dict[str, float]:
        return self.weighting.weights

    def components(
        self,
        out: dict[str, torch.Tensor],
        targets: Sequence[torch.Tensor],
        teacher: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
    ) -> dict[str, torch.Tensor]:
        """`targets`: emotion rows, has_emotion, traits, has_traits; `teacher`: SSL targets."""
        return loss_components(
            out["emotion_logits"],
            out["personality_scores"],
            *targets,
            ssl=self.ssl,
            teacher_logits=teacher[0],
            teacher_scores=teacher[1],
            emotion_kind=self.emotion_kind,
            class_weights=self.class_weights,
        )

    def update(self, comps: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
        if self.weighting.enabled:
            self.weighting.update(comps, shared_parameters(model, self.shared))

    def total(self, comps: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.weighting.total(comps)
