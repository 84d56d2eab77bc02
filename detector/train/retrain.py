"""The recipe for retraining a detector when a generator is added: fine-tune the active
model on every corpus it knew plus the new items (replay), or train from scratch.

Replay is not a buffer of chosen examples: every earlier item stays in the training set,
next to the new generator's items, so each epoch reminds the network of what it caught
before. With a lower learning rate and fewer epochs than a run from scratch the weights
move only as far as the new generator needs; the evaluation gate then checks, on every
generator's test items, that nothing known was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detector.config import check_preset, from_dict
from detector.train.config import train_config


@dataclass(frozen=True)
class RetrainConfig:
    # Fine-tuning: the preset's learning rate times this (from trained weights, a full
    # from-scratch rate would throw away much of what they hold) ...
    lr_factor: float = 0.3
    # ... for at most this many epochs (a from-scratch default run stops at 30-60) ...
    epochs: int = 20
    patience: int = 5  # ... and early stopping on validation loss sooner
    # Items per new generator; None: as many as the corpus's existing generators have.
    per_generator: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.lr_factor <= 1:
            raise ValueError(f"lr_factor must be in (0, 1], got {self.lr_factor}")
        if self.epochs < 1 or self.patience < 1:
            raise ValueError("epochs and patience must be at least 1")
        if self.per_generator is not None and self.per_generator < 1:
            raise ValueError(f"per_generator must be at least 1, got {self.per_generator}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> RetrainConfig:
        check_preset(name)
        base = cls() if name == "default" else cls(epochs=6, patience=6)
        return from_dict(cls, dict(overrides), base=base)


def finetune_overrides(
    modality: str,
    preset: str,
    config: RetrainConfig,
    train_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The training overrides of a fine-tune run: the preset's learning rate scaled down,
    fewer epochs; what the caller sets explicitly wins. No family is left out (replay)."""
    base = train_config(modality, preset)
    out: dict[str, Any] = {
        "lr": base.lr * config.lr_factor,
        "epochs": config.epochs,
        "patience": config.patience,
    }
    return out | dict(train_overrides or {})
