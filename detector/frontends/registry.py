"""The front-end registry: ``create_frontend(name, config)`` -> ``nn.Module``."""

from __future__ import annotations

from torch import nn

from detector.frontends.config import FrontendConfig
from detector.frontends.cqt import Cqt
from detector.frontends.lfcc import Lfcc
from detector.frontends.logmel import LogMel
from detector.frontends.pulse import PulseCrest
from detector.frontends.stack import Stacked
from detector.frontends.stft import LogStft
from detector.registry import Registry

FRONTENDS: Registry[nn.Module] = Registry("front-end")


@FRONTENDS.register("stft", scale="linear")
def stft(config: FrontendConfig) -> LogStft:
    """Log-magnitude STFT, every bin up to 8 kHz (257 with the defaults)."""
    return LogStft(config)


@FRONTENDS.register("lfcc", scale="linear")
def lfcc(config: FrontendConfig) -> Lfcc:
    """Linear-filterbank cepstral coefficients (70 filters -> 60 with the defaults)."""
    return Lfcc(config)


@FRONTENDS.register("logmel", scale="mel")
def logmel(config: FrontendConfig) -> LogMel:
    """Log mel power spectrogram (80 bands with the defaults)."""
    return LogMel(config)


@FRONTENDS.register("cqt", scale="log")
def cqt(config: FrontendConfig) -> Cqt:
    """Log-magnitude constant-Q transform (190 bins, 32.7 Hz to 7.67 kHz by default)."""
    return Cqt(config)


@FRONTENDS.register("pulse", scale="linear")
def pulse(config: FrontendConfig) -> PulseCrest:
    """Log crest factor of 1 ms band energies in each frame: glottal pulses (9 bands)."""
    return PulseCrest(config)


def frontend_parts(name: str) -> list[str]:
    """The registered front-ends a name stands for: ``"lfcc+pulse"`` -> ``["lfcc", "pulse"]``.

    Raises ``ValueError`` for an unknown part (listing the known ones) or a repeated one.
    """
    parts = [part.strip() for part in name.split("+")]
    for part in parts:
        FRONTENDS.get(part)
    if len(set(parts)) < len(parts):
        raise ValueError(f"front-end {name!r} names a part twice")
    return parts


def create_frontend(name: str, config: FrontendConfig | None = None) -> nn.Module:
    """A front-end by name: ``(B, T)`` float32 at ``config.sample_rate`` ->
    ``(B, 1, module.out_bins, 1 + T // hop_length)`` log features. Names joined by
    ``+`` (``"lfcc+pulse"``) stack those front-ends' maps (``Stacked``).

    Front-ends hold no learnable parameters and keep their filters in non-persistent
    buffers: ``.to(device)`` moves them, a model's state dict does not carry them.
    """
    config = config or FrontendConfig()
    parts = [FRONTENDS.get(part)(config) for part in frontend_parts(name)]
    return parts[0] if len(parts) == 1 else Stacked(parts)


def frontend_names() -> list[str]:
    return FRONTENDS.names()
