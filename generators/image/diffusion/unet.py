"""A small denoising U-Net, after denoising-diffusion-pytorch's ``Unet``.

Sinusoidal timestep embedding -> MLP; ResBlocks (GroupNorm + SiLU) that add the
embedding; strided downsampling, nearest-neighbour upsampling, skip connections,
and self-attention only at the lowest resolution, where it is cheap on a CPU.

>>> net = Unet(8, dim_mults=(1, 2), patch_size=2)
>>> net(torch.zeros(2, 3, 16, 16), torch.tensor([0, 999])).shape
torch.Size([2, 3, 16, 16])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _groups(channels: int) -> int:
    # GroupNorm needs the group count to divide the channels; 8 groups where possible.
    return math.gcd(8, channels)


class SinusoidalEmbedding(nn.Module):
    """Timestep ``t`` (B,) -> ``(B, dim)`` sin/cos features (Vaswani et al. 2017)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half) / max(half - 1, 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t.float()[:, None] * self.freqs[None]  # (B, half)
        return torch.cat([args.sin(), args.cos()], dim=-1)


class ResBlock(nn.Module):
    """Two 3x3 convs with GroupNorm + SiLU; the time embedding sets a per-channel scale/shift."""

    def __init__(self, dim_in: int, dim_out: int, *, time_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(dim_in), dim_in)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.time = nn.Linear(time_dim, dim_out * 2)
        self.norm2 = nn.GroupNorm(_groups(dim_out), dim_out)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        self.skip = nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.time(F.silu(temb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return h + self.skip(x)


class Attention(nn.Module):
    """Multi-head self-attention over all positions, with a residual connection."""

    def __init__(self, dim: int, *, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(_groups(dim), dim)
        self.qkv = nn.Conv2d(dim, dim * 3, 1)
        self.out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # (B, heads, HW, c/heads)
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(y.transpose(-1, -2).reshape(b, c, h, w))


class Unet(nn.Module):
    """Predicts the noise ``eps`` (or ``v``) in ``x_t`` (B, 3, H, W) at timesteps ``t`` (B,).

    ``dim_mults`` gives one resolution level each (channels ``dim * mult``), halving
    the resolution between levels. ``patch_size`` > 1 folds ``p x p`` pixel patches
    into channels first (pixel-unshuffle), so the network runs at ``H/p``: the
    "patching" of simple diffusion (Hoogeboom et al. 2023, arXiv:2301.11093), which
    cuts the cost of the full-resolution convolutions by ``p**2``.
    """

    def __init__(
        self,
        dim: int,
        *,
        dim_mults: tuple[int, ...] = (1, 2, 4),
        channels: int = 3,
        patch_size: int = 1,
        attention: bool = True,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if dim % 2 or (attention and (dim * dim_mults[-1]) % heads):
            raise ValueError(f"dim {dim} must be even and dim * mults[-1] divisible by {heads}")
        self.patch_size = patch_size
        time_dim = dim * 4
        self.time_mlp = nn.Sequential(
            SinusoidalEmbedding(dim),
            nn.Linear(dim, time_dim),
            nn.SiLU(),
            nn.Linear(time_dim, time_dim),
        )
        in_ch = channels * patch_size**2
        self.init_conv = nn.Conv2d(in_ch, dim, 3, padding=1)

        dims = [dim * m for m in dim_mults]
        n = len(dims)
        self.downs = nn.ModuleList()
        ch = dim
        for i, d in enumerate(dims):
            last = i == n - 1
            down = nn.Conv2d(d, d, 3, stride=2, padding=1) if not last else nn.Identity()
            self.downs.append(nn.ModuleList([ResBlock(ch, d, time_dim=time_dim), down]))
            ch = d
        self.mid1 = ResBlock(ch, ch, time_dim=time_dim)
        self.mid_attn = Attention(ch, heads=heads) if attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, time_dim=time_dim)
        self.ups = nn.ModuleList()
        for i, d in reversed(list(enumerate(dims))):
            out = dims[i - 1] if i > 0 else dim
            up: nn.Module = (
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(out, out, 3, padding=1)
                )
                if i > 0
                else nn.Identity()
            )
            self.ups.append(nn.ModuleList([ResBlock(ch + d, out, time_dim=time_dim), up]))
            ch = out
        self.final = ResBlock(ch + dim, dim, time_dim=time_dim)
        self.out = nn.Conv2d(dim, in_ch, 1)
        nn.init.zeros_(self.out.weight)  # start from a zero prediction: a stable first step
        nn.init.zeros_(self.out.bias)
        # channels_last makes the oneDNN convolutions ~1.4x faster on CPU (measured: a
        # training step 0.59 -> 0.40 s at 64 px, batch 32, 2 cores) and suits GPUs too.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.patch_size > 1:
            x = F.pixel_unshuffle(x, self.patch_size)  # (B, 3p^2, H/p, W/p)
        x = x.contiguous(memory_format=torch.channels_last)
        temb = self.time_mlp(t)
        x = self.init_conv(x)
        r = x
        skips = []
        for block, down in self.downs:
            x = block(x, temb)
            skips.append(x)
            x = down(x)
        x = self.mid2(self.mid_attn(self.mid1(x, temb)), temb)
        for block, up in self.ups:
            x = block(torch.cat([x, skips.pop()], dim=1), temb)
            x = up(x)
        x = self.out(self.final(torch.cat([x, r], dim=1), temb))
        if self.patch_size > 1:
            x = F.pixel_shuffle(x, self.patch_size)
        return x
