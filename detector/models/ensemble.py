"""An ensemble network: trained detectors of one modality, their logits averaged.

Each member's logit is first divided by its own calibration temperature (``scale`` is
``1 / temperature``), so every member speaks on the scale its validation data gave it
and none outweighs the others by the size of its raw logits; the weighted mean of those
calibrated logits is the ensemble's logit, calibrated again as a whole. Members see the
same input (the same crops of an image, the same chunks of a recording), so the
ensemble is one network to every caller: training-free, it scores, localises and is
evaluated exactly like a single model. ``detector.train.ensemble`` builds one from
model folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from detector.config import from_dict

# The member fields that decide how an input is cut before the network sees it: members
# of one ensemble must agree on them.
SCORING_FIELDS = {
    "image": ("input_size",),
    "audio": ("chunk_seconds", "hop_seconds", "frontend_config.sample_rate"),
}


@dataclass(frozen=True)
class EnsembleMember:
    name: str  # where the member came from (its model name)
    architecture: str  # image_cnn | audio_cnn
    model_config: dict[str, Any]
    train_config: dict[str, Any]  # the member's training: a leave-one-out run repeats it
    scale: float  # 1 / the member's calibration temperature
    weight: float = 1.0
    calibration: dict[str, float] | None = None  # the member's own, as its card had it


@dataclass(frozen=True)
class EnsembleConfig:
    modality: str
    members: tuple[EnsembleMember, ...]

    def __post_init__(self) -> None:
        if self.modality not in SCORING_FIELDS:
            raise ValueError(
                f"ensembles are of image or audio detectors, got modality {self.modality!r}"
            )
        if len(self.members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(self.members)}")
        for m in self.members:
            if not (m.scale > 0 and m.weight > 0):
                raise ValueError(
                    f"member {m.name!r}: scale and weight must be positive, got "
                    f"{m.scale} and {m.weight}"
                )
        first = self.members[0]
        for field in SCORING_FIELDS[self.modality]:
            want = _field(first.model_config, field)
            for m in self.members[1:]:
                if _field(m.model_config, field) != want:
                    raise ValueError(
                        f"members {first.name!r} and {m.name!r} cut their input differently "
                        f"({field}: {want!r} and {_field(m.model_config, field)!r}); the "
                        "members of an ensemble must see the same crops or chunks"
                    )

        # How inputs are cut, read off the first member's own config (all agree on it).
        object.__setattr__(self, "_first", _member_config(first))

    @property
    def head(self) -> str:
        """Members give one logit per input: a member with a frame head gives its chunk
        logit, so an ensemble's timeline is its chunks."""
        return "clip"

    @property
    def input_size(self) -> int:
        return int(self._first.input_size)

    @property
    def chunk_samples(self) -> int:
        return int(self._first.chunk_samples)

    @property
    def hop_samples(self) -> int:
        return int(self._first.hop_samples)


def _field(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _member_config(member: EnsembleMember) -> Any:
    """The member's own typed config (its preset's defaults under its card's values)."""
    if member.architecture == "image_cnn":
        from detector.models.image import ImageDetectorConfig

        return ImageDetectorConfig.preset("default", **member.model_config)
    if member.architecture == "audio_cnn":
        from detector.models.audio import AudioDetectorConfig

        return AudioDetectorConfig.preset("default", **member.model_config)
    raise ValueError(
        f"member {member.name!r}: an ensemble's members are image_cnn or audio_cnn "
        f"networks, got {member.architecture!r}"
    )


class EnsembleModel(nn.Module):
    """``x`` -> the weighted mean of the members' calibrated logits (each member's
    ``forward`` output times its ``scale``). A member with a frame head contributes its
    chunk logit: an ensemble's timeline is its chunks."""

    def __init__(self, config: EnsembleConfig) -> None:
        super().__init__()
        from detector.models.registry import create

        self.config = config
        self.members = nn.ModuleList(
            create(m.architecture, preset="default", **m.model_config) for m in config.members
        )
        total = sum(m.weight for m in config.members)
        self.factors = [m.scale * m.weight / total for m in config.members]
        # Voice members with one front-end (they have no weights: the same name and config
        # compute the same features) share its output: it is about half a forward pass.
        self.shared_frontend = config.modality == "audio" and all(
            (m.model_config.get("frontend"), m.model_config.get("frontend_config"))
            == (config.members[0].model_config.get("frontend"),
                config.members[0].model_config.get("frontend_config"))
            for m in config.members
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shared_frontend:
            spec = self.members[0].frontend(x)
            outs = [member.outputs_from(spec)[0] for member in self.members]
        else:
            outs = [member(x) for member in self.members]
        out = self.factors[0] * outs[0]
        for f, o in zip(self.factors[1:], outs[1:], strict=True):
            out = out + f * o
        return out


def ensemble_config(**values: Any) -> EnsembleConfig:
    """An ``EnsembleConfig`` from a card's ``model_config`` (members as dicts)."""
    return from_dict(EnsembleConfig, values)


def refuse_ensemble(card: dict[str, Any], folder: Any, why: str) -> None:
    """Raise ``ValueError`` when ``card`` is an ensemble's: what the caller does needs
    one network trained as one."""
    if card.get("architecture") == "ensemble":
        raise ValueError(f"{folder} is an ensemble: {why}")


def scoring_configs(card: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model and training configs that say how a card's network cuts its input
    (crop size, crops per image, chunk length, sample rate): its own, or for an
    ensemble its first member's, which every member agrees with."""
    if card.get("architecture") == "ensemble":
        first = card["model_config"]["members"][0]
        return first["model_config"], first.get("train_config") or {}
    return card["model_config"], card.get("train_config") or {}
