"""Front-ends side by side: ``"lfcc+pulse"`` stacks their maps along the feature axis."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Stacked(nn.Module):
    """``(B, T)`` -> ``(B, 1, sum of out_bins, frames)``: each part's map, in order, one
    above the other. The parts share the frame grid (``1 + T // hop_length``) and keep
    their own scales; ``part_bins`` says where each one's rows are, so a model can
    normalise them separately."""

    def __init__(self, parts: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(parts) < 2:
            raise ValueError("stack at least two front-ends")
        self.parts = nn.ModuleList(parts)
        self.part_bins: tuple[int, ...] = tuple(int(p.out_bins) for p in parts)
        self.out_bins = sum(self.part_bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=2)
