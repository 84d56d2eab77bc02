"""PNG plots for evaluation reports: ROC curves, score histograms, the leave-one-out matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve


def roc_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """``curves``: name -> (labels, scores)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (y, s) in curves.items():
        if len(set(y.tolist())) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name, lw=1.5)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false-positive rate (real flagged)", ylabel="true-positive rate", title="ROC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def histogram_plot(y: np.ndarray, probs: np.ndarray, threshold: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 41)
    ax.hist(probs[y == 0], bins=bins, alpha=0.6, label="real")
    ax.hist(probs[y == 1], bins=bins, alpha=0.6, label="synthetic")
    ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
    ax.set(xlabel="calibrated P(synthetic)", ylabel="items", title="Scores by class (test)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def matrix_plot(rows: list[str], cols: list[str], values: np.ndarray, path: Path) -> None:
    """Rows: the family left out of training; columns: the family tested; cells: AUC."""
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2, 0.7 * len(rows) + 1.8))
    im = ax.imshow(values, vmin=0.5, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(values[i, j]):
                ax.text(
                    j, i, f"{values[i, j]:.3f}", ha="center", va="center", color="w", fontsize=8
                )
    ax.set(xlabel="tested on", ylabel="trained without", title="AUC: leave one family out")
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
