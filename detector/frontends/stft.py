"""The short-time Fourier transform every linear-frequency front-end starts from."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detector.frontends.config import FrontendConfig


def check_waveform(x: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` samples as float32; a clear error for anything else."""
    if x.dim() != 2 or x.shape[-1] < 1:
        raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(x.shape)}")
    return x.float()


def center_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Pad the last axis by reflection, as librosa's and torch's ``center=True`` do.

    Reflection needs more samples than the padding; a clip shorter than that (well
    under a frame) is zero-padded instead, so any length gives features. A negative
    ``right`` trims.
    """
    if right < 0:
        x, right = x[..., :right], 0
    if max(left, right) < x.shape[-1]:
        return F.pad(x.unsqueeze(1), (left, right), mode="reflect").squeeze(1)
    return F.pad(x, (left, right))


def log_floor(x: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.log(torch.clamp(x, min=eps))


class Spectrogram(nn.Module):
    """``(B, T)`` -> ``(B, n_fft // 2 + 1, 1 + T // hop)`` STFT magnitudes (Hann window,
    centred frames with reflected edges: librosa's ``stft(..., pad_mode="reflect")``)."""

    window: torch.Tensor

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        window = torch.hann_window(config.win_length, periodic=True, dtype=torch.float32)
        self.register_buffer("window", window, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = center_pad(check_waveform(x), c.n_fft // 2, c.n_fft // 2)
        spec = torch.stft(
            x,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            win_length=c.win_length,
            window=self.window,
            center=False,  # padded above: reflection that also works for short clips
            return_complex=True,
        )
        return spec.abs()


class LogStft(nn.Module):
    """Log-magnitude linear-frequency spectrogram: ``(B, T)`` -> ``(B, 1, n_fft//2+1, frames)``.

    The plainest view: every 31.25 Hz band up to 8 kHz at full resolution, where
    vocoder harmonics and band-limited codecs leave their traces.
    """

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        self.spectrogram = Spectrogram(config)
        self.out_bins = config.n_fft // 2 + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return log_floor(self.spectrogram(x), self.config.eps).unsqueeze(1)
