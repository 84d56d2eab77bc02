"""``DDPMConfig``: every knob of the diffusion generator, with ``tiny`` and ``default`` presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detector.config import check_choice, check_preset, from_dict
from generators.image.diffusion.process import BETA_SCHEDULES, OBJECTIVES, SAMPLERS
from generators.sources import DEFAULT_SCALES


@dataclass(frozen=True)
class DDPMConfig:
    # -- network ---------------------------------------------------------------------
    image_size: int = 64  # output side in pixels; crops are cut at this size
    # Base channels. 32 keeps a U-Net forward pass near 4 ms per 64x64 image on two
    # CPU cores, so ~700 samples x 25 DDIM steps take ~1-2 minutes (1.6M parameters).
    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 2, 4)  # a level each: 32, 16, 8 px (64 px / patch 2)
    # Fold 2x2 pixel patches into channels so the U-Net runs at half resolution: a 4x
    # cheaper network at the price of some fine detail (simple diffusion, arXiv:2301.11093).
    patch_size: int = 2
    attention: bool = True  # self-attention at the lowest resolution only (8x8: cheap)
    # -- process ---------------------------------------------------------------------
    timesteps: int = 1000  # the usual DDPM T; DDIM samples with far fewer steps
    # Cosine keeps more signal at mid timesteps than linear, which suits small images
    # (Nichol & Dhariwal 2021).
    beta_schedule: str = "cosine"
    # What the U-Net predicts: "eps" (noise) or "v". Trained this briefly, eps gave
    # saturated, high-contrast speckle (its x0 estimate divides by sqrt(abar) ~ 0 at high
    # noise); v gave the real crops' brightness and contrast (arXiv:2202.00512).
    objective: str = "v"
    min_snr_gamma: float = 5.0  # Min-SNR loss weighting: faster convergence; 0 turns it off
    # Without it samples all came out a similar mid grey (per-image means spread 10 grey
    # levels vs 40 in real crops); with 0.1 they spread 41. 0 turns it off.
    offset_noise: float = 0.1
    sampler: str = "ddim"  # "ddim" (sample_steps model calls) or "ddpm" (timesteps calls)
    sample_steps: int = 25  # DDIM steps: 50 changed the sample statistics little in a trial
    eta: float = 0.0  # DDIM noise: 0 deterministic given x_T, 1 ~ DDPM's variance
    sample_batch: int = 100  # images per sampling batch: bounds memory for any n
    # -- training --------------------------------------------------------------------
    # ~7 passes over 4096 crops at 900 x 32: a model trained this briefly cannot overfit
    # them, so more crops would only cost memory and loading time.
    n_train_crops: int = 4096
    scales: tuple[float, ...] = DEFAULT_SCALES  # texture (1.0) and whole objects (0.25)
    batch_size: int = 32
    # The CPU budget (fit in ~4-8 min on 2 cores at ~0.4 s a step) sets this, not
    # convergence: samples are blurry blobs with real crops' colour and contrast, not objects.
    steps: int = 900
    # High for a diffusion model (2e-4 is usual) because the run is short; warmed up
    # linearly, then decayed on a cosine to 10%.
    lr: float = 1e-3
    warmup_steps: int = 25
    grad_clip: float = 1.0
    # The EMA weights sample. Over 900 steps 0.999 would still half remember the
    # random init; 0.995 averages over the last ~200 steps (and warms up from 0).
    ema_decay: float = 0.995
    seed: int = 0  # crops, weight init, timesteps and noise during training

    def __post_init__(self) -> None:
        check_choice("beta_schedule", self.beta_schedule, BETA_SCHEDULES)
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("sampler", self.sampler, SAMPLERS)
        if not self.dim_mults:
            raise ValueError("dim_mults must name at least one level")
        factor = self.patch_size * 2 ** (len(self.dim_mults) - 1)
        if self.image_size % factor:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by patch_size * "
                f"2**(len(dim_mults) - 1) = {factor}"
            )
        if not 1 <= self.sample_steps <= self.timesteps:
            raise ValueError(f"sample_steps must be in [1, timesteps={self.timesteps}]")
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0, got {self.eta}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("steps", "batch_size", "n_train_crops", "sample_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> DDPMConfig:
        """The ``tiny`` (tests: 16 px, seconds) or ``default`` preset, with field overrides.

        >>> DDPMConfig.preset("tiny", steps=3).steps
        3
        """
        check_preset(name)
        base = _TINY if name == "tiny" else cls()
        return from_dict(cls, overrides, base=base)


# Seconds on a CPU: a 16 px, 8-channel, two-level net; DDPM sampling stays affordable
# because T is only 50.
_TINY = DDPMConfig(
    image_size=16,
    dim=8,
    dim_mults=(1, 2),
    patch_size=1,
    timesteps=50,
    sample_steps=5,
    sample_batch=16,
    n_train_crops=64,
    batch_size=8,
    steps=4,
    warmup_steps=2,
    ema_decay=0.9,
)
