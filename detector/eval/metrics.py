"""Detection metrics on scores where higher means "more synthetic" (label 1 = synthetic)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _arrays(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray):
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D and of one length: {y.shape} vs {s.shape}")
    return y, s


def eer(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Equal error rate: where the false-positive rate equals the false-negative rate.

    Interpolated linearly between the two ROC points that bracket the crossing.
    """
    y, s = _arrays(labels, scores)
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1.0 - tpr
    i = int(np.nonzero(fnr <= fpr)[0][0])
    if i == 0:
        return float(fpr[0])
    # Crossing between points i-1 and i of (fpr - fnr).
    d0, d1 = fpr[i - 1] - fnr[i - 1], fpr[i] - fnr[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def expected_calibration_error(
    labels: Sequence[int] | np.ndarray, probs: Sequence[float] | np.ndarray, *, bins: int = 15
) -> float:
    """ECE of P(synthetic): the bin-weighted gap between confidence and accuracy.

    Uses the binary form (predicted probability of class 1 vs. the frequency of class 1).
    """
    y, p = _arrays(labels, probs)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(total)


def binary_metrics(
    labels: Sequence[int] | np.ndarray,
    probs: Sequence[float] | np.ndarray,
    *,
    threshold: float,
) -> dict[str, Any]:
    """AUC, AP, EER, accuracy at ``threshold``, per-class accuracy and ECE.

    ``probs`` are calibrated probabilities of "synthetic". With one class only,
    the ranking metrics are ``None`` and the per-class accuracy is still given.
    """
    y, p = _arrays(labels, probs)
    pred = p >= threshold
    out: dict[str, Any] = {
        "n": len(y),
        "n_real": int((y == 0).sum()),
        "n_synthetic": int((y == 1).sum()),
        "threshold": float(threshold),
        "accuracy": float((pred == y).mean()) if len(y) else None,
        "real_accuracy": float((~pred[y == 0]).mean()) if (y == 0).any() else None,
        "synthetic_accuracy": float(pred[y == 1].mean()) if (y == 1).any() else None,
        "ece": expected_calibration_error(y, p) if len(y) else None,
    }
    both = (y == 0).any() and (y == 1).any()
    out["auc"] = float(roc_auc_score(y, p)) if both else None
    out["ap"] = float(average_precision_score(y, p)) if both else None
    out["eer"] = eer(y, p) if both else None
    return out
