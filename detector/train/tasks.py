"""What differs between modalities in training and evaluation, and nothing else.

The training loop, calibration, early stopping, checkpoints, metrics and the model card
are shared (``detector.train.trainer``); a task says how items are loaded, how one
augmented training example is drawn, how examples become a batch, and how a whole item
is scored (crops of an image, chunks of a clip).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detector.data.corpus import Item, load_pixels
from detector.train.config import TrainConfig


class Task:
    modality: ClassVar[str]
    architecture: ClassVar[str]
    # The corpus family that the task's own online fakes belong to (None: to none); a
    # run that holds that family out makes none (``p_online_fake`` is set to 0).
    online_family: ClassVar[str | None] = None

    def __init__(self, model_config: Any, train_config: TrainConfig) -> None:
        self.model_config = model_config
        self.train_config = train_config

    @staticmethod
    def load(items: Sequence[Item]) -> list[Any]:
        raise NotImplementedError

    def example(self, media: Any, item: Item, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def batch(self, examples: Sequence[Any]) -> torch.Tensor:
        raise NotImplementedError

    def loss(
        self, model: nn.Module, examples: Sequence[Any], y: torch.Tensor, pos_weight: torch.Tensor
    ) -> torch.Tensor:
        """One training batch's loss: binary cross-entropy of the model's logits."""
        logits = model(self.batch(examples))
        return F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)

    def logits(self, model: nn.Module, media: Sequence[Any]) -> np.ndarray:
        raise NotImplementedError

    def online_fake(self) -> Callable[[Any, np.random.Generator], Any] | None:
        """The maker of online fakes (``p_online_fake``) when the caller gives none."""
        return None

    def can_fake(self, item: Item) -> bool:
        """Whether an online fake may be made from this real item."""
        return True


class ImageTask(Task):
    """Images: random crops (never resizes) of augmented pixels; items scored on a grid."""

    modality = "image"
    architecture = "image_cnn"

    @staticmethod
    def load(items: Sequence[Item]) -> list[Any]:
        return load_pixels(items)

    def example(self, media: np.ndarray, item: Item, rng: np.random.Generator) -> np.ndarray:
        from detector.data.augment import augment, random_crop

        size, aug = self.model_config.input_size, self.train_config.augment
        return random_crop(augment(media, aug, rng), size, rng, align=aug.crop_align)

    def online_fake(self) -> Callable[[Any, np.random.Generator], Any] | None:
        """Real images rebuilt by fresh untrained decoders (``generators.image.random_decoder``)."""
        from generators.image.random_decoder import random_decoded

        return random_decoded

    def batch(self, examples: Sequence[np.ndarray]) -> torch.Tensor:
        from detector.inference.batch import to_batch

        return to_batch(np.stack(examples))

    def logits(self, model: nn.Module, media: Sequence[np.ndarray]) -> np.ndarray:
        from detector.inference.batch import mean_logits

        return mean_logits(
            model,
            media,
            size=self.model_config.input_size,
            max_crops=self.train_config.max_crops,
        )


@dataclass
class AudioExample:
    samples: np.ndarray  # the augmented chunk, float32
    # Per sample of the chunk, 1 where it is synthetic; only for models with a frame head.
    synthetic: np.ndarray | None = None


class AudioTask(Task):
    """Clips: a random chunk per clip (holding the synthetic part of a spliced clip),
    augmented; items scored chunk by chunk and aggregated. A model with a frame head is
    also taught which of its frames are synthetic."""

    modality = "audio"
    architecture = "audio_cnn"
    online_family = "splice"

    @staticmethod
    def load(items: Sequence[Item]) -> list[Any]:
        from detector.data.audio import load_clip

        return [load_clip(str(it.path)) for it in items]

    def example(self, media: np.ndarray, item: Item, rng: np.random.Generator) -> AudioExample:
        from detector.data.audio import augment_audio, random_start, synthetic_mask, take_chunk

        n = self.model_config.chunk_samples
        start = random_start(len(media), n, rng, item.segments)
        chunk = augment_audio(take_chunk(media, start, n), self.train_config.augment, rng)  # type: ignore[arg-type]
        if self.model_config.head == "clip":
            return AudioExample(chunk)
        if not item.segments:  # all real or all synthetic: no clip-long mask to cut
            return AudioExample(chunk, np.full(n, float(item.label), dtype=np.float32))
        mask = synthetic_mask(len(media), item.label, item.segments)
        return AudioExample(chunk, take_chunk(mask, start, n))

    def online_fake(self) -> Callable[[Any, np.random.Generator], Any] | None:
        """Real clips spliced anew at every draw by the generators of the families in
        training (``generators.audio.online_splice``)."""
        from generators.audio.online_splice import OnlineSplicer

        return OnlineSplicer(self.train_config.exclude_families)

    def can_fake(self, item: Item) -> bool:
        """Only losslessly stored clips: a corpus splice is encoded once, after splicing,
        while a segment resynthesised into an MP3 or Opus clip would be the one stretch
        without that codec's traces, a cue no real splice carries."""
        return item.path.suffix.lower() == ".flac"

    def batch(self, examples: Sequence[AudioExample]) -> torch.Tensor:
        stacked = np.stack([e.samples for e in examples])
        return torch.from_numpy(stacked.astype(np.float32, copy=False))

    def loss(
        self,
        model: nn.Module,
        examples: Sequence[AudioExample],
        y: torch.Tensor,
        pos_weight: torch.Tensor,
    ) -> torch.Tensor:
        """With a frame head, the chunk's loss plus ``frame_weight`` times the frames':
        each frame's target is the synthetic share of the samples under it."""
        if self.model_config.output == "oneclass":
            from detector.models.audio import oneclass_margin

            logits = oneclass_margin(model(self.batch(examples)), y)
            return F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
        if self.model_config.head == "clip":
            return super().loss(model, examples, y, pos_weight)
        chunk, frames = model.outputs(self.batch(examples))  # type: ignore[operator]
        masks = torch.from_numpy(np.stack([e.synthetic for e in examples]))  # type: ignore[misc]
        target = F.adaptive_avg_pool1d(masks[:, None], frames.shape[1])[:, 0]
        chunk_loss = F.binary_cross_entropy_with_logits(chunk, y, pos_weight=pos_weight)
        frame_loss = F.binary_cross_entropy_with_logits(frames, target, pos_weight=pos_weight)
        return chunk_loss + self.train_config.frame_weight * frame_loss  # type: ignore[attr-defined]

    def logits(self, model: nn.Module, media: Sequence[np.ndarray]) -> np.ndarray:
        from detector.inference.clips import score_clips

        cfg = self.model_config
        scored = score_clips(model, media, chunk=cfg.chunk_samples, hop=cfg.hop_samples)
        return np.array([s.logit for s in scored])


TASKS: dict[str, type[Task]] = {"image": ImageTask, "audio": AudioTask}


def load_media(modality: str, items: Sequence[Item]) -> list[Any]:
    """Decode items as the detectors of ``modality`` see them (a video detector reads its
    files as it goes: their paths)."""
    if modality == "video":
        return [it.path for it in items]
    return TASKS[modality].load(items)
