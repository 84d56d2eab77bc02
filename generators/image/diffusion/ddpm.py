"""``ddpm``: a small pixel-space diffusion model (U-Net + Gaussian diffusion), as a Generator.

Trains on real crops with the denoising loss (v- or noise-prediction), keeps an EMA
copy of the weights, and samples from the EMA copy with DDIM (default) or DDPM.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from generators.base import FitReport, Generator, Samples, StepFn
from generators.image._tensor import Smoothed, item_seeds, minibatches, to_tensor, to_uint8
from generators.image.diffusion.config import DDPMConfig
from generators.image.diffusion.process import GaussianDiffusion
from generators.image.diffusion.unet import Unet
from generators.registry import register
from generators.sources import RealSource


class DDPM(Generator):
    """Unconditional diffusion. ``nets["diffusion"]`` trains; ``nets["ema"]`` samples.

    ``generate(n, seed=s)`` draws all of item ``i``'s noise (start and, for DDPM or
    DDIM with ``eta`` > 0, every step) from its own ``torch.Generator``, seeded by
    ``Samples.seeds[i]``, derived from ``s`` as the GAN family does; so an item does
    not depend on the batching, and calls with nearby seeds share no samples.
    """

    family = "diffusion"

    def __init__(self, name: str, config: DDPMConfig) -> None:
        super().__init__(name, config)
        # Seeded init without touching the caller's global RNG: fit() is reproducible.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            unet = Unet(
                config.dim,
                dim_mults=config.dim_mults,
                patch_size=config.patch_size,
                attention=config.attention,
            )
        self.nets["diffusion"] = self._process(unet)
        ema = copy.deepcopy(unet).requires_grad_(False).eval()
        self.nets["ema"] = self._process(ema)

    def _process(self, unet: nn.Module) -> GaussianDiffusion:
        cfg = self.config
        return GaussianDiffusion(
            unet,
            image_size=cfg.image_size,
            timesteps=cfg.timesteps,
            beta_schedule=cfg.beta_schedule,
            objective=cfg.objective,
            min_snr_gamma=cfg.min_snr_gamma,
            offset_noise=cfg.offset_noise,
        )

    def fit(self, source: RealSource, *, on_step: StepFn | None = None) -> FitReport:
        cfg: DDPMConfig = self.config
        start = time.perf_counter()
        crops = source.crop_array(
            cfg.n_train_crops, size=cfg.image_size, seed=cfg.seed, scales=cfg.scales
        )
        data = to_tensor(crops)  # (N, 3, H, W) in [-1, 1]
        device = self.device
        gen = torch.Generator().manual_seed(cfg.seed)
        diffusion, ema = self.nets["diffusion"], self.nets["ema"]
        diffusion.train()
        opt = torch.optim.AdamW(diffusion.parameters(), lr=cfg.lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(cfg.warmup_steps, cfg.steps))
        smoothed = Smoothed()
        metrics: dict[str, float] = {}
        batches = minibatches(data, batch_size=cfg.batch_size, steps=cfg.steps, generator=gen)
        for step, batch in enumerate(batches, start=1):
            loss = diffusion(batch.to(device), generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(diffusion.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            # EMA warm-up (as in ema-pytorch): early on, follow the weights closely.
            _ema_update(ema, diffusion, decay=min(cfg.ema_decay, (1 + step) / (10 + step)))
            metrics = smoothed.update(loss=loss.item())
            if on_step is not None:
                on_step(step, cfg.steps, metrics)
        diffusion.eval()
        self.fit_report = FitReport(
            steps=cfg.steps,
            seconds=time.perf_counter() - start,
            n_train=len(data),
            final=metrics,
        )
        return self.fit_report

    def generate(self, n: int, *, seed: int, source: RealSource | None = None) -> Samples:
        cfg: DDPMConfig = self.config
        seeds = item_seeds(seed, n)
        images = np.empty((n, cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
        ema = self.nets["ema"].eval()
        for lo in range(0, n, cfg.sample_batch):
            chunk = seeds[lo : lo + cfg.sample_batch]
            gens = [torch.Generator().manual_seed(s) for s in chunk]
            x = ema.sample(gens, sampler=cfg.sampler, steps=cfg.sample_steps, eta=cfg.eta)
            images[lo : lo + len(chunk)] = to_uint8(x)
        return Samples(images=images, sources=[None] * n, seeds=seeds)


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, *, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def _warmup_cosine(warmup: int, total: int) -> Any:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine down to 0.1."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


@register("ddpm", family="diffusion")
def ddpm(*, preset: str = "default", **overrides: Any) -> DDPM:
    """A pixel-space DDPM (U-Net, EMA weights) sampled with DDIM by default."""
    return DDPM("ddpm", DDPMConfig.preset(preset, **overrides))
