"""Constant-Q transform in torch: log-magnitude, batched, on CPU or GPU.

The kernels are librosa's (Hann-windowed complex exponentials ``Q * sr / f`` samples
long, L1-normalised, scaled by the square root of their length as ``librosa.cqt``'s
``scale=True`` does), precomputed and applied as one matrix product per rate over
the signal's frames, like nnAudio's CQT1992v2. Applied at the full rate the 32.7 Hz
kernel would be 16,930 samples long (over a billion multiply-adds per 4 s); instead
each octave is computed at the lowest rate that still holds it, as ``librosa.cqt``
and nnAudio's CQT2010v2 do: the signal is halved with a 31-tap half-band filter, and
a bin goes to rate ``r`` when its filter's -3 dB edge is below ``r / 4``, so the
half-band's transition and the aliasing it lets through stay above every bin
computed there. A rate is only halved while the hop divides evenly (160 = 2^5 * 5:
five halvings, to 500 Hz); lower octaves take longer kernels at the last rate.

The result matches a direct full-rate CQT with librosa's kernels to about 1e-4 in
log magnitude (see :func:`cqt_kernels`); ``librosa.cqt`` itself differs from that by
up to ~1 in the top bin of each resampled octave, where its resampler rolls off.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.signal import get_window
from torch import nn

from detector.frontends.config import HANN_BANDWIDTH, FrontendConfig
from detector.frontends.stft import center_pad, check_waveform, log_floor

HALFBAND_TAPS = 31


def cqt_frequencies(config: FrontendConfig) -> np.ndarray:
    """The bins' centre frequencies in Hz, ascending (``librosa.cqt_frequencies``)."""
    k = np.arange(config.cqt_n_bins)
    return config.cqt_fmin * 2.0 ** (k / config.cqt_bins_per_octave)


def halfband_lowpass(taps: int = HALFBAND_TAPS, beta: float = 8.0) -> np.ndarray:
    """A zero-phase Kaiser-windowed sinc cutting at a quarter of the rate: within 0.01 dB
    to 0.17, below -80 dB from 0.35 cycles per sample, unit gain at DC. The bins kept
    after halving lie below 0.125 (of the rate before it), and what folds onto them
    comes from above 0.375."""
    n = np.arange(taps) - taps // 2
    h = np.sinc(0.5 * n) * np.kaiser(taps, beta)
    return (h / h.sum()).astype(np.float32)


def _halvings(config: FrontendConfig, freqs: np.ndarray) -> np.ndarray:
    """For each bin, how many times the rate may be halved before computing it."""
    twos = (config.hop_length & -config.hop_length).bit_length() - 1  # 2-adic valuation
    edge = freqs * (1 + 0.5 * HANN_BANDWIDTH / config.cqt_q)
    fits = np.floor(np.log2(config.sample_rate / (4 * edge))).astype(int)
    return np.clip(fits, 0, twos)


def cqt_kernels(freqs: np.ndarray, halvings: int, config: FrontendConfig) -> np.ndarray:
    """``(2 * n, K)`` real then imaginary parts of the bins' kernels for the signal at
    ``sample_rate / 2**halvings``, all centred on tap ``K // 2`` (``K`` odd).

    Each is ``librosa.filters.wavelet``'s full-rate kernel (a periodic Hann window of
    ``ceil(Q * sr / f)`` samples), sampled every ``2**halvings`` samples and scaled by
    ``2**halvings``: for a signal band-limited below the lower rate's Nyquist (which the
    half-band filters make it) the product is the full-rate one, so every octave matches
    a direct full-rate CQT. (Redesigning the kernel at the lower rate, as librosa does,
    rounds its length to the coarser grid: a few per cent of error in the low octaves.)
    """
    q, sr, step = config.cqt_q, config.sample_rate, 2**halvings
    lengths = q * sr / freqs
    taps = [np.arange(math.floor(-ln / 2), math.floor(ln / 2)) for ln in lengths]
    centre = max(-int(n[0]) // step for n in taps)
    out = np.zeros((2, len(freqs), 2 * centre + 1))
    for i, (n, length, freq) in enumerate(zip(taps, lengths, freqs, strict=True)):
        window = get_window("hann", len(n))  # periodic, ceil(length) samples
        kernel = window * np.exp(2j * np.pi * freq / sr * n) / window.sum()
        kernel *= math.sqrt(length)  # librosa's scale=True
        kept = n % step == 0
        out[0, i, n[kept] // step + centre] = step * kernel[kept].real
        out[1, i, n[kept] // step + centre] = step * kernel[kept].imag
    return out.reshape(2 * len(freqs), -1).astype(np.float32)


class Cqt(nn.Module):
    """``(B, T)`` -> ``(B, 1, cqt_n_bins, 1 + T // hop)`` log CQT magnitudes, low bins first.

    Log-spaced bins at constant Q: the harmonics of the voice are resolved at every
    pitch, and the top octave (where vocoders leave most artefacts) gets as many bins
    as the lowest. Centred frames with reflected edges, like ``librosa.cqt``; a clip
    too short to reflect at the lowest rate (under about half a second with the
    defaults) is zero-padded there instead.
    """

    halfband: torch.Tensor

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        self.freqs = cqt_frequencies(config)
        self.out_bins = config.cqt_n_bins
        halvings = _halvings(config, self.freqs)
        self.register_buffer("halfband", torch.from_numpy(halfband_lowpass()), persistent=False)
        # Groups of at most an octave of bins sharing a rate, so that a group's kernels,
        # padded to its longest, are at most half zeros: (halvings, number of bins),
        # lowest bins first, kernels in buffer ``kernels{i}`` as (K, 2 * bins).
        self.groups: list[tuple[int, int]] = []
        top = config.cqt_n_bins
        while top > 0:
            j = int(halvings[top - 1])
            low = max(top - config.cqt_bins_per_octave, int(np.argmax(halvings == j)))
            self.groups.insert(0, (j, top - low))
            top = low
        start = 0
        for i, (j, n) in enumerate(self.groups):
            kernels = cqt_kernels(self.freqs[start : start + n], j, config)
            self.register_buffer(f"kernels{i}", torch.from_numpy(kernels.T), persistent=False)
            start += n

    def _halve(self, x: torch.Tensor) -> torch.Tensor:
        """``ceil(T / 2)`` samples, ``y[m]`` centred on ``x[2m]`` (as a matrix product:
        twice as fast on CPU as ``conv1d`` with a stride)."""
        pad = HALFBAND_TAPS // 2
        return torch.matmul(center_pad(x, pad, pad).unfold(-1, HALFBAND_TAPS, 2), self.halfband)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_waveform(x)
        hop = self.config.hop_length
        n_frames = 1 + x.shape[-1] // hop
        signals = [x]
        for _ in range(self.groups[0][0]):
            signals.append(self._halve(signals[-1]))
        parts = []
        for i, (j, n_bins) in enumerate(self.groups):
            kernels = getattr(self, f"kernels{i}")  # (K, 2 * n_bins)
            size, step, y = kernels.shape[0], hop >> j, signals[j]
            centre = size // 2
            right = (n_frames - 1) * step + size - centre - y.shape[-1]
            frames = center_pad(y, centre, right).unfold(-1, size, step)  # (B, frames, K)
            z = torch.matmul(frames, kernels)
            parts.append(torch.hypot(z[..., :n_bins], z[..., n_bins:]))
        magnitude = torch.cat(parts, dim=-1).transpose(1, 2)
        return log_floor(magnitude, self.config.eps).unsqueeze(1)
