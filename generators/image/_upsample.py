"""``Upsample2x``: the four ways image decoders double resolution, each with its fingerprint.

Each kind leaves its own periodic trace in the spectrum of what it makes, which is
what detectors learn (Odena et al., "Deconvolution and Checkerboard Artifacts", 2016,
https://distill.pub/2016/deconv-checkerboard/; Frank et al., "Leveraging Frequency
Analysis for Deep Fake Image Recognition", 2020, https://arxiv.org/abs/2003.08685).
They are kept plain on purpose: no ICNR init, no blur, no anti-aliasing.
"""

from __future__ import annotations

import torch
from torch import nn

from detector.config import check_choice

UPSAMPLE_KINDS = ("tconv", "nearest", "bilinear", "pixelshuffle")


class Upsample2x(nn.Module):
    """``(B, in_channels, H, W)`` -> ``(B, out_channels, 2H, 2W)``.

    - ``tconv``: ``ConvTranspose2d`` kernel 4, stride 2, padding 1 (checkerboard).
    - ``nearest`` / ``bilinear``: interpolate x2, then a 3x3 conv.
    - ``pixelshuffle``: a 3x3 conv to ``4 * out_channels``, then ``PixelShuffle(2)``.

    >>> up = Upsample2x(8, 4, kind="pixelshuffle")
    >>> tuple(up(torch.zeros(2, 8, 5, 7)).shape)
    (2, 4, 10, 14)
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, kind: str = "tconv", bias: bool = True
    ) -> None:
        super().__init__()
        self.kind = check_choice("upsample kind", kind, UPSAMPLE_KINDS)
        self.body: nn.Module
        if kind == "tconv":
            self.body = nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias)
        elif kind == "pixelshuffle":
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, 4 * out_channels, 3, 1, 1, bias=bias),
                nn.PixelShuffle(2),
            )
        else:  # "nearest" or "bilinear": interpolate, then let a conv fill in detail
            corners = False if kind == "bilinear" else None
            self.body = nn.Sequential(
                nn.Upsample(scale_factor=2, mode=kind, align_corners=corners),
                nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=bias),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
