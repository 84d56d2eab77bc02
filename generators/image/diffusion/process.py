"""The Gaussian diffusion process around a denoising network.

``GaussianDiffusion(model, *, image_size, timesteps)`` holds the noise schedule,
noises clean images (:meth:`q_sample`), returns the training loss from
``forward`` and samples by DDPM ancestral steps or by DDIM with any number of
steps and any ``eta``. Like denoising-diffusion-pytorch's class of that name, but
every random draw comes from caller-supplied ``torch.Generator`` objects, one per
item, so a sample depends only on its own seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from detector.config import check_choice

BETA_SCHEDULES = ("linear", "cosine")
OBJECTIVES = ("eps", "v")
SAMPLERS = ("ddim", "ddpm")


def make_betas(name: str, timesteps: int) -> torch.Tensor:
    """``(timesteps,)`` float64 noise variances ``beta_t``."""
    check_choice("beta_schedule", name, BETA_SCHEDULES)
    if name == "linear":
        # Ho et al. 2020 (arXiv:2006.11239): 1e-4 .. 0.02 at T=1000, rescaled for other T.
        scale = 1000 / timesteps
        betas = torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
        return betas.clamp(max=0.999)  # beta >= 1 (T <= 20) would break the chain
    # Nichol & Dhariwal 2021 (arXiv:2102.09672): alpha-bar follows a squared cosine.
    s = 0.008
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    abar = torch.cos((x + s) / (1 + s) * math.pi / 2) ** 2
    abar = abar / abar[0]
    return (1 - abar[1:] / abar[:-1]).clamp(0, 0.999)


def gaussian_noise(
    shape: Sequence[int], generator: torch.Generator | None = None, *, offset: float = 0.0
) -> torch.Tensor:
    """``(B, C, H, W)`` standard normal noise plus ``offset`` x a per-image, per-channel constant.

    The offset ("offset noise", Guttenberg 2023, crosslabs.org/blog/diffusion-with-offset-noise)
    makes the noise carry some of each image's overall brightness and colour, so the
    model learns to change them instead of keeping the near-zero mean of white noise.
    """
    b, c = shape[0], shape[1]
    noise = torch.randn(tuple(shape), generator=generator)
    if offset > 0:
        noise = noise + offset * torch.randn((b, c, 1, 1), generator=generator)
    return noise


def _at(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Schedule values at timesteps ``t`` (B,), shaped ``(B, 1, 1, 1)`` to broadcast."""
    return values[t].reshape(-1, 1, 1, 1)


class GaussianDiffusion(nn.Module):
    """Noise schedule, training objective and samplers for ``model(x_t, t) -> eps``.

    ``objective`` is what the network predicts: ``"eps"``, the noise (Ho et al. 2020),
    or ``"v"`` = ``sqrt(abar) eps - sqrt(1 - abar) x0`` (Salimans & Ho 2022,
    arXiv:2202.00512), which stays well conditioned where the image is almost all
    noise; the sampler turns either into a noise estimate.

    ``min_snr_gamma`` > 0 weights each timestep's loss so that it equals the
    noise-prediction loss times ``min(SNR, gamma) / SNR`` (Hang et al. 2023,
    arXiv:2303.09556), which stops the nearly clean timesteps from dominating and
    speeds up convergence; 0 gives the plain loss of the objective.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        image_size: int,
        timesteps: int = 1000,
        beta_schedule: str = "cosine",
        objective: str = "eps",
        min_snr_gamma: float = 5.0,
        offset_noise: float = 0.0,
        channels: int = 3,
    ) -> None:
        super().__init__()
        self.model = model
        self.objective = check_choice("objective", objective, OBJECTIVES)
        self.image_size = image_size
        self.channels = channels
        self.timesteps = timesteps
        self.min_snr_gamma = min_snr_gamma
        self.offset_noise = offset_noise
        betas = make_betas(beta_schedule, timesteps)
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
        # Posterior q(x_{t-1} | x_t, x_0) variance, for DDPM ancestral sampling.
        posterior_var = betas * (1 - prev) / (1 - alphas_cumprod)
        # The schedule is derived from the config, so it stays out of checkpoints.
        for name, value in {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": prev,
            "posterior_var": posterior_var,
        }.items():
            self.register_buffer(name, value.float(), persistent=False)

    # -- forward process -------------------------------------------------------------

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for timesteps ``t`` (B,)."""
        abar = _at(self.alphas_cumprod, t)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def forward(
        self, x0: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The training loss on clean images ``x0`` (B, C, H, W) in [-1, 1]."""
        b = x0.shape[0]
        t = torch.randint(0, self.timesteps, (b,), generator=generator).to(x0.device)
        noise = gaussian_noise(x0.shape, generator, offset=self.offset_noise).to(x0.device)
        abar = _at(self.alphas_cumprod, t)
        v = abar.sqrt() * noise - (1 - abar).sqrt() * x0
        target = noise if self.objective == "eps" else v
        pred = self.model(self.q_sample(x0, t, noise), t)
        loss = (pred - target).square().mean(dim=(1, 2, 3))  # (B,)
        if self.min_snr_gamma > 0:
            snr = (abar / (1 - abar)).flatten()
            # eps loss = abar * v loss = SNR / (SNR + 1) * v loss, hence the v denominator.
            to_eps = snr if self.objective == "eps" else snr + 1
            loss = loss * snr.clamp(max=self.min_snr_gamma) / to_eps
        return loss.mean()

    # -- reverse process -------------------------------------------------------------

    def _noise(self, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Noise for a batch, item ``i`` from ``generators[i]`` (so batching changes nothing).

        Drawn like the training noise, offset included: the samplers' formulas hold for
        any noise covariance as long as it is the same one throughout.
        """
        shape = (1, self.channels, self.image_size, self.image_size)
        noise = torch.cat([gaussian_noise(shape, g, offset=self.offset_noise) for g in generators])
        return noise.to(self.alphas_cumprod.device)

    def _predict(self, x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(eps, x0)`` at integer timestep ``t``, with ``x0`` clipped to [-1, 1]."""
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        out = self.model(x, tt)
        abar = self.alphas_cumprod[t]
        if self.objective == "eps":
            x0 = (x - (1 - abar).sqrt() * out) / abar.sqrt()
        else:
            x0 = abar.sqrt() * x - (1 - abar).sqrt() * out
        x0 = x0.clamp(-1, 1)
        eps = (x - abar.sqrt() * x0) / (1 - abar).sqrt()  # consistent with the clipped x0
        return eps, x0

    @torch.inference_mode()
    def ddim_sample(
        self, generators: Sequence[torch.Generator], *, steps: int = 50, eta: float = 0.0
    ) -> torch.Tensor:
        """DDIM (Song et al. 2020, arXiv:2010.02502): ``steps`` model calls; ``eta`` = 0 is
        deterministic given the starting noise, ``eta`` = 1 matches DDPM's variance."""
        if not 1 <= steps <= self.timesteps:
            raise ValueError(f"steps must be in [1, {self.timesteps}], got {steps}")
        x = self._noise(generators)
        # Evenly spaced integer timesteps from T-1 down to -1, which means "done" (x_0).
        times = [k * self.timesteps // steps - 1 for k in range(steps, -1, -1)]
        for t, t_next in itertools.pairwise(times):
            eps, x0 = self._predict(x, t)
            if t_next < 0:
                x = x0
                continue
            abar, abar_next = self.alphas_cumprod[t], self.alphas_cumprod[t_next]
            sigma = eta * ((1 - abar_next) / (1 - abar) * (1 - abar / abar_next)).sqrt()
            c = (1 - abar_next - sigma**2).clamp(min=0).sqrt()
            x = abar_next.sqrt() * x0 + c * eps
            if eta > 0:
                x = x + sigma * self._noise(generators)
        return x

    @torch.inference_mode()
    def ddpm_sample(self, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Ancestral sampling (Ho et al. 2020): one model call per timestep, T in all."""
        x = self._noise(generators)
        for t in reversed(range(self.timesteps)):
            _, x0 = self._predict(x, t)
            abar, abar_prev = self.alphas_cumprod[t], self.alphas_cumprod_prev[t]
            beta = self.betas[t]
            # Posterior mean of q(x_{t-1} | x_t, x_0).
            mean = (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * x) / (
                1 - abar
            )
            if t > 0:
                mean = mean + self.posterior_var[t].sqrt() * self._noise(generators)
            x = mean
        return x

    def sample(
        self,
        generators: Sequence[torch.Generator],
        *,
        sampler: str = "ddim",
        steps: int = 50,
        eta: float = 0.0,
    ) -> torch.Tensor:
        """``(len(generators), C, H, W)`` samples in [-1, 1]; ``steps``/``eta`` are DDIM's."""
        check_choice("sampler", sampler, SAMPLERS)
        if sampler == "ddpm":
            return self.ddpm_sample(generators)
        return self.ddim_sample(generators, steps=steps, eta=eta)
