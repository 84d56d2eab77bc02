"""Image generator families. Importing this package registers them all."""

from generators.image import autoencoder, diffusion, gan

__all__ = ["autoencoder", "diffusion", "gan"]
