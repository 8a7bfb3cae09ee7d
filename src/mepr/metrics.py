"""Evaluation measures for emotion (multi-label) and personality (regression) outputs.

Pure numpy.  The behaviour follows the authors' ``utils/measures.py`` and the metric code in
``training/train.py`` of SSL-MEPR; where the reference is undefined (it divides by zero or
lets scikit-learn decide) the convention chosen here is documented on the function.

Emotion
    The model emits a softmax over :data:`mepr.labels.EMOTIONS` (index 0 is neutral).  The
    reference turns it into six binary decisions: a clip is *neutral-only* (no emotion) when
    ``p(neutral) >= 1 - 1/7``; otherwise emotion ``i`` is present when ``p_i >= 1/7``.
    Each emotion is then scored as a binary task (present vs absent).

Personality
    Five traits in ``[0, 1]`` (:data:`mepr.labels.TRAITS`): ``ACC = 1 - MAE`` and Lin's
    concordance correlation coefficient (CCC) per trait.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from mepr.labels import EMOTIONS, TRAITS

# The reference writes the neutral threshold as ``1 - 1/7``; in float64 that is one ulp
# *above* ``6/7`` (0.8571428571428572 vs 0.8571428571428571), so keep the exact expression.
NEUTRAL_THRESHOLD: float = 1 - 1 / 7
EMOTION_THRESHOLD: float = 1 / 7

_N_EMO = len(EMOTIONS)  # 7, neutral included
_N_TRAITS = len(TRAITS)


# ─────────────────────────────── validation ────────────────────────────────


def _as_2d_float(x: Any, name: str, widths: tuple[int, ...]) -> np.ndarray:
    """Return ``x`` as a finite 2-D float array with a width in ``widths``, else raise."""
    arr = np.asarray(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[1] not in widths:
        want = " or ".join(f"(N, {w})" for w in widths)
        raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: empty input (N = 0); metrics are undefined")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf; drop unlabelled rows first")
    return arr


def _same_rows(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{na} has {a.shape[0]} rows but {nb} has {b.shape[0]}")


def softmax(logits: np.ndarray, *, float64: bool = False) -> np.ndarray:
    """Softmax over the last axis: subtract the row max, exp, divide by the row sum.

    Computed in the input's own dtype; with ``float64`` it is computed in float64 and the
    result is cast back to float32 (the probabilities `mepr.predict` writes).
    """
    x = logits.astype(np.float64) if float64 else logits
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p.astype(np.float32) if float64 else p


# ─────────────────────────────── emotion ────────────────────────────────


def emotion_decisions(probs: np.ndarray) -> np.ndarray:
    """Binary emotion decisions from a (N, 7) softmax over ``EMOTIONS``.

    Returns (N, 6) bool over ``EMOTIONS[1:]``.  Row is all False when
    ``p(neutral) >= 1 - 1/7``; otherwise emotion ``i`` is True iff ``p_i >= 1/7``.
    Both comparisons are inclusive, as in the reference.  Comparisons run in the input's
    float dtype (float32 probabilities compare against float32-rounded thresholds, which is
    what the reference does with numpy arrays from torch).
    """
    p = _as_2d_float(probs, "probs", (_N_EMO,))
    neutral_only = p[:, 0] >= NEUTRAL_THRESHOLD
    present = p[:, 1:] >= EMOTION_THRESHOLD
    present[neutral_only] = False
    return present


def emotion_targets(intensities: np.ndarray) -> np.ndarray:
    """Binary targets from (N, 7) or (N, 6) emotion intensities: present iff intensity > 0.

    A 7-column input is taken in ``EMOTIONS`` order and its neutral column 0 is dropped.
    Returns (N, 6) bool.  NaN is rejected (the reference silently maps it to absent).
    """
    y = _as_2d_float(intensities, "intensities", (_N_EMO, _N_EMO - 1))
    if y.shape[1] == _N_EMO:
        y = y[:, 1:]
    return y > 0


def _binary_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Column-wise binary scores for (N, K) bool arrays; each value is a (K,) array.

    Conventions (scikit-learn ``classification_report(..., zero_division=0)``, which the
    reference uses): the classes averaged over are those occurring in the targets *or* the
    predictions of that column; a class with no true samples has recall 0.
    """
    tp = np.sum(pred & true, axis=0).astype(np.float64)
    fp = np.sum(pred & ~true, axis=0).astype(np.float64)
    fn = np.sum(~pred & true, axis=0).astype(np.float64)
    tn = np.sum(~pred & ~true, axis=0).astype(np.float64)
    pos, neg = tp + fn, tn + fp  # P, N
    pos_seen = (pos + fp) > 0  # positive class occurs in targets or predictions
    neg_seen = (neg + fn) > 0
    n_seen = pos_seen.astype(np.float64) + neg_seen  # >= 1 because N >= 1 rows

    with np.errstate(divide="ignore", invalid="ignore"):
        rec_pos = np.where(pos > 0, tp / pos, 0.0)
        rec_neg = np.where(neg > 0, tn / neg, 0.0)
        f1_pos = np.where(pos_seen, 2 * tp / (2 * tp + fp + fn), 0.0)
        f1_neg = np.where(neg_seen, 2 * tn / (2 * tn + fn + fp), 0.0)
        uar = (np.where(pos_seen, rec_pos, 0.0) + np.where(neg_seen, rec_neg, 0.0)) / n_seen
        f1 = (f1_pos + f1_neg) / n_seen
        both = (pos > 0) & (neg > 0)
        wacc = np.where(both, (tp * neg / pos + tn) / (2 * neg), uar)
    return {"WACC": wacc, "F1": f1, "UAR": uar, "support": pos}


def emotion_metrics(probs: np.ndarray, intensities: np.ndarray) -> dict[str, Any]:
    """Per-emotion and mean WACC, macro F1 and UAR of :func:`emotion_decisions` vs targets.

    * WACC = (TP·N/P + TN) / (2N), P = #positives, N = #negatives.  When P = 0 or N = 0 the
      formula is undefined (the reference has no WACC); it is then set equal to UAR, so
      WACC == UAR on every column (they are the same quantity when P, N > 0).
    * F1 = mean of the F1 of the positive and negative class (macro F1); UAR = mean recall
      of both classes.  Degenerate columns follow the reference's scikit-learn behaviour:
      average over the classes seen in targets or predictions, recall 0 for a class with no
      true samples.  E.g. no positives anywhere → F1 = UAR = 1; no true positives but some
      predicted → UAR = TN / (2N).

    Returns ``{'mWACC', 'mF1', 'mUAR', 'per_class': {emotion: {'WACC', 'F1', 'UAR',
    'support'}}}``; scores are floats, ``support`` is the int number of positive targets.
    """
    pred = emotion_decisions(probs)
    true = emotion_targets(intensities)
    _same_rows(pred, true, "probs", "intensities")
    s = _binary_scores(pred, true)
    per_class = {
        name: {
            "WACC": float(s["WACC"][k]),
            "F1": float(s["F1"][k]),
            "UAR": float(s["UAR"][k]),
            "support": int(s["support"][k]),
        }
        for k, name in enumerate(EMOTIONS[1:])
    }
    return {
        "mWACC": float(np.mean(s["WACC"])),
        "mF1": float(np.mean(s["F1"])),
        "mUAR": float(np.mean(s["UAR"])),
        "per_class": per_class,
    }


# ─────────────────────────────── personality ────────────────────────────────


def _ccc(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Column-wise Lin's CCC with population (1/N) moments; 0.0 where undefined.

    CCC = 2·cov / (var_t + var_p + (mean_t − mean_p)²).  The denominator is zero only when
    both columns are constant and equal; the reference then yields NaN, here 0.0.
    A column that is exactly constant gets exactly zero variance and covariance (no
    rounding noise from its mean), so constant predictions score 0.
    """
    mp, mt = pred.mean(axis=0), true.mean(axis=0)
    cp, ct = pred - mp, true - mt
    cp[:, np.ptp(pred, axis=0) == 0] = 0.0
    ct[:, np.ptp(true, axis=0) == 0] = 0.0
    var_p, var_t = np.mean(cp**2, axis=0), np.mean(ct**2, axis=0)
    cov = np.mean(cp * ct, axis=0)
    denom = var_t + var_p + (mt - mp) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2 * cov / denom, 0.0)


def personality_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Per-trait ACC = 1 − MAE and CCC for (N, 5) trait scores in ``TRAITS`` order.

    Returns ``{'mACC', 'mCCC', 'CCC_pooled', 'per_class': {trait: {'ACC', 'CCC'}}}``.
    ``mCCC`` is the mean of the per-trait CCCs.  ``CCC_pooled`` is the CCC of all N·5 values
    flattened together, which is what the reference's evaluation loop actually reports as
    "CCC" (it calls its ``ccc`` on the whole matrix) and feeds into model selection.
    """
    p = _as_2d_float(pred, "pred", (_N_TRAITS,)).astype(np.float64)
    t = _as_2d_float(target, "target", (_N_TRAITS,)).astype(np.float64)
    _same_rows(p, t, "pred", "target")
    acc = 1.0 - np.mean(np.abs(p - t), axis=0)
    ccc = _ccc(p, t)
    pooled = _ccc(p.reshape(-1, 1), t.reshape(-1, 1))[0]
    return {
        "mACC": float(np.mean(acc)),
        "mCCC": float(np.mean(ccc)),
        "CCC_pooled": float(pooled),
        "per_class": {
            name: {"ACC": float(acc[k]), "CCC": float(ccc[k])} for k, name in enumerate(TRAITS)
        },
    }


# ─────────────────────────────── model selection ────────────────────────────────


def selection_score(
    emotion: dict[str, Any] | None,
    personality: dict[str, Any] | None,
    kind: Literal["mean_combo", "wacc_acc"] = "mean_combo",
) -> float:
    """Scalar used to pick the best checkpoint (higher is better).

    ``kind="mean_combo"`` (default) is the reference's selection metric::

        mean_emo   = (mF1 + mUAR) / 2
        mean_pkl   = (mACC + CCC_pooled) / 2
        mean_combo = (mean_emo + mean_pkl) / 2

    ``kind="wacc_acc"`` uses ``mWACC`` and ``mACC`` instead of the two block means.
    With only one task's dict given, that task's block score is returned (the reference,
    in multi-task mode, returns half of it instead, which ranks checkpoints identically).
    Inputs are the dicts from :func:`emotion_metrics` / :func:`personality_metrics`.
    """
    if emotion is None and personality is None:
        raise ValueError("selection_score needs emotion and/or personality metrics")
    if kind == "mean_combo":
        emo = None if emotion is None else (emotion["mF1"] + emotion["mUAR"]) / 2
        pkl = None if personality is None else (personality["mACC"] + personality["CCC_pooled"]) / 2
    elif kind == "wacc_acc":
        emo = None if emotion is None else emotion["mWACC"]
        pkl = None if personality is None else personality["mACC"]
    else:
        raise ValueError(f"unknown selection kind {kind!r}")
    parts = [float(v) for v in (emo, pkl) if v is not None]
    return float(np.mean(parts))
