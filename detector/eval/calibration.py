"""Calibration on validation data: temperature scaling, the threshold and the uncertain band.

Everything here is fitted on the validation split; test labels are never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit

from detector.eval.metrics import eer


@dataclass(frozen=True)
class Calibration:
    temperature: float  # P(synthetic) = sigmoid(logit / temperature)
    threshold: float  # calibrated probability at the validation EER point
    uncertain_low: float  # below: "authentic"
    uncertain_high: float  # at or above: "synthetic"; between: "uncertain"
    val_eer: float

    def probability(self, logits: np.ndarray | float) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64) / self.temperature
        return expit(z)  # 1 / (1 + exp(-z)) without overflow for very negative z

    def verdict(self, prob: float) -> str:
        if prob >= self.uncertain_high:
            return "synthetic"
        if prob < self.uncertain_low:
            return "authentic"
        return "uncertain"


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, max_iter: int = 200) -> float:
    """The temperature that minimises the validation negative log-likelihood.

    Guo et al., "On Calibration of Modern Neural Networks" (2017),
    https://arxiv.org/abs/1706.04599. Optimised in log space so it stays positive.
    """
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    return float(np.clip(t, 1e-3, 1e3))


def calibrate(logits: np.ndarray, labels: np.ndarray, *, max_error: float = 0.01) -> Calibration:
    """Temperature, threshold and uncertain band from validation logits and labels.

    The threshold sits at the validation EER point. The band is where confident
    verdicts would err too often: "synthetic" needs a probability that at most
    ``max_error`` of validation real items reach, "authentic" one that at most
    ``max_error`` of validation synthetic items fall under. When the classes are
    separated that well, the band collapses onto the threshold.
    """
    y = np.asarray(labels, dtype=int)
    if not ((y == 0).any() and (y == 1).any()):
        raise ValueError("calibration needs validation items of both classes")
    t = fit_temperature(logits, y)
    p = expit(np.asarray(logits, dtype=np.float64) / t)
    real, synth = np.sort(p[y == 0]), np.sort(p[y == 1])
    threshold = _eer_threshold(y, p)
    # Smallest probability that at most max_error of real items reach or exceed.
    high = float(np.quantile(real, 1.0 - max_error, method="higher")) + 1e-9
    # Largest probability that at most max_error of synthetic items fall below.
    low = float(np.quantile(synth, max_error, method="lower"))
    if low >= high:  # separated: any cut in [high, low] errs within budget; use the threshold
        low = high = threshold
    else:  # overlapping: the band must contain the threshold
        high, low = max(high, threshold), min(low, threshold)
    return Calibration(
        temperature=t,
        threshold=threshold,
        uncertain_low=low,
        uncertain_high=high,
        val_eer=eer(y, p),
    )


def _eer_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold where the false-positive and false-negative rates are closest."""
    candidates = np.unique(p)
    real, synth = np.sort(p[y == 0]), np.sort(p[y == 1])
    fpr = 1.0 - np.searchsorted(real, candidates, side="left") / len(real)  # P(real >= c)
    fnr = np.searchsorted(synth, candidates, side="left") / len(synth)  # P(synth < c)
    return float(candidates[int(np.argmin(np.abs(fpr - fnr)))])
