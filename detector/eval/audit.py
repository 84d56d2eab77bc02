"""Shortcut audit: how far do file size or plain image statistics get on their own?"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _stats(pixels: Sequence[np.ndarray]) -> np.ndarray:
    """Per-channel mean and standard deviation: ``(N, 6)``."""
    return np.array(
        [np.concatenate([p.reshape(-1, 3).mean(0), p.reshape(-1, 3).std(0)]) for p in pixels]
    )


def shortcut_auc(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> float | None:
    """Test AUC of a logistic regression fitted on the training split's features."""
    if len(set(train_y.tolist())) < 2 or len(set(test_y.tolist())) < 2:
        return None
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    clf.fit(train_x, train_y)
    return float(roc_auc_score(test_y, clf.predict_proba(test_x)[:, 1]))


def shortcut_audit(
    train_bytes: Sequence[int],
    train_px: Sequence[np.ndarray],
    train_y: np.ndarray,
    test_bytes: Sequence[int],
    test_px: Sequence[np.ndarray],
    test_y: np.ndarray,
) -> dict[str, float | None]:
    fb_train = np.log(np.asarray(train_bytes, dtype=float))[:, None]
    fb_test = np.log(np.asarray(test_bytes, dtype=float))[:, None]
    return {
        "file_size_auc": shortcut_auc(fb_train, train_y, fb_test, test_y),
        "image_stats_auc": shortcut_auc(_stats(train_px), train_y, _stats(test_px), test_y),
    }
