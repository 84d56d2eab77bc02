"""Input filters that expose generator traces: high-pass and NPR residuals."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detector.config import check_choice

RESIDUAL_KINDS = ("none", "highpass", "npr")


class ResidualInput(nn.Module):
    """Maps ``(B, 3, H, W)`` images to the network's input channels.

    - ``none``: the image itself.
    - ``highpass``: the image minus a 3x3 box blur of it (sensor noise and edges).
    - ``npr``: neighbouring-pixel relationships, the image minus its nearest-neighbour
      2x down-up resampling; up-sampling layers in generators leave correlations there.
      Tan et al., "Rethinking the Up-Sampling Operations in CNN-based Generative Network
      for Generalizable Deepfake Detection" (CVPR 2024), https://arxiv.org/abs/2312.10461

    With ``keep_rgb`` the image is concatenated to the residual (6 channels).

    >>> ResidualInput("npr", keep_rgb=True)(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 6, 32, 32])
    """

    def __init__(self, kind: str = "npr", *, keep_rgb: bool = False) -> None:
        super().__init__()
        self.kind = check_choice("residual kind", kind, RESIDUAL_KINDS)
        self.keep_rgb = keep_rgb
        self.register_buffer("box", torch.full((3, 1, 3, 3), 1.0 / 9.0), persistent=False)

    @property
    def out_channels(self) -> int:
        return 6 if (self.keep_rgb and self.kind != "none") else 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return x
        if self.kind == "highpass":
            res = x - F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.box, groups=3)
        else:
            h, w = x.shape[-2:]
            even = x[..., : h - h % 2, : w - w % 2]
            down_up = F.interpolate(
                F.interpolate(even, scale_factor=0.5, mode="nearest"),
                scale_factor=2.0,
                mode="nearest",
            )
            res = torch.zeros_like(x)
            res[..., : h - h % 2, : w - w % 2] = even - down_up
            res = res * 4.0  # residuals are small; bring them to the image's range
        return torch.cat([x, res], dim=1) if self.keep_rgb else res
