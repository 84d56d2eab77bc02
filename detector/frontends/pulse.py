"""Pulse crest: how peaky each band's energy is inside a frame, the trace of glottal pulses.

Voiced speech is excited by glottal closures, one short pulse a pitch period, so all
harmonics line up in phase once a period and a 1 ms look at any band rises and falls
with them. Synthesis that invents the phase (Griffin-Lim above all) keeps every
harmonic's magnitude but not that alignment: the waveform loses its pulses. A 25 ms
magnitude spectrogram averages over 2-8 periods and cannot see the difference.

Measured on the voice corpus (137 LibriSpeech utterances against their ``gl_linear``
copies), the clip-mean crest alone separates them with AUC 0.987 (a 16-sample window
every 4 samples; 0.967 at 32 / 8, 0.87 at 64 / 16, 0.61 at 128 / 16). It survives MP3
at 64 kbit/s (0.985), at 32 (0.976) and noise at 20 dB SNR (0.964); the LFCC front-end's
detector reached 0.57 on the same generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from detector.frontends.config import FrontendConfig
from detector.frontends.stft import check_waveform, log_floor


class PulseCrest(nn.Module):
    """``(B, T)`` -> ``(B, 1, pulse_n_fft // 2 + 1, 1 + T // hop_length)``.

    The waveform is pre-emphasised, cut into ``pulse_n_fft``-sample Hann frames every
    ``pulse_hop`` samples, and each band's power is taken. For every analysis frame of
    the other front-ends (``win_length`` samples centred on ``m * hop_length``, so the
    maps line up frame for frame) the feature is the log crest factor of each band's
    power over the short frames inside it: log(max / mean), 0 for a steady band, about
    log(number of short frames) for a single click.
    """

    kernels: torch.Tensor

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        # The short STFT as one strided convolution: the real and imaginary parts of each
        # Hann-windowed DFT row (half the time of torch.stft's many 16-point FFTs).
        n = config.pulse_n_fft
        window = torch.hann_window(n, periodic=True, dtype=torch.float64)
        angle = 2 * math.pi * torch.outer(torch.arange(n // 2 + 1.0), torch.arange(n * 1.0)) / n
        rows = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window
        self.register_buffer("kernels", rows.float().unsqueeze(1), persistent=False)
        self.out_bins = n // 2 + 1
        # Short frames per analysis frame, and the step between analysis frames in them.
        self.per_frame = (config.win_length - config.pulse_n_fft) // config.pulse_hop + 1
        self.stride = config.hop_length // config.pulse_hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = check_waveform(x)
        frames = 1 + x.shape[-1] // c.hop_length
        x = torch.cat([x[:, :1], x[:, 1:] - c.pulse_preemphasis * x[:, :-1]], dim=1)
        # Frame m covers samples [m * hop - win / 2, m * hop + win / 2): zero outside the
        # clip (a reflection would copy pulses into the edge frames).
        left = c.win_length // 2
        right = (frames - 1) * c.hop_length + c.win_length - left - x.shape[-1]
        x = F.pad(x, (left, max(0, right)))
        parts = F.conv1d(x.unsqueeze(1), self.kernels, stride=c.pulse_hop)
        power = parts[:, : self.out_bins].square() + parts[:, self.out_bins :].square()
        peak = F.max_pool1d(power, self.per_frame, self.stride)[..., :frames]
        mean = F.avg_pool1d(power, self.per_frame, self.stride)[..., :frames]
        floor = self.config.eps**2
        return (log_floor(peak, floor) - log_floor(mean, floor)).unsqueeze(1)
