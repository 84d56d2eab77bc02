"""Linear-frequency cepstral coefficients (LFCC), the ASVspoof baselines' front-end."""

from __future__ import annotations

import numpy as np
import torch
from scipy.fft import dct
from torch import nn

from detector.frontends.config import FrontendConfig
from detector.frontends.stft import Spectrogram, log_floor


def linear_filterbank(config: FrontendConfig) -> np.ndarray:
    """``(n_linear_filters, n_fft // 2 + 1)`` triangular filters with peak 1, equally
    spaced (and equally wide) in Hz from ``fmin`` to ``fmax``.

    Unlike mel filters they keep the high band as finely resolved as the low one:
    synthetic speech differs from real speech most above 4 kHz.
    """
    c = config
    fft_hz = np.linspace(0.0, c.sample_rate / 2, c.n_fft // 2 + 1)
    edges = np.linspace(c.fmin, c.fmax, c.n_linear_filters + 2)
    width = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / width[:-1, None]
    falling = ramps[2:] / width[1:, None]
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)``: the first ``n_out`` rows of the orthonormal DCT-II."""
    return dct(np.eye(n_in), type=2, norm="ortho", axis=0)[:n_out].astype(np.float32)


class Lfcc(nn.Module):
    """``(B, T)`` -> ``(B, 1, n_lfcc, frames)``: power spectrum, linear triangular
    filterbank, log, orthonormal DCT-II, the first ``n_lfcc`` coefficients kept.

    No deltas: the network convolves over time and learns its own derivatives.
    """

    filterbank: torch.Tensor
    dct: torch.Tensor

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        self.spectrogram = Spectrogram(config)
        fb = torch.from_numpy(linear_filterbank(config))
        self.register_buffer("filterbank", fb, persistent=False)
        dct_rows = torch.from_numpy(dct_matrix(config.n_linear_filters, config.n_lfcc))
        self.register_buffer("dct", dct_rows, persistent=False)
        self.out_bins = config.n_lfcc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        power = self.spectrogram(x).square()
        energies = log_floor(torch.matmul(self.filterbank, power), self.config.eps**2)
        return torch.matmul(self.dct, energies).unsqueeze(1)
