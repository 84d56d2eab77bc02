"""Conversions between uint8 images and the [-1, 1] tensors image generators train on."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` in [-1, 1] -> ``(N, H, W, 3)`` uint8 (values clipped)."""
    x = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def minibatches(
    data: torch.Tensor, *, batch_size: int, steps: int, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """``steps`` random minibatches of ``data`` (N, C, H, W), randomly flipped left-right."""
    n = data.shape[0]
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=generator)
        batch = data[idx]
        flip = torch.rand(batch.shape[0], generator=generator) < 0.5
        batch[flip] = batch[flip].flip(-1)
        yield batch


class Smoothed:
    """Exponential moving averages of training metrics, for progress bars and reports."""

    def __init__(self, beta: float = 0.9) -> None:
        self.beta = beta
        self.values: dict[str, float] = {}

    def update(self, **metrics: float) -> dict[str, float]:
        for k, v in metrics.items():
            old = self.values.get(k)
            self.values[k] = v if old is None else self.beta * old + (1 - self.beta) * v
        return dict(self.values)


def item_seeds(seed: int, n: int) -> list[int]:
    """Per-item seeds derived from a call's ``seed``: items do not depend on batching,
    and calls with nearby seeds share no samples."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n, np.uint32)]
