"""Perturbations for the robustness sweep: what happens to media on its way to a moderator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from detector.data.augment import blur, jpeg, rescale

Perturb = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _noise(sigma: float) -> Perturb:
    def apply(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = img.astype(np.float32) + rng.normal(scale=sigma, size=img.shape)
        return np.clip(noisy.round(), 0, 255).astype(np.uint8)

    return apply


PERTURBATIONS: dict[str, Perturb] = {
    "jpeg_q90": lambda img, _r: jpeg(img, 90),
    "jpeg_q70": lambda img, _r: jpeg(img, 70),
    "jpeg_q50": lambda img, _r: jpeg(img, 50),
    "resize_0.75": lambda img, _r: rescale(img, 0.75),
    "resize_0.5": lambda img, _r: rescale(img, 0.5),
    "blur_1": lambda img, _r: blur(img, 1.0),
    "blur_2": lambda img, _r: blur(img, 2.0),
    "noise_5": _noise(5.0),  # Gaussian, sigma in 8-bit levels
    "resize_0.5+jpeg_q60": lambda img, _r: jpeg(rescale(img, 0.5), 60),
}


def _audio_noise(snr_db: float) -> Perturb:
    from detector.data.audio import add_noise

    return lambda y, rng: add_noise(y, snr_db, rng)


def _audio() -> dict[str, Perturb]:
    from detector.data.audio import codec, resample_through, telephone

    return {
        "mp3_128k": lambda y, _r: codec(y, "mp3", 128),
        "mp3_64k": lambda y, _r: codec(y, "mp3", 64),
        "mp3_32k": lambda y, _r: codec(y, "mp3", 32),
        "opus_24k": lambda y, _r: codec(y, "opus", 24),
        "noise_30db": _audio_noise(30.0),
        "noise_20db": _audio_noise(20.0),
        "telephone_8k": lambda y, _r: telephone(y),
        "resample_8k": lambda y, _r: resample_through(y, 8000),
    }


def perturbations(modality: str) -> dict[str, Perturb]:
    """The sweep for a modality: JPEG/resize/blur/noise for images; codecs, noise, the
    telephone band and resampling for speech."""
    if modality == "audio":
        return _audio()
    return PERTURBATIONS
