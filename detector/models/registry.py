"""The detector registry: ``create(name, preset=..., **overrides)`` -> ``nn.Module``."""

from __future__ import annotations

from typing import Any

from torch import nn

from detector.config import check_preset
from detector.models.image import ImageDetector, ImageDetectorConfig
from detector.registry import Registry

DETECTORS: Registry[nn.Module] = Registry("detector")


@DETECTORS.register("image_cnn", modality="image")
def image_cnn(*, preset: str = "default", **overrides: Any) -> ImageDetector:
    """timm CNN (narrow ResNet-10-T by default) on RGB plus the NPR residual."""
    return ImageDetector(ImageDetectorConfig.preset(preset, **overrides))


@DETECTORS.register("audio_cnn", modality="audio")
def audio_cnn(*, preset: str = "default", **overrides: Any) -> nn.Module:
    """A spectrogram front-end (LFCC by default) and a one-channel timm CNN on 4 s chunks."""
    from detector.models.audio import AudioDetector, AudioDetectorConfig  # needs librosa

    return AudioDetector(AudioDetectorConfig.preset(preset, **overrides))


@DETECTORS.register("ensemble", modality="any")
def ensemble(*, preset: str = "default", **values: Any) -> nn.Module:
    """Trained detectors of one modality, their calibrated logits averaged (built from
    model folders by ``synthguard ensemble``, never trained as one)."""
    from detector.models.ensemble import EnsembleModel, ensemble_config

    return EnsembleModel(ensemble_config(**values))


def create(name: str, /, preset: str = "default", **overrides: Any) -> nn.Module:
    check_preset(preset)
    return DETECTORS.create(name, preset=preset, **overrides)


def names() -> list[str]:
    return DETECTORS.names()
