"""DCGAN-style GANs, one per upsampling kind: ``gan_tconv``, ``gan_nearest``, ...

Radford et al., "Unsupervised Representation Learning with Deep Convolutional GANs",
2015, https://arxiv.org/abs/1511.06434. The generator is the DCGAN shape with its
upsampling layers swapped for :class:`Upsample2x` of the configured kind, so the four
variants differ only in the fingerprint that kind leaves.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detector.config import check_choice, check_preset, from_dict
from generators.base import FitReport, Generator, Samples, StepFn
from generators.image._tensor import Smoothed, item_seeds, minibatches, to_tensor, to_uint8
from generators.image._upsample import UPSAMPLE_KINDS, Upsample2x
from generators.registry import register
from generators.sources import DEFAULT_SCALES, RealSource

GENERATE_BATCH = 64  # samples per forward pass in generate(): bounds memory for any n


@dataclass(frozen=True)
class GANConfig:
    # The default preset must fit in about 3-6 minutes on 2 CPU cores: widths, batch and
    # steps are sized for that budget first, image quality second.
    image_size: int = 64  # a power of two >= 16: a 4x4 seed doubled once per block
    z_dim: int = 64  # DCGAN uses 100; 64 is enough for the crops of ~20 photos
    channels: int = 16  # the widest layer has channels * image_size / 8; DCGAN's 64 is ~16x slower
    upsample: str = "tconv"  # one of UPSAMPLE_KINDS: the fingerprint under study
    n_train_crops: int = 4096  # ~215 per starter photo; 200 MB as float32 at 64 px
    # The scales real crops are cut at for the corpus, so a detector cannot tell fake from
    # real by zoom level alone.
    scales: tuple[float, ...] = DEFAULT_SCALES
    batch_size: int = 32  # DCGAN used 128; on a CPU, time per step is what limits us
    steps: int = 2000  # textures and colour blobs form by ~1500 steps; shapes need far more
    lr: float = 2e-4  # DCGAN's
    betas: tuple[float, float] = (0.5, 0.999)  # DCGAN's: beta1 0.9 makes training oscillate
    seed: int = 0  # weight init, crops, minibatches and training noise

    def __post_init__(self) -> None:
        size = self.image_size
        if size < 16 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two >= 16, got {size}")
        check_choice("upsample kind", self.upsample, UPSAMPLE_KINDS)
        if min(self.z_dim, self.channels, self.n_train_crops, self.batch_size, self.steps) < 1:
            raise ValueError("z_dim, channels, n_train_crops, batch_size and steps must be >= 1")
        if not self.scales:
            raise ValueError("scales must not be empty")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GANConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Seconds on a CPU: for tests, not for looking at.
    "tiny": {
        "image_size": 16,
        "z_dim": 16,
        "channels": 8,
        "n_train_crops": 64,
        "batch_size": 16,
        "steps": 4,
    },
}


# --- networks ---------------------------------------------------------------------------


def _levels(image_size: int) -> int:
    return int(math.log2(image_size)) - 2  # doublings from the 4x4 seed


class DCGANGenerator(nn.Module):
    """``(B, z_dim)`` -> ``(B, 3, S, S)`` in [-1, 1].

    z -> linear to ``(B, C_max, 4, 4)`` -> [Upsample2x, BatchNorm, ReLU] halving the width
    -> a last Upsample2x straight to RGB, then tanh (no conv after it to blur its trace).
    """

    def __init__(self, *, z_dim: int, image_size: int, channels: int, upsample: str) -> None:
        super().__init__()
        levels = _levels(image_size)
        width = channels * 2 ** (levels - 1)  # (B, width, 4, 4): DCGAN's ngf * 8 at 64 px
        # A linear layer on z is DCGAN's 4x4 transposed conv on a 1x1 input, written plainly.
        self.project = nn.Sequential(
            nn.Linear(z_dim, width * 16, bias=False),
            nn.Unflatten(1, (width, 4, 4)),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        for _ in range(levels - 1):
            blocks += [
                Upsample2x(width, width // 2, kind=upsample, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        blocks += [Upsample2x(width, 3, kind=upsample), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.project(z))


class DCGANDiscriminator(nn.Module):
    """``(B, 3, S, S)`` -> ``(B,)`` logits: stride-2 4x4 convs down to 4x4, then one 4x4 conv."""

    def __init__(self, *, image_size: int, channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels, 4, 2, 1),  # no BatchNorm on the input layer (DCGAN)
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = channels
        for _ in range(_levels(image_size) - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0)]  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def dcgan_init(net: nn.Module) -> None:
    """DCGAN's init: conv/linear weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# --- objective --------------------------------------------------------------------------


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE: real -> 1, fake -> 0."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# --- the generator ----------------------------------------------------------------------


class GAN(Generator):
    """A DCGAN trained on real crops; ``generate`` samples it from seeded latents."""

    family = "gan"

    def __init__(self, name: str, config: GANConfig) -> None:
        super().__init__(name, config)
        # Seeded init, without touching the global RNG: the same config builds the same nets.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.nets["generator"] = DCGANGenerator(
                z_dim=config.z_dim,
                image_size=config.image_size,
                channels=config.channels,
                upsample=config.upsample,
            )
            self.nets["discriminator"] = DCGANDiscriminator(
                image_size=config.image_size, channels=config.channels
            )
            dcgan_init(self.nets)

    def fit(self, source: RealSource, *, on_step: StepFn | None = None) -> FitReport:
        cfg: GANConfig = self.config
        start = time.perf_counter()
        device = self.device
        real = source.crop_array(
            cfg.n_train_crops, size=cfg.image_size, seed=cfg.seed, scales=cfg.scales
        )
        data = to_tensor(real)  # (N, 3, S, S) in [-1, 1], kept on the CPU
        rng = torch.Generator().manual_seed(cfg.seed)
        gen, disc = self.nets["generator"], self.nets["discriminator"]
        opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=cfg.betas)
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.nets.train()
        smooth = Smoothed()
        metrics: dict[str, float] = {}
        batches = minibatches(data, batch_size=cfg.batch_size, steps=cfg.steps, generator=rng)
        for step, batch in enumerate(batches, start=1):
            x = batch.to(device)
            z = torch.randn(x.shape[0], cfg.z_dim, generator=rng).to(device)
            fake = gen(z)

            real_logits, fake_logits = disc(x), disc(fake.detach())
            loss_d = discriminator_loss(real_logits, fake_logits)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            loss_g = generator_loss(disc(fake))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

            metrics = smooth.update(
                loss_d=loss_d.item(),
                loss_g=loss_g.item(),
                d_real=torch.sigmoid(real_logits).mean().item(),
                d_fake=torch.sigmoid(fake_logits).mean().item(),
            )
            if on_step is not None:
                on_step(step, cfg.steps, metrics)
        _recalibrate_batchnorm(gen, z_dim=cfg.z_dim, rng=rng, device=device)
        self.fit_report = FitReport(
            steps=cfg.steps,
            seconds=time.perf_counter() - start,
            n_train=len(data),
            final=metrics,
        )
        return self.fit_report

    def generate(self, n: int, *, seed: int, source: RealSource | None = None) -> Samples:
        """``n`` samples from seeded latents; ``source`` is unused (GANs are unconditional).

        Item ``i``'s latent comes from a ``torch.Generator`` seeded with ``seeds[i]``, itself
        derived from ``seed`` (``seed >= 0``): items do not depend on batching, and calls
        with nearby seeds share no samples.
        """
        cfg: GANConfig = self.config
        seeds = item_seeds(seed, n)
        gen = self.nets["generator"].eval()
        chunks: list[np.ndarray] = []
        with torch.inference_mode():
            for i in range(0, n, GENERATE_BATCH):
                z = torch.stack([_latent(s, cfg.z_dim) for s in seeds[i : i + GENERATE_BATCH]])
                chunks.append(to_uint8(gen(z.to(self.device))))
        size = cfg.image_size
        images = np.concatenate(chunks) if chunks else np.empty((0, size, size, 3), np.uint8)
        return Samples(images=images, sources=[None] * n, seeds=seeds)


def _latent(seed: int, z_dim: int) -> torch.Tensor:
    return torch.randn(z_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _recalibrate_batchnorm(
    gen: nn.Module, *, z_dim: int, rng: torch.Generator, device: torch.device
) -> None:
    """Recompute BatchNorm running statistics with the final weights, over 512 latents.

    The running averages trail the last few hundred updates; generate() runs in eval mode
    (so a sample does not depend on its batch mates) and needs statistics of the final
    generator ("precise BN", Wu & Johnson, https://arxiv.org/abs/2105.07576).
    """
    momenta = {m: m.momentum for m in gen.modules() if isinstance(m, nn.BatchNorm2d)}
    for m in momenta:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the batches below
    gen.train()
    for _ in range(4):
        gen(torch.randn(128, z_dim, generator=rng).to(device))
    for m, momentum in momenta.items():
        m.momentum = momentum
    gen.eval()


# --- registered builders ----------------------------------------------------------------


def _build(name: str, kind: str, preset: str, overrides: dict[str, Any]) -> GAN:
    overrides.setdefault("upsample", kind)
    return GAN(name, GANConfig.preset(preset, **overrides))


@register("gan_tconv", family="gan")
def gan_tconv(*, preset: str = "default", **overrides: Any) -> GAN:
    return _build("gan_tconv", "tconv", preset, overrides)


@register("gan_nearest", family="gan")
def gan_nearest(*, preset: str = "default", **overrides: Any) -> GAN:
    return _build("gan_nearest", "nearest", preset, overrides)


@register("gan_bilinear", family="gan")
def gan_bilinear(*, preset: str = "default", **overrides: Any) -> GAN:
    return _build("gan_bilinear", "bilinear", preset, overrides)


@register("gan_pixelshuffle", family="gan")
def gan_pixelshuffle(*, preset: str = "default", **overrides: Any) -> GAN:
    return _build("gan_pixelshuffle", "pixelshuffle", preset, overrides)
