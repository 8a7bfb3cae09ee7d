"""mepr.metrics gives the authors' numbers, proven on values their code computed.

tests/data/parity/metrics/ holds fixed random emotion logits / intensities and trait
predictions / targets, and what their ``utils/measures.py`` and evaluation loop made of them
(see that folder's README).  Their code has no WACC: mepr's WACC is the balanced accuracy,
i.e. their UAR, so mWACC is checked against their mUAR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from mepr import metrics
from mepr.labels import EMOTIONS, TRAITS

DATA = Path(__file__).parent / "data" / "parity" / "metrics"
CASES = sorted(p.stem for p in DATA.glob("*.safetensors"))
TOL = 1e-6


@pytest.fixture(params=CASES)
def case(request) -> dict[str, np.ndarray]:
    return load_file(DATA / f"{request.param}.safetensors")


def test_cases_are_stored():
    assert set(CASES) == {"random", "skewed", "degenerate"}


def test_decisions_and_targets_match(case):
    assert np.array_equal(
        metrics.emotion_decisions(case["theirs/probs"]), case["theirs/decisions"] > 0
    )
    assert np.array_equal(
        metrics.emotion_targets(case["input/intensities"]), case["theirs/targets"] > 0
    )


def test_softmax_matches_theirs(case):
    """The float64 softmax mepr's pipeline writes agrees with their torch float32 one and
    decodes to the same decisions."""
    probs = metrics.softmax(case["input/logits"], float64=True)
    assert np.max(np.abs(probs - case["theirs/probs"])) <= TOL
    assert np.array_equal(metrics.emotion_decisions(probs), case["theirs/decisions"] > 0)


def test_emotion_metrics_match(case):
    got = metrics.emotion_metrics(case["theirs/probs"], case["input/intensities"])
    f1 = [got["per_class"][e]["F1"] for e in EMOTIONS[1:]]
    uar = [got["per_class"][e]["UAR"] for e in EMOTIONS[1:]]
    wacc = [got["per_class"][e]["WACC"] for e in EMOTIONS[1:]]
    np.testing.assert_allclose(f1, case["theirs/F1"], rtol=0, atol=TOL)
    np.testing.assert_allclose(uar, case["theirs/UAR"], rtol=0, atol=TOL)
    np.testing.assert_allclose(wacc, case["theirs/UAR"], rtol=0, atol=TOL)
    assert got["mF1"] == pytest.approx(float(case["theirs/mF1"]), abs=TOL)
    assert got["mUAR"] == pytest.approx(float(case["theirs/mUAR"]), abs=TOL)
    assert got["mWACC"] == pytest.approx(float(case["theirs/mUAR"]), abs=TOL)


def test_personality_metrics_match(case):
    got = metrics.personality_metrics(case["input/trait_pred"], case["input/trait_true"])
    ccc = [got["per_class"][t]["CCC"] for t in TRAITS]
    np.testing.assert_allclose(ccc, case["theirs/CCC"], rtol=0, atol=TOL)
    assert got["mCCC"] == pytest.approx(float(np.mean(case["theirs/CCC"])), abs=TOL)
    assert got["mACC"] == pytest.approx(float(case["theirs/mACC"]), abs=TOL)
    assert got["CCC_pooled"] == pytest.approx(float(case["theirs/CCC_pooled"]), abs=TOL)


def test_selection_score_matches_their_mean_combo(case):
    emo = metrics.emotion_metrics(case["theirs/probs"], case["input/intensities"])
    per = metrics.personality_metrics(case["input/trait_pred"], case["input/trait_true"])
    assert metrics.selection_score(emo, None) == pytest.approx(
        float(case["theirs/mean_emo"]), abs=TOL
    )
    assert metrics.selection_score(None, per) == pytest.approx(
        float(case["theirs/mean_pkl"]), abs=TOL
    )
    assert metrics.selection_score(emo, per) == pytest.approx(
        float(case["theirs/mean_combo"]), abs=TOL
    )


def test_degenerate_columns_are_really_degenerate():
    """The degenerate case does reach scikit-learn's zero-division rules (else it proves
    nothing about them): no positives at all, positives never predicted, all positive."""
    c = load_file(DATA / "degenerate.safetensors")
    true, pred = c["theirs/targets"] > 0, c["theirs/decisions"] > 0
    assert not true[:, 0].any() and not pred[:, 0].any()
    assert not true[:, 1].any() and pred[:, 1].any()
    assert true[:, 2].all() and true[:, 4].all()
    assert true[:, 3].any() and not pred[:, 3].any()
    assert np.ptp(c["input/trait_pred"][:, 0]) == 0 and np.ptp(c["input/trait_true"][:, 1]) == 0
