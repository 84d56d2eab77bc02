"""Log mel power spectrogram: the usual input of speech CNNs."""

from __future__ import annotations

import librosa
import torch
from torch import nn

from detector.frontends.config import FrontendConfig
from detector.frontends.stft import Spectrogram, log_floor


class LogMel(nn.Module):
    """``(B, T)`` -> ``(B, 1, n_mels, frames)``: log of librosa's (Slaney) mel filters
    applied to the power spectrum, as ``librosa.feature.melspectrogram`` computes it.

    Fine below 1 kHz, coarse above: it sees prosody and formants best, and is the
    complement of the linear-frequency views.
    """

    filterbank: torch.Tensor

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        self.spectrogram = Spectrogram(config)
        mel = librosa.filters.mel(
            sr=config.sample_rate,
            n_fft=config.n_fft,
            n_mels=config.n_mels,
            fmin=config.fmin,
            fmax=config.fmax,
        )
        self.register_buffer("filterbank", torch.from_numpy(mel).float(), persistent=False)
        self.out_bins = config.n_mels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        power = self.spectrogram(x).square()
        mel = torch.matmul(self.filterbank, power)
        return log_floor(mel, self.config.eps**2).unsqueeze(1)
