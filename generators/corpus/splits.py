"""Train/validation/test splits by source item: no photo (or crop of it) in two splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from generators.corpus.manifest import SPLITS


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"split fractions must be 3 non-negative numbers summing to 1, got {fractions}"
        )
    return (float(fractions[0]), float(fractions[1]), float(fractions[2]))


def split_items(
    item_ids: Sequence[str], fractions: Sequence[float], *, seed: int
) -> dict[str, str]:
    """Map each item id to a split. With 3+ items, val and test each get at least one."""
    fr = check_fractions(fractions)
    ids = sorted(item_ids)
    n = len(ids)
    order = np.random.default_rng(seed).permutation(n)
    # Cumulative rounding: the three counts always add up to n.
    n_train = round(fr[0] * n)
    n_val = round((fr[0] + fr[1]) * n) - n_train
    n_test = n - n_train - n_val
    if n >= 3 and fr[1] > 0 and n_val == 0:  # val and test get at least one, taken from train
        n_val, n_train = 1, n_train - 1
    if n >= 3 and fr[2] > 0 and n_test == 0:
        n_test, n_train = 1, n_train - 1
    names = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    return {ids[int(i)]: names[k] for k, i in enumerate(order)}


def draw_splits(n: int, fractions: Sequence[float], *, seed: int) -> list[str]:
    """Splits for ``n`` items that have no real source (GAN and diffusion samples)."""
    fr = check_fractions(fractions)
    rng = np.random.default_rng(seed)
    return [SPLITS[int(i)] for i in rng.choice(3, size=n, p=fr)]
