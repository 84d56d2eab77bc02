"""Diffusion generators. Importing this package registers ``ddpm``."""

from generators.image.diffusion.config import DDPMConfig
from generators.image.diffusion.ddpm import DDPM, ddpm
from generators.image.diffusion.process import GaussianDiffusion
from generators.image.diffusion.unet import Unet

__all__ = ["DDPM", "DDPMConfig", "GaussianDiffusion", "Unet", "ddpm"]
