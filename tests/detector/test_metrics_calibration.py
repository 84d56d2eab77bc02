from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from detector.eval.calibration import calibrate, fit_temperature
from detector.eval.metrics import binary_metrics, eer, expected_calibration_error


def _scores(n: int = 400, sep: float = 1.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(int)
    return y, rng.normal(size=n) + sep * y


def test_auc_ap_match_scikit_learn() -> None:
    y, s = _scores()
    p = 1 / (1 + np.exp(-s))
    m = binary_metrics(y, p, threshold=0.5)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["ap"] == pytest.approx(average_precision_score(y, p))
    pred = p >= 0.5
    assert m["accuracy"] == pytest.approx((pred == y).mean())
    assert m["real_accuracy"] == pytest.approx((~pred[y == 0]).mean())
    assert m["synthetic_accuracy"] == pytest.approx(pred[y == 1].mean())


def test_eer_is_where_fpr_meets_fnr() -> None:
    y, s = _scores(4000)
    fpr, tpr, _ = roc_curve(y, s)
    i = np.argmin(np.abs(fpr - (1 - tpr)))
    assert eer(y, s) == pytest.approx((fpr[i] + 1 - tpr[i]) / 2, abs=0.005)
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 1.0


def test_ece_is_zero_for_perfect_calibration_and_large_for_overconfidence() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, np.where(p > 0.5, 1.0, 0.0)) > 0.2


def test_temperature_recovers_a_known_scale() -> None:
    rng = np.random.default_rng(2)
    true_logits = rng.normal(scale=2.0, size=20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    assert fit_temperature(true_logits * 3.0, y) == pytest.approx(3.0, rel=0.1)


def test_calibration_band_and_verdicts() -> None:
    y, s = _scores(2000, sep=2.0)
    cal = calibrate(s, y, max_error=0.02)
    assert cal.uncertain_low <= cal.threshold <= cal.uncertain_high
    p = cal.probability(s)
    confident_synth = p >= cal.uncertain_high
    assert (confident_synth[y == 0]).mean() <= 0.02 + 1e-9
    assert (p[y == 1] < cal.uncertain_low).mean() <= 0.02 + 1e-9
    assert cal.verdict(0.0) == "authentic" and cal.verdict(1.0) == "synthetic"
    assert cal.verdict((cal.uncertain_low + cal.uncertain_high) / 2) == "uncertain"


def test_separated_classes_collapse_the_band() -> None:
    y = np.array([0] * 50 + [1] * 50)
    s = np.concatenate([np.linspace(-5, -1, 50), np.linspace(1, 5, 50)])
    cal = calibrate(s, y)
    assert cal.uncertain_low == cal.uncertain_high == cal.threshold
    assert cal.val_eer == 0.0


def test_calibration_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        calibrate(np.zeros(5), np.zeros(5))
