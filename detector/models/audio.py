"""Voice detectors: a spectrogram front-end in front of a one-channel timm CNN.

The network sees fixed-length chunks (4 s by default) of prepared 16 kHz speech; a
clip is scored chunk by chunk (the timeline) and the chunk logits are aggregated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import timm
import torch
from torch import nn

from detector.config import check_choice, check_preset, from_dict
from detector.frontends import FrontendConfig, create_frontend, frontend_parts


@dataclass(frozen=True)
class AudioDetectorConfig:
    # stft | lfcc | logmel | cqt | pulse, or several joined by "+" (stacked maps). LFCC sees
    # the smoothed spectrum, the pulse crest what phase-free synthesis loses (pulse.py).
    frontend: str = "lfcc+pulse"
    frontend_config: FrontendConfig = field(default_factory=FrontendConfig)
    backbone: str = "resnet10t"  # any timm model name; weights are never downloaded
    channels: tuple[int, ...] | None = (16, 32, 64, 128)
    # The width of resnet10t's three-conv stem (timm's default 32 made the stem 5x the cost
    # of the rest: 9.9 vs 3.7 ms a 4 s chunk on one core at 16, 1.9 at 8).
    stem_width: int | None = 16
    # How the backbone pools its last feature map: "avg" (timm's default), "max" or "avgmax"
    # (their mean). On the voice corpus avgmax did worse, spliced clips included
    # (validation AUC 0.945 against 0.983; test 0.970 against 0.986, splice 0.728
    # against 0.850).
    global_pool: str = "avg"
    # "clip": the backbone pools a chunk to one logit. "frames": a logit for each time
    # step of the last feature map (a stride of 32 spectrogram frames: 13 steps of 0.31 s
    # for 4 s), trained on where the synthetic part of the chunk is (a spliced clip's
    # segment from the manifest); the chunk's logit is the mean of its top quarter of
    # frame logits, as a clip's is of its chunks'. "both": the pooled chunk logit of
    # "clip" and the frame logits beside it, trained together; the frames give the
    # timeline. Neither did better on validation than "clip" (README).
    head: str = "clip"
    # "linear": a linear map of the pooled features is the logit. "oneclass": the
    # one-class softmax of Zhang, Jiang and Li (2021) for unseen spoofing attacks: the
    # pooled features' cosine ``s`` to a learned direction, logit ``scale * (0.55 - s)``,
    # trained with margins (real clips held to s > 0.9, synthetic ones to s < 0.2): real
    # speech is drawn into one tight cone and anything unlike it, in any direction of the
    # features, falls outside, where a linear head only learns the side the training
    # generators lie on. Needs ``head="clip"``. Held out of training (8 epochs), LPC and
    # espeak were caught at AUC 0.861 and 0.993 against 0.517 and 0.898 with a linear
    # head, but Griffin-Lim and MelGAN less well; trained on all (30 epochs), validation
    # AUC 0.974 against the shipped linear model's 0.983. Not the default (README).
    output: str = "linear"
    chunk_seconds: float = 4.0  # the network's input length
    hop_seconds: float = 2.0  # between chunks when scoring a clip: the timeline's step
    dropout: float = 0.2

    def __post_init__(self) -> None:
        frontend_parts(self.frontend)
        check_choice("global_pool", self.global_pool, ("avg", "max", "avgmax"))
        check_choice("head", self.head, ("clip", "frames", "both"))
        check_choice("output", self.output, ("linear", "oneclass"))
        if self.output == "oneclass" and self.head != "clip":
            raise ValueError('output="oneclass" needs head="clip"')
        if self.chunk_seconds <= 0 or self.hop_seconds <= 0:
            raise ValueError("chunk_seconds and hop_seconds must be positive")
        if self.hop_seconds > self.chunk_seconds:
            raise ValueError("hop_seconds must not exceed chunk_seconds (gaps in the timeline)")

    @property
    def chunk_samples(self) -> int:
        return round(self.chunk_seconds * self.frontend_config.sample_rate)

    @property
    def hop_samples(self) -> int:
        return round(self.hop_seconds * self.frontend_config.sample_rate)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> AudioDetectorConfig:
        check_preset(name)
        base = (
            cls()
            if name == "default"
            else cls(
                channels=(8, 16, 32, 64),
                stem_width=8,
                chunk_seconds=2.0,
                hop_seconds=1.0,
                dropout=0.0,
            )
        )
        return from_dict(cls, dict(overrides), base=base)


# The one-class softmax's scale and margins (Zhang, Jiang and Li, "One-class learning
# towards synthetic voice spoofing detection", 2021): the cosine of real chunks is held
# above 0.9, of synthetic ones below 0.2; the logit is centred between them.
ONECLASS_SCALE = 20.0
ONECLASS_MARGINS = (0.9, 0.2)
ONECLASS_CENTRE = sum(ONECLASS_MARGINS) / 2


class OneClassHead(nn.Module):
    """``(B, D)`` features -> ``(B,)`` logits of "synthetic": ``scale * (centre - cos)``,
    ``cos`` the cosine of the features to a learned direction (the real class's)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.direction = nn.Parameter(torch.randn(features) / math.sqrt(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cos = nn.functional.cosine_similarity(x, self.direction[None], dim=1)
        return ONECLASS_SCALE * (ONECLASS_CENTRE - cos)


def oneclass_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Training logits with the one-class margins: binary cross-entropy on them is the
    one-class softmax loss (real: softplus(scale * (0.9 - cos)), synthetic:
    softplus(scale * (cos - 0.2)))."""
    real, synthetic = ONECLASS_MARGINS
    shift = (real - ONECLASS_CENTRE) * (1 - y) + (synthetic - ONECLASS_CENTRE) * y
    return logits + ONECLASS_SCALE * shift


class PartNorm(nn.Module):
    """A ``BatchNorm2d(1)`` for each band of rows of a stacked front-end's map."""

    def __init__(self, part_bins: tuple[int, ...]) -> None:
        super().__init__()
        self.part_bins = part_bins
        self.parts = nn.ModuleList(nn.BatchNorm2d(1) for _ in part_bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = torch.split(x, list(self.part_bins), dim=2)
        return torch.cat([norm(r) for norm, r in zip(self.parts, rows, strict=True)], dim=2)


def top_quarter_mean(logits: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` -> ``(B,)``: the mean of each row's top quarter (at least one)."""
    k = max(1, math.ceil(logits.shape[1] / 4))
    return torch.topk(logits, k, dim=1).values.mean(1)


class AudioDetector(nn.Module):
    """``(B, T)`` waveforms at 16 kHz in [-1, 1] -> ``(B,)`` logits of "synthetic"
    (and, with a frame head, ``(B, T')`` frame logits through ``frames``)."""

    def __init__(self, config: AudioDetectorConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = create_frontend(config.frontend, config.frontend_config)
        # One learned scale and shift of the log features (the front-ends are fixed); of
        # each stacked part's, since their scales differ (log energies, crest factors).
        parts = getattr(self.frontend, "part_bins", None)
        self.norm: nn.Module = nn.BatchNorm2d(1) if parts is None else PartNorm(parts)
        kwargs: dict[str, Any] = {}
        if config.channels is not None:
            kwargs["channels"] = config.channels
        if config.stem_width is not None:
            kwargs["stem_width"] = config.stem_width
        self.backbone = timm.create_model(
            config.backbone,
            pretrained=False,
            num_classes=0 if config.head == "frames" or config.output == "oneclass" else 1,
            in_chans=1,
            drop_rate=config.dropout,
            global_pool=config.global_pool,
            **kwargs,
        )
        if config.output == "oneclass":
            self.oneclass = OneClassHead(self.backbone.num_features)
        if config.head != "clip":
            self.frame_drop = nn.Dropout(config.dropout)
            self.frame_head = nn.Conv1d(self.backbone.num_features, 1, kernel_size=1)

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, T)`` -> the ``(B,)`` chunk logits and, with a frame head, the ``(B, T')``
        frame logits: the last feature map averaged over frequency, one linear map per
        time step."""
        return self.outputs_from(self.frontend(x))

    def outputs_from(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``outputs`` from the front-end's features of the chunks (an ensemble whose
        members share a front-end computes them once)."""
        maps = self.backbone.forward_features(self.norm(spec))  # (B, C, F', T')
        if self.config.output == "oneclass":
            return self.oneclass(self.backbone.forward_head(maps)), None
        if self.config.head == "clip":
            return self.backbone.forward_head(maps).squeeze(1), None
        frames = self.frame_head(self.frame_drop(maps.mean(2))).squeeze(1)
        if self.config.head == "frames":
            return top_quarter_mean(frames), frames
        return self.backbone.forward_head(maps).squeeze(1), frames

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> ``(B, T')`` frame logits (a model with a frame head only)."""
        frames = self.outputs(x)[1]
        if frames is None:
            raise ValueError('frame logits need a model with head="frames" or "both"')
        return frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(x)[0]
