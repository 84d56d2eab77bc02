"""Fakes made on the fly by untrained decoders: the image trainer's online fakes.

A real image is shrunk by ``2**k`` (``k`` of 1 to ``max_levels``, area averaging) and
rebuilt by a decoder whose weights are random, drawn anew for every fake: a 3x3 conv to
``width`` channels, then ``k`` :class:`~generators.image._upsample.Upsample2x` layers of
one random kind with ReLUs between, the last one straight to RGB, as the decoders of the
built-in GANs and autoencoders end. Its colours are then moved to the real image's
(each channel's mean and spread).

The trace an up-sampling layer leaves comes from its arithmetic as much as from its
trained weights (Odena et al., "Deconvolution and Checkerboard Artifacts", 2016), so an
untrained decoder already leaves it, with a new spectrum at every draw. Zhang et al.
("Detecting and Simulating Artifacts in GAN Fake Images", 2019,
https://arxiv.org/abs/1907.06515) trained detectors on such simulated up-sampling
instead of one generator's output to reach generators they never saw. Here the fakes
come on top of the corpus (``p_online_fake``), never from one of its generators, so a
leave-one-family-out run holds its family out all the same.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from generators.image._upsample import UPSAMPLE_KINDS, Upsample2x


def random_decoder(kind: str, levels: int, width: int) -> nn.Module:
    """An untrained decoder (torch's default initialisation, from the global seed)."""
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 1, 1), nn.ReLU()]
    for i in range(levels):
        last = i == levels - 1
        layers.append(Upsample2x(width, 3 if last else width, kind=kind))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def random_decoded(
    img: np.ndarray, rng: np.random.Generator, *, width: int = 16, max_levels: int = 3
) -> np.ndarray:
    """``img`` (``(H, W, 3)`` uint8) rebuilt by a fresh untrained decoder (see the module),
    cut to a multiple of ``2**k`` on each side; uint8, the same colours on average. ``k``
    is at most what the image's shorter side allows."""
    side = min(img.shape[:2])
    if side < 2:
        raise ValueError(f"an image of {img.shape[1]}x{img.shape[0]} is too small to shrink")
    levels = min(int(rng.integers(1, max_levels + 1)), int(np.log2(side)))
    kind = UPSAMPLE_KINDS[int(rng.integers(len(UPSAMPLE_KINDS)))]
    f = 2**levels
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    real = img[:h, :w].astype(np.float32)
    x = torch.from_numpy(real / 127.5 - 1.0).permute(2, 0, 1)[None]
    x = nn.functional.avg_pool2d(x, f)
    seed = int(rng.integers(2**31))
    with torch.random.fork_rng(devices=[]), torch.no_grad():  # the caller's RNG stays put
        torch.manual_seed(seed)
        out = random_decoder(kind, levels, width)(x)[0].permute(1, 2, 0).numpy()
    mean, std = real.mean(axis=(0, 1)), real.std(axis=(0, 1))
    o_mean, o_std = out.mean(axis=(0, 1)), out.std(axis=(0, 1))
    out = (out - o_mean) / np.maximum(o_std, 1e-6) * std + mean
    return np.clip(out, 0, 255).round().astype(np.uint8)
