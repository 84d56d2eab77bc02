"""Inference: ``Detector.load(path).score(...)``."""

from detector.inference.detector import Detector, ScoreResult

__all__ = ["Detector", "ScoreResult"]
