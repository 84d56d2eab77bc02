"""The generator interface: ``fit(real_source)``, ``generate(n, seed=...)``, checkpoints."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from detector.config import config_hash, to_dict
from detector.media.video import VideoClip

# on_step(step, total_steps, metrics) - the CLI turns this into a rich progress bar.
StepFn = Callable[[int, int, dict[str, float]], None]


@dataclass
class Samples:
    """Generated media: ``images`` is ``(N, H, W, 3)`` uint8 RGB for image generators;
    voice generators leave it ``None`` and fill ``audio`` (one ``(n_i,)`` float32 clip in
    [-1, 1] per item, at ``sample_rate``); video generators fill ``videos``.

    ``sources`` holds, per item, the id of the real item it was made from
    (autoencoders reconstruct real crops, vocoders resynthesise real utterances) or
    ``None`` (GAN, diffusion and text-to-speech samples). ``segments`` holds, per item,
    the synthetic part ``(start_s, end_s)`` of a partially synthetic clip, else ``None``.
    """

    images: np.ndarray | None
    sources: list[str | None]
    seeds: list[int] = field(default_factory=list)  # per-item seeds, for provenance
    audio: list[np.ndarray] | None = None
    sample_rate: int = 0
    segments: list[tuple[float, float] | None] = field(default_factory=list)
    # Video generators: one clip per item (frames, frame rate, voice track, changed faces).
    videos: list[VideoClip] | None = None

    def __len__(self) -> int:
        if self.images is not None:
            return len(self.images)
        if self.videos is not None:
            return len(self.videos)
        return len(self.audio or [])


@dataclass
class FitReport:
    steps: int
    seconds: float
    n_train: int  # real training crops
    final: dict[str, float]  # last smoothed losses


class Generator(abc.ABC):
    """A registered generator built from a frozen config.

    Subclasses keep every trainable network in ``self.nets`` (an ``nn.ModuleDict``),
    which is what checkpoints save. Constructors do no I/O.
    """

    family: ClassVar[str]  # "gan", "autoencoder", "diffusion", ...
    modality: ClassVar[str] = "image"
    # True when generate() needs real media to work from (autoencoders): pass `source`.
    conditional: ClassVar[bool] = False

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config
        self.nets = nn.ModuleDict()
        self.fit_report: FitReport | None = None

    @property
    def config_hash(self) -> str:
        return config_hash(self.config, salt=self.name)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "modality": self.modality,
            "config": to_dict(self.config),
            "config_hash": self.config_hash,
        }

    @abc.abstractmethod
    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Train on ``source``'s real media (a ``RealSource`` of images, or an
        ``AudioSource`` for voice generators); returns what the training did."""

    @abc.abstractmethod
    def generate(self, n: int, *, seed: int, source: Any | None = None) -> Samples:
        """``n`` samples; the same seed (and source) gives the same output."""

    def to(self, device: str | torch.device) -> Generator:
        self.nets.to(device)
        return self

    @property
    def device(self) -> torch.device:
        p = next(self.nets.parameters(), None)
        return p.device if p is not None else torch.device("cpu")
