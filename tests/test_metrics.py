"""Tests for mepr.metrics: hand-computed cases plus scikit-learn cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, classification_report, f1_score

from mepr.labels import EMOTIONS, TRAITS
from mepr.metrics import (
    EMOTION_THRESHOLD,
    NEUTRAL_THRESHOLD,
    emotion_decisions,
    emotion_metrics,
    emotion_targets,
    personality_metrics,
    selection_score,
)

EMO6 = EMOTIONS[1:]


def probs_for(decisions: np.ndarray) -> np.ndarray:
    """(N, 7) probabilities whose decisions are exactly ``decisions`` (N, 6).

    Empty row → p(neutral) = 1.  Otherwise the mass is split evenly over the chosen
    emotions (each >= 1/6 > 1/7) and neutral gets 0.
    """
    d = np.asarray(decisions, dtype=bool)
    p = np.zeros((d.shape[0], 7))
    for i, row in enumerate(d):
        if row.any():
            p[i, 1:][row] = 1.0 / row.sum()
        else:
            p[i, 0] = 1.0
    return p


# ─────────────────────────────── emotion_decisions ────────────────────────────────


def test_thresholds_are_the_reference_expressions() -> None:
    assert NEUTRAL_THRESHOLD == 1 - 1 / 7
    assert EMOTION_THRESHOLD == 1 / 7
    # 1 - 1/7 is one float64 ulp above 6/7.
    assert np.nextafter(6 / 7, 1.0) == NEUTRAL_THRESHOLD


def test_decisions_neutral_gate_and_emotion_threshold_at_boundaries() -> None:
    below = np.nextafter(1 / 7, 0.0)
    probs = np.array(
        [
            # p0 = 1 - 1/7 exactly -> gate (>=) fires: all absent although p(anger) = 1/7.
            [1 - 1 / 7, 1 / 7, 0, 0, 0, 0, 0],
            # p0 = 6/7 in float64 is one ulp below 1 - 1/7 -> no gate; anger = 1/7 >= 1/7.
            [6 / 7, 1 / 7, 0, 0, 0, 0, 0],
            # No gate; anger = 1/7 (present, inclusive), disgust one ulp below 1/7 (absent),
            # fear 0.2 (present), surprise = 1 - 0.5 - 2/7 - 0.2 ~ 0.014 (absent).
            [0.5, 1 / 7, below, 0.2, 0, 0, 1 - 0.5 - 2 / 7 - 0.2],
            # p0 = 1 -> gate.
            [1, 0, 0, 0, 0, 0, 0],
            # Neutral just under the gate, everything else below 1/7 -> nothing present.
            [0.85, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025],
        ]
    )
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [1, 0, 0, 0, 0, 0],
            [1, 0, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    out = emotion_decisions(probs)
    assert out.dtype == bool and out.shape == (5, 6)
    np.testing.assert_array_equal(out, expected)


def test_decisions_float32_compare_in_float32_like_the_reference() -> None:
    # float32(6/7) == float32(1 - 1/7): with float32 softmax output 6/7 does trigger the gate.
    p = np.array([[6 / 7, 1 / 7, 0, 0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(emotion_decisions(p), np.zeros((1, 6), dtype=bool))
    p = np.array([[0.5, 1 / 7, 0, 0, 0, 0, 0]], dtype=np.float32)
    assert emotion_decisions(p)[0, 0]


def test_decisions_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        emotion_decisions(np.zeros((0, 7)))
    with pytest.raises(ValueError, match="shape"):
        emotion_decisions(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="NaN"):
        emotion_decisions(np.full((1, 7), np.nan))


# ─────────────────────────────── emotion_targets ────────────────────────────────


def test_targets_seven_and_six_columns() -> None:
    y7 = np.array(
        [
            [3.0, 0.0, 0.33, 0.0, 1.0, 0.0, 2.0],  # neutral column ignored
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    exp = np.array([[0, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(emotion_targets(y7), exp)
    np.testing.assert_array_equal(emotion_targets(y7[:, 1:]), exp)
    # integer input is fine; strictly greater than zero
    np.testing.assert_array_equal(
        emotion_targets(np.array([[0, 1, 0, 0, 0, 2]])), [[0, 1, 0, 0, 0, 1]]
    )


def test_targets_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        emotion_targets(np.zeros((0, 6)))
    with pytest.raises(ValueError, match="shape"):
        emotion_targets(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        emotion_targets(np.array([[np.nan, 0, 0, 0, 0, 0]]))


# ─────────────────────────────── emotion_metrics ────────────────────────────────

# Eight clips, one column per emotion (anger, disgust, fear, happiness, sadness, surprise).
_T = np.array(
    [
        # ang dis fea hap sad sur
        [1, 0, 0, 1, 1, 1],
        [1, 0, 0, 1, 0, 1],
        [0, 0, 0, 1, 1, 1],
        [0, 0, 0, 1, 0, 1],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 1, 0, 0],
    ],
    dtype=bool,
)
_P = np.array(
    [
        [1, 0, 0, 1, 1, 0],
        [0, 0, 0, 1, 0, 0],
        [1, 0, 0, 1, 1, 0],
        [1, 0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1, 1],
        [0, 0, 0, 1, 0, 1],
        [0, 0, 0, 1, 1, 1],
        [0, 0, 1, 1, 0, 1],
    ],
    dtype=bool,
)


def _hand_case() -> dict:
    return emotion_metrics(probs_for(_P), _T.astype(float) * 0.5)


def test_emotion_metrics_hand_computed() -> None:
    m = _hand_case()
    pc = m["per_class"]
    assert list(pc) == list(EMO6)

    # anger: P = 2, N = 6; TP = 1 (row 0), FN = 1 (row 1), FP = 2 (rows 2, 3), TN = 4.
    #   plain accuracy = (1 + 4) / 8 = 0.625
    #   WACC = (TP*N/P + TN) / (2N) = (1*6/2 + 4) / 12 = 7/12 = 0.58333
    #   UAR  = (1/2 + 4/6) / 2 = 7/12
    #   F1+ = 2*1 / (2*1 + 2 + 1) = 0.4 ; F1- = 2*4 / (2*4 + 1 + 2) = 8/11
    #   macro F1 = (0.4 + 8/11) / 2 = 0.563636...
    a = pc["anger"]
    plain_acc = np.mean(_P[:, 0] == _T[:, 0])
    assert plain_acc == pytest.approx(0.625)
    assert a["WACC"] == pytest.approx(7 / 12)
    assert a["WACC"] != pytest.approx(plain_acc)
    assert a["UAR"] == pytest.approx(7 / 12)
    assert a["F1"] == pytest.approx((0.4 + 8 / 11) / 2)
    assert a["support"] == 2

    # disgust: no positives in targets or predictions -> only class "absent" is seen,
    # which is perfect: F1 = UAR = WACC = 1.
    assert pc["disgust"] == {"WACC": 1.0, "F1": 1.0, "UAR": 1.0, "support": 0}

    # fear: P = 0, one false positive (row 7): classes seen {0, 1}.
    #   recall(0) = 7/8, recall(1) = 0 (no support, zero_division=0) -> UAR = 7/16
    #   F1(1) = 0 / (0 + 1 + 0) = 0, F1(0) = 14 / (14 + 0 + 1) = 14/15 -> F1 = 7/15
    #   WACC is undefined (P = 0) and set equal to UAR.
    f = pc["fear"]
    assert f["UAR"] == pytest.approx(7 / 16)
    assert f["WACC"] == pytest.approx(7 / 16)
    assert f["F1"] == pytest.approx(7 / 15)

    # happiness: all positive, all predicted -> N = 0, only class "present" seen -> 1.
    assert pc["happiness"] == {"WACC": 1.0, "F1": 1.0, "UAR": 1.0, "support": 8}
    # sadness: perfect with both classes.
    assert pc["sadness"] == {"WACC": 1.0, "F1": 1.0, "UAR": 1.0, "support": 4}
    # surprise: TP = 0, FN = 4, FP = 4, TN = 0 -> everything 0.
    assert pc["surprise"] == {"WACC": 0.0, "F1": 0.0, "UAR": 0.0, "support": 4}

    # means over six emotions
    m_wacc = (7 / 12 + 1 + 7 / 16 + 1 + 1 + 0) / 6  # = 0.50347...
    m_f1 = ((0.4 + 8 / 11) / 2 + 1 + 7 / 15 + 1 + 1 + 0) / 6
    assert m["mWACC"] == pytest.approx(m_wacc)
    assert m["mUAR"] == pytest.approx(m_wacc)
    assert m["mF1"] == pytest.approx(m_f1)
    assert all(isinstance(m[k], float) for k in ("mWACC", "mF1", "mUAR"))


def _reference_scores(true: np.ndarray, pred: np.ndarray) -> tuple[list[float], list[float]]:
    """What the authors' mf1 / uar compute: classification_report macro avg per column."""
    f1s, uars = [], []
    for i in range(true.shape[1]):
        cr = classification_report(
            true[:, i].astype(int), pred[:, i].astype(int), output_dict=True, zero_division=0
        )
        f1s.append(cr["macro avg"]["f1-score"])
        uars.append(cr["macro avg"]["recall"])
    return f1s, uars


def test_hand_case_matches_sklearn() -> None:
    m = _hand_case()
    f1s, uars = _reference_scores(_T, _P)
    for k, name in enumerate(EMO6):
        pc = m["per_class"][name]
        assert pc["F1"] == pytest.approx(f1s[k])
        assert pc["UAR"] == pytest.approx(uars[k])
        assert pc["F1"] == pytest.approx(
            f1_score(_T[:, k], _P[:, k], average="macro", zero_division=0)
        )
    # balanced accuracy agrees wherever both classes occur in the targets
    for k in (0, 4, 5):  # anger, sadness, surprise
        ba = balanced_accuracy_score(_T[:, k], _P[:, k])
        assert m["per_class"][EMO6[k]]["UAR"] == pytest.approx(ba)
        assert m["per_class"][EMO6[k]]["WACC"] == pytest.approx(ba)


@pytest.mark.parametrize("seed", range(8))
def test_random_cases_match_reference_and_wacc_equals_uar(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    logits = rng.normal(size=(n, 7)) * rng.uniform(0.5, 4)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # sparse intensities so some columns are degenerate (all zero) for small n
    inten = rng.uniform(0, 3, size=(n, 7)) * (rng.uniform(size=(n, 7)) < 0.2)

    m = emotion_metrics(probs, inten)
    true, pred = emotion_targets(inten), emotion_decisions(probs)
    f1s, uars = _reference_scores(true, pred)
    assert m["mF1"] == pytest.approx(np.mean(f1s))
    assert m["mUAR"] == pytest.approx(np.mean(uars))
    assert m["mWACC"] == pytest.approx(m["mUAR"])
    for k, name in enumerate(EMO6):
        pc = m["per_class"][name]
        assert pc["WACC"] == pytest.approx(pc["UAR"])
        assert pc["F1"] == pytest.approx(
            f1_score(true[:, k], pred[:, k], average="macro", zero_division=0)
        )
        if 0 < true[:, k].sum() < n:  # WACC formula defined; equals balanced accuracy
            tp = np.sum(pred[:, k] & true[:, k])
            tn = np.sum(~pred[:, k] & ~true[:, k])
            p_, n_ = true[:, k].sum(), (~true[:, k]).sum()
            assert pc["WACC"] == pytest.approx((tp * n_ / p_ + tn) / (2 * n_))
            assert pc["UAR"] == pytest.approx(balanced_accuracy_score(true[:, k], pred[:, k]))
        for v in (pc["WACC"], pc["F1"], pc["UAR"]):
            assert np.isfinite(v)


def test_emotion_metrics_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        emotion_metrics(np.zeros((0, 7)), np.zeros((0, 7)))
    with pytest.raises(ValueError, match="rows"):
        emotion_metrics(np.ones((3, 7)) / 7, np.zeros((2, 7)))


# ─────────────────────────────── personality_metrics ────────────────────────────────


def _ref_ccc(t: np.ndarray, p: np.ndarray) -> float:
    """Lin's CCC with population moments (the reference's formula)."""
    mt, mp = t.mean(), p.mean()
    cov = np.mean((t - mt) * (p - mp))
    return 2 * cov / (t.var() + p.var() + (mt - mp) ** 2)


def test_personality_hand_computed() -> None:
    target = np.array(
        [
            # perfect, negated, offset, const-pred, both-const
            [0.2, 0.1, 0.2, 0.2, 0.7],
            [0.5, 0.5, 0.4, 0.4, 0.7],
            [0.8, 0.9, 0.6, 0.6, 0.7],
        ]
    )
    pred = np.array(
        [
            [0.2, 0.9, 0.3, 0.5, 0.7],
            [0.5, 0.5, 0.5, 0.5, 0.7],
            [0.8, 0.1, 0.7, 0.5, 0.7],
        ]
    )
    m = personality_metrics(pred, target)
    pc = m["per_class"]
    assert list(pc) == list(TRAITS)
    o, c, e, a, n = (pc[t] for t in TRAITS)
    # openness: identical -> ACC 1, CCC 1.
    assert o["ACC"] == pytest.approx(1.0) and o["CCC"] == pytest.approx(1.0)
    # conscientiousness: mirrored around 0.5. MAE = (0.8 + 0 + 0.8)/3 -> ACC = 1 - 1.6/3.
    #   means 0.5 and 0.5; var_t = var_p = (0.16 + 0 + 0.16)/3; cov = -var -> CCC = -1.
    assert c["ACC"] == pytest.approx(1 - 1.6 / 3)
    assert c["CCC"] == pytest.approx(-1.0)
    # extraversion: pred = target + 0.1. ACC = 0.9.
    #   var_t = var_p = cov = 0.08/3; (mean diff)^2 = 0.01
    #   CCC = 2*(0.08/3) / (2*0.08/3 + 0.01) = 0.16 / 0.19 = 16/19
    assert e["ACC"] == pytest.approx(0.9)
    assert e["CCC"] == pytest.approx(16 / 19)
    # agreeableness: constant prediction 0.5. MAE = (0.3 + 0.1 + 0.1)/3 -> ACC = 1 - 0.5/3.
    #   cov = 0 -> CCC = 0.
    assert a["ACC"] == pytest.approx(1 - 0.5 / 3)
    assert a["CCC"] == 0.0
    # non_neuroticism: both constant and equal: CCC is 0/0 in the reference -> 0.0 here.
    assert n["ACC"] == pytest.approx(1.0)
    assert n["CCC"] == 0.0

    # mACC = (1 + (1 - 1.6/3) + 0.9 + (1 - 0.5/3) + 1) / 5 = (4.9 - 0.7) / 5 = 0.84
    assert m["mACC"] == pytest.approx(0.84)
    # mCCC = (1 - 1 + 16/19 + 0 + 0) / 5 = 16/95
    assert m["mCCC"] == pytest.approx(16 / 95)
    # pooled CCC = the reference's ccc() applied to the whole matrices
    assert m["CCC_pooled"] == pytest.approx(_ref_ccc(target, pred))


def test_personality_perfect_and_negated() -> None:
    rng = np.random.default_rng(0)
    t = rng.uniform(size=(50, 5))
    m = personality_metrics(t, t)
    assert m["mACC"] == pytest.approx(1.0)
    assert m["mCCC"] == pytest.approx(1.0)
    assert m["CCC_pooled"] == pytest.approx(1.0)
    # 1 - t: perfectly anti-correlated; CCC = -2var/(2var + (2*mean - 1)^2) ~ -1
    m = personality_metrics(1 - t, t)
    for k, trait in enumerate(TRAITS):
        ccc = m["per_class"][trait]["CCC"]
        mean, var = t[:, k].mean(), t[:, k].var()
        assert ccc == pytest.approx(-2 * var / (2 * var + (2 * mean - 1) ** 2))
        assert -1.0 <= ccc < -0.8
        assert ccc == pytest.approx(_ref_ccc(t[:, k], 1 - t[:, k]))


def test_personality_random_matches_reference_formulas() -> None:
    rng = np.random.default_rng(1)
    t = rng.uniform(size=(37, 5))
    p = np.clip(t + rng.normal(scale=0.2, size=t.shape), 0, 1)
    m = personality_metrics(p.astype(np.float32), t)
    p64 = p.astype(np.float32).astype(np.float64)
    for k, trait in enumerate(TRAITS):
        assert m["per_class"][trait]["ACC"] == pytest.approx(
            1 - np.mean(np.abs(t[:, k] - p64[:, k]))
        )
        assert m["per_class"][trait]["CCC"] == pytest.approx(_ref_ccc(t[:, k], p64[:, k]))
    assert m["CCC_pooled"] == pytest.approx(_ref_ccc(t, p64))


def test_personality_single_row_is_finite() -> None:
    m = personality_metrics(np.full((1, 5), 0.4), np.full((1, 5), 0.6))
    assert m["mACC"] == pytest.approx(0.8)
    assert m["mCCC"] == 0.0 and m["CCC_pooled"] == 0.0


def test_personality_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        personality_metrics(np.zeros((0, 5)), np.zeros((0, 5)))
    with pytest.raises(ValueError, match="shape"):
        personality_metrics(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="rows"):
        personality_metrics(np.zeros((2, 5)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        personality_metrics(np.zeros((2, 5)), np.full((2, 5), np.nan))


# ─────────────────────────────── selection_score ────────────────────────────────


def test_selection_score() -> None:
    emo = {"mWACC": 0.6, "mF1": 0.5, "mUAR": 0.6}
    pkl = {"mACC": 0.9, "mCCC": 0.4, "CCC_pooled": 0.5}
    # mean_combo = ((0.5 + 0.6)/2 + (0.9 + 0.5)/2) / 2 = (0.55 + 0.7) / 2 = 0.625
    assert selection_score(emo, pkl) == pytest.approx(0.625)
    assert selection_score(emo, None) == pytest.approx(0.55)
    assert selection_score(None, pkl) == pytest.approx(0.7)
    # wacc_acc = (0.6 + 0.9) / 2 = 0.75
    assert selection_score(emo, pkl, kind="wacc_acc") == pytest.approx(0.75)
    assert selection_score(emo, None, kind="wacc_acc") == pytest.approx(0.6)
    assert selection_score(None, pkl, kind="wacc_acc") == pytest.approx(0.9)
    with pytest.raises(ValueError):
        selection_score(None, None)
    with pytest.raises(ValueError):
        selection_score(emo, pkl, kind="nope")  # type: ignore[arg-type]


def test_selection_score_on_real_dicts() -> None:
    e = _hand_case()
    rng = np.random.default_rng(2)
    t = rng.uniform(size=(10, 5))
    p = personality_metrics(t, t)
    s = selection_score(e, p)
    assert s == pytest.approx(((e["mF1"] + e["mUAR"]) / 2 + (p["mACC"] + p["CCC_pooled"]) / 2) / 2)
    assert isinstance(s, float)
