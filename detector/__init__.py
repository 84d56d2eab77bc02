"""synthguard.detector: judges media (decoding and validation, models, training, inference)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detector.inference import Detector, ScoreResult


def __getattr__(name: str) -> Any:
    # Lazy: `import detector.media` must not pull in torch.
    if name in ("Detector", "ScoreResult"):
        from detector import inference

        return getattr(inference, name)
    raise AttributeError(name)


__all__ = ["Detector", "ScoreResult"]
