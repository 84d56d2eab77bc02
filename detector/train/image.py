"""Training an image detector: the shared trainer with the image task."""

from __future__ import annotations

from functools import partial

from detector.train.trainer import TrainResult, train_detector

train_image_detector = partial(train_detector, modality="image")

__all__ = ["TrainResult", "train_image_detector"]
