"""Artifact simulators: autoencoders that redraw real crops through a chosen upsampling.

A crop is squeezed through a small bottleneck (``image_size / 8`` or ``/ 16`` on a side,
a few channels, no skip connections), so the decoder has to synthesise the detail
back, and every output pixel carries the trace of its :class:`Upsample2x` kind. The
content stays that of a real photo, which makes these the hard cases for a detector:
same scene, different pixel statistics (in the spirit of Zhang et al., "Detecting and
Simulating Artifacts in GAN Fake Images", 2019, https://arxiv.org/abs/1907.06515).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detector.config import check_choice, check_preset, from_dict
from generators.base import FitReport, Generator, Samples, StepFn
from generators.image._tensor import Smoothed, minibatches, to_tensor, to_uint8
from generators.image._upsample import UPSAMPLE_KINDS, Upsample2x
from generators.registry import register
from generators.sources import DEFAULT_SCALES, Crop, RealSource

GENERATE_BATCH = 64  # crops per forward pass in generate(): bounds memory for any n


@dataclass(frozen=True)
class AEConfig:
    # The default preset must fit in about 2-4 minutes on 2 CPU cores: widths, batch and
    # steps are sized for that budget first, reconstruction quality second.
    image_size: int = 64  # a power of two >= 16
    channels: int = 16  # encoder width at full resolution, doubled per downsampling
    # Bottleneck side = image_size / bottleneck_factor (8 or 16). At 8 with 16 channels a
    # 64 px crop is 1024 numbers for 12288 pixel values: 12x fewer, so fine detail is
    # redrawn by the decoder. 8 channels (24x) gave visibly blurrier, less photo-like output.
    bottleneck_factor: int = 8
    bottleneck_channels: int = 16
    upsample: str = "tconv"  # one of UPSAMPLE_KINDS: the fingerprint under study
    n_train_crops: int = 4096  # ~215 per starter photo; 200 MB as float32 at 64 px
    # The scales real crops are cut at for the corpus, so both sides see the same zooms.
    scales: tuple[float, ...] = DEFAULT_SCALES
    # Small batches, more steps: a step of 16 costs half one of 32, and by 1500 steps the
    # reconstructions are recognisable (the loss still falls slowly after that).
    batch_size: int = 16
    steps: int = 1500
    lr: float = 1e-3  # Adam's usual rate; no norm layers, so no warm-up or schedule needed
    # L1 keeps edges sharp; a little MSE pulls down the large colour errors of early training.
    mse_weight: float = 0.1
    seed: int = 0  # weight init, crops and minibatches

    def __post_init__(self) -> None:
        size = self.image_size
        if size < 16 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two >= 16, got {size}")
        check_choice("upsample kind", self.upsample, UPSAMPLE_KINDS)
        if self.bottleneck_factor not in (8, 16):
            raise ValueError(f"bottleneck_factor must be 8 or 16, got {self.bottleneck_factor}")
        if size // self.bottleneck_factor < 2:
            raise ValueError(
                f"image_size {size} is too small for bottleneck_factor {self.bottleneck_factor}"
            )
        counts = (self.channels, self.bottleneck_channels, self.n_train_crops)
        if min(*counts, self.batch_size, self.steps) < 1:
            raise ValueError(
                "channels, bottleneck_channels, n_train_crops, batch_size and steps must be >= 1"
            )
        if self.mse_weight < 0:
            raise ValueError(f"mse_weight must be >= 0, got {self.mse_weight}")
        if not self.scales:
            raise ValueError("scales must not be empty")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AEConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Seconds on a CPU: for tests, not for looking at.
    "tiny": {
        "image_size": 16,
        "channels": 8,
        "bottleneck_channels": 4,
        "n_train_crops": 64,
        "batch_size": 16,
        "steps": 6,
    },
}


# --- network ----------------------------------------------------------------------------


class ConvAutoencoder(nn.Module):
    """``(B, 3, S, S)`` -> ``(B, 3, S, S)`` in [-1, 1], through ``(B, bc, S/f, S/f)``.

    Encoder: 3x3 conv, then a stride-2 4x4 conv per halving (width doubling), then a
    linear 3x3 conv to the bottleneck. Decoder: the mirror, each doubling an Upsample2x
    followed by a 3x3 conv; the last Upsample2x goes straight to RGB (then tanh), with no
    conv after it to blur its trace.
    """

    def __init__(
        self,
        *,
        channels: int,
        bottleneck_factor: int,
        bottleneck_channels: int,
        upsample: str,
    ) -> None:
        super().__init__()
        levels = int(math.log2(bottleneck_factor))
        enc: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1, 1), _act()]
        width = channels
        for _ in range(levels):
            enc += [nn.Conv2d(width, width * 2, 4, 2, 1), _act()]
            width *= 2
        enc += [nn.Conv2d(width, bottleneck_channels, 3, 1, 1)]  # (B, bc, S/f, S/f)
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [nn.Conv2d(bottleneck_channels, width, 3, 1, 1), _act()]
        for _ in range(levels - 1):
            dec += [
                Upsample2x(width, width // 2, kind=upsample),
                _act(),
                nn.Conv2d(width // 2, width // 2, 3, 1, 1),
                _act(),
            ]
            width //= 2
        dec += [Upsample2x(width, 3, kind=upsample), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


# --- objective --------------------------------------------------------------------------


def reconstruction_loss(
    recon: torch.Tensor, target: torch.Tensor, *, mse_weight: float
) -> torch.Tensor:
    """L1, plus ``mse_weight`` times MSE (both on [-1, 1] pixels)."""
    loss = F.l1_loss(recon, target)
    if mse_weight:
        loss = loss + mse_weight * F.mse_loss(recon, target)
    return loss


# --- the generator ----------------------------------------------------------------------


class Autoencoder(Generator):
    """Reconstructs real crops; ``generate`` needs the real source to take them from."""

    family = "autoencoder"
    conditional = True

    def __init__(self, name: str, config: AEConfig) -> None:
        super().__init__(name, config)
        # Seeded init, without touching the global RNG: the same config builds the same net.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.nets["autoencoder"] = ConvAutoencoder(
                channels=config.channels,
                bottleneck_factor=config.bottleneck_factor,
                bottleneck_channels=config.bottleneck_channels,
                upsample=config.upsample,
            )

    def fit(self, source: RealSource, *, on_step: StepFn | None = None) -> FitReport:
        cfg: AEConfig = self.config
        start = time.perf_counter()
        device = self.device
        real = source.crop_array(
            cfg.n_train_crops, size=cfg.image_size, seed=cfg.seed, scales=cfg.scales
        )
        data = to_tensor(real)  # (N, 3, S, S) in [-1, 1], kept on the CPU
        rng = torch.Generator().manual_seed(cfg.seed)
        net = self.nets["autoencoder"].train()
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        smooth = Smoothed()
        metrics: dict[str, float] = {}
        batches = minibatches(data, batch_size=cfg.batch_size, steps=cfg.steps, generator=rng)
        for step, batch in enumerate(batches, start=1):
            x = batch.to(device)
            recon = net(x)
            loss = reconstruction_loss(recon, x, mse_weight=cfg.mse_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            metrics = smooth.update(loss=loss.item(), l1=F.l1_loss(recon.detach(), x).item())
            if on_step is not None:
                on_step(step, cfg.steps, metrics)
        net.eval()
        self.fit_report = FitReport(
            steps=cfg.steps,
            seconds=time.perf_counter() - start,
            n_train=len(data),
            final=metrics,
        )
        return self.fit_report

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 -> their reconstructions, same shape and dtype."""
        net = self.nets["autoencoder"].eval()
        out = np.empty_like(images)
        with torch.inference_mode():
            for i in range(0, len(images), GENERATE_BATCH):
                x = to_tensor(images[i : i + GENERATE_BATCH]).to(self.device)
                out[i : i + GENERATE_BATCH] = to_uint8(net(x))
        return out

    def generate(self, n: int, *, seed: int, source: RealSource | None = None) -> Samples:
        """Reconstructions of ``n`` crops of ``source`` drawn with ``seed``.

        ``sources[i]`` is the id of the real photo crop ``i`` came from; ``seeds`` repeats
        ``seed`` (crop ``i`` is the ``i``-th that ``source.crops`` draws for it).
        """
        if source is None:
            raise ValueError(
                f"{self.name} is an autoencoder: generate() needs `source`, the real images "
                "whose crops it reconstructs"
            )
        cfg: AEConfig = self.config
        size = cfg.image_size
        images = np.empty((n, size, size, 3), dtype=np.uint8)
        parents: list[str | None] = []
        crops = source.crops(n, size=size, seed=seed, scales=cfg.scales)
        for i, chunk in enumerate(_chunks(crops, GENERATE_BATCH)):
            start = i * GENERATE_BATCH
            images[start : start + len(chunk)] = self.reconstruct(
                np.stack([c.image for c in chunk])
            )
            parents += [c.parent for c in chunk]
        return Samples(images=images, sources=parents, seeds=[seed] * n)


def _chunks(crops: Iterator[Crop], size: int) -> Iterator[list[Crop]]:
    chunk: list[Crop] = []
    for crop in crops:
        chunk.append(crop)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- registered builders ----------------------------------------------------------------


def _build(name: str, kind: str, preset: str, overrides: dict[str, Any]) -> Autoencoder:
    overrides.setdefault("upsample", kind)
    return Autoencoder(name, AEConfig.preset(preset, **overrides))


@register("ae_tconv", family="autoencoder")
def ae_tconv(*, preset: str = "default", **overrides: Any) -> Autoencoder:
    return _build("ae_tconv", "tconv", preset, overrides)


@register("ae_nearest", family="autoencoder")
def ae_nearest(*, preset: str = "default", **overrides: Any) -> Autoencoder:
    return _build("ae_nearest", "nearest", preset, overrides)


@register("ae_bilinear", family="autoencoder")
def ae_bilinear(*, preset: str = "default", **overrides: Any) -> Autoencoder:
    return _build("ae_bilinear", "bilinear", preset, overrides)


@register("ae_pixelshuffle", family="autoencoder")
def ae_pixelshuffle(*, preset: str = "default", **overrides: Any) -> Autoencoder:
    return _build("ae_pixelshuffle", "pixelshuffle", preset, overrides)
