"""Training hyperparameters for detectors (apart from the network's own config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from detector.config import check_choice, check_preset, from_dict
from detector.data.audio import AudioAugmentConfig
from detector.data.augment import AugmentConfig


@dataclass(frozen=True)
class TrainConfig:
    # An upper bound: early stopping on validation loss ends a run sooner. With the
    # augmentation on, validation loss still fell at epoch 40 (held-out AUC 0.976 at 38
    # epochs, 0.996 at 60).
    epochs: int = 60
    patience: int = 10  # epochs without a better validation loss before stopping
    batch_size: int = 128
    lr: float = 2e-3  # AdamW, from scratch, cosine-decayed to 5% of this
    weight_decay: float = 0.05
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    max_crops: int = 16  # crops per image when scoring validation and test items
    seed: int = 0
    exclude_families: tuple[str, ...] = ()  # for leave-one-family-out runs
    balance: bool = False  # class-balanced epochs instead of a weighted loss
    # Decay per optimizer step of an exponential moving average of the weights (and
    # batch-norm statistics); 0 turns it off. When on, the average is what is validated,
    # early-stopped on, calibrated and saved (the average spans at most 5 epochs: see
    # ``detector.train.trainer.ema_decay``). Without it validation loss jumped between
    # epochs (0.12 -> 0.31 -> 0.14) and early stopping ended a seed-0 run at epoch 18
    # with validation loss 0.12; with it, four seeds ran all 60 epochs to 0.055-0.061.
    ema_decay: float = 0.99
    # Share of the real training items drawn, each time, as a fake made from them on the
    # fly (labeled synthetic): a new one at every draw, by the task's maker (images: an
    # untrained decoder, generators.image.random_decoder) or ``train_detector``'s
    # ``online_fake`` (the video trainer's: a self-blend of the face crop). On the
    # 9-generator image corpus, leave-one-out went from 0.851 (0) to 0.929 (0.3; seed 1:
    # 0.920; 0.15: 0.925), held-out GAN from 0.702 to 0.932; clean test AUC from 0.995 to
    # 0.990 (seed 1 and 0.15: 0.982).
    p_online_fake: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.p_online_fake < 1.0:
            raise ValueError(f"p_online_fake must be in [0, 1), got {self.p_online_fake}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> TrainConfig:
        check_preset(name)
        base = (
            cls() if name == "default" else cls(epochs=2, patience=2, batch_size=32, ema_decay=0.0)
        )
        return from_dict(cls, dict(overrides), base=base)


@dataclass(frozen=True)
class AudioTrainConfig(TrainConfig):
    """The voice detector's training: class-balanced epochs of one random chunk per clip
    (the real clips drawn again until they match the synthetic ones)."""

    # An epoch of the shipped corpus (1,540 chunks of 4 s, augmented) took 110-120 s on
    # 2 cores, most of it in the codec round trips: 15 epochs is the budget.
    epochs: int = 15
    patience: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    balance: bool = True
    # A frame-head model's loss: the chunk's, plus this times the frames' (their targets:
    # the synthetic share of each frame's samples).
    frame_weight: float = 1.0
    ema_decay: float = 0.0  # not measured on voice: the shipped voice model has none
    # Online splices (generators.audio.online_splice) on real FLAC clips: at 0.5, on the
    # voice corpus, validation AUC 0.962 either way at 15 epochs (0.980 against 0.985 at
    # 30) and `splice` no higher (0.772 against 0.793; 0.837 against 0.898). Off.
    p_online_fake: float = 0.0
    augment: AudioAugmentConfig = field(default_factory=AudioAugmentConfig)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frame_weight < 0:
            raise ValueError(f"frame_weight must be >= 0, got {self.frame_weight}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> AudioTrainConfig:
        check_preset(name)
        base = cls() if name == "default" else cls(epochs=2, patience=2, batch_size=16)
        return from_dict(cls, dict(overrides), base=base)


def train_config(modality: str, preset: str, **overrides: object) -> TrainConfig:
    check_choice("modality", modality, ("image", "audio"))
    if modality == "audio":
        return AudioTrainConfig.preset(preset, **overrides)
    return TrainConfig.preset(preset, **overrides)
