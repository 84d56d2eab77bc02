"""Shortcut audit: how far do file size, plain image statistics, or a clip's duration,
leading silence and loudness get on their own?"""

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


def clip_facts(path: str) -> tuple[float, float, float]:
    """Duration (s), leading silence (s) and loudness (dBFS of the active part) of a clip
    as stored: decoded, before the detector's own preparation."""
    from detector.media.audio import SAMPLE_RATE, _frame_rms_db, decode_audio

    y = decode_audio(path).samples
    db = _frame_rms_db(y)
    active = np.flatnonzero(db > db.max() - 40.0)
    lead = float(active[0] * 128 / SAMPLE_RATE) if len(active) else 0.0
    loud = float(10 * np.log10(np.mean(10 ** (db[active] / 10)))) if len(active) else -120.0
    return len(y) / SAMPLE_RATE, lead, loud


def audio_shortcut_audit(train_items: Sequence, test_items: Sequence) -> dict[str, float | None]:
    """Test AUC of a classifier on each clip fact alone (0.5 = the fact says nothing).

    Both classes go through the same trimming and loudness normalisation, so leading
    silence and loudness should say nothing; duration says nothing for copy-synthesis
    (same length as its real clip) but may for text-to-speech.
    """
    train = np.array([clip_facts(str(it.path)) for it in train_items])
    test = np.array([clip_facts(str(it.path)) for it in test_items])
    ytr = np.array([it.label for it in train_items])
    yte = np.array([it.label for it in test_items])
    fb_train = np.log(np.array([it.bytes for it in train_items], dtype=float))[:, None]
    fb_test = np.log(np.array([it.bytes for it in test_items], dtype=float))[:, None]
    out: dict[str, float | None] = {}
    for k, name in enumerate(("duration_auc", "leading_silence_auc", "loudness_auc")):
        out[name] = shortcut_auc(train[:, k : k + 1], ytr, test[:, k : k + 1], yte)
    out["file_size_auc"] = shortcut_auc(fb_train, ytr, fb_test, yte)
    return out
