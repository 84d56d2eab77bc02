"""Detector networks, their registry and their on-disk format."""

from detector.models.checkpoint import load_model, read_card, save_model
from detector.models.image import ImageDetector, ImageDetectorConfig
from detector.models.registry import DETECTORS, create, names
from detector.models.residual import RESIDUAL_KINDS, ResidualInput

__all__ = [
    "DETECTORS",
    "RESIDUAL_KINDS",
    "ImageDetector",
    "ImageDetectorConfig",
    "ResidualInput",
    "create",
    "load_model",
    "names",
    "read_card",
    "save_model",
]
