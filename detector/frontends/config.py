"""The one config every spectrogram front-end is built from."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detector.config import check_preset, from_dict

# Half the -3 dB main-lobe width of a Hann window, in bins (librosa's window_bandwidth).
HANN_BANDWIDTH = 1.50018310546875


@dataclass(frozen=True)
class FrontendConfig:
    """Analysis settings shared by the front-ends; each reads the fields it needs.

    The defaults are the usual speech anti-spoofing analysis at 16 kHz: 25 ms Hann
    windows every 10 ms, a 512-point FFT, and the whole band up to 8 kHz kept, because
    vocoder and codec artefacts sit as much in the top octave as in the formants.
    """

    sample_rate: int = 16_000
    n_fft: int = 512  # 257 linear-frequency bins, 31.25 Hz apart
    win_length: int = 400  # 25 ms Hann window, centred in the FFT frame
    hop_length: int = 160  # 10 ms: a frame per 160 samples, 1 + T // hop frames
    fmin: float = 0.0  # band of the mel and linear filterbanks
    fmax: float = 8_000.0
    n_mels: int = 80
    n_linear_filters: int = 70  # LFCC: triangular filters equally spaced in Hz ...
    n_lfcc: int = 60  # ... and the cepstral coefficients kept after the DCT
    # CQT: C1 (32.7 Hz) upwards, two bins a semitone. 190 bins put the top centre at
    # 7.67 kHz and its main lobe's -3 dB edge at 7.84 kHz: the highest that stays
    # below 8 kHz (191 would cross it).
    cqt_fmin: float = 32.703195662574764
    cqt_bins_per_octave: int = 24
    cqt_n_bins: int = 190
    cqt_filter_scale: float = 1.0  # < 1 shortens the kernels (less frequency resolution)
    # Pulse crest: a 1 ms Hann window every 0.25 ms after pre-emphasis (9 bands 1 kHz
    # apart); see pulse.py for why it is this short.
    pulse_n_fft: int = 16
    pulse_hop: int = 4
    pulse_preemphasis: float = 0.97
    # Floor under the log, applied to magnitudes (power features use eps**2): -120 dB
    # re. a full-scale amplitude, so digital silence gives a finite, fixed value.
    eps: float = 1e-6

    def __post_init__(self) -> None:
        nyquist = self.sample_rate / 2
        if not 0 < self.win_length <= self.n_fft or self.n_fft % 2:
            raise ValueError(
                f"need an even n_fft >= win_length > 0 (n_fft={self.n_fft}, "
                f"win_length={self.win_length})"
            )
        if self.hop_length < 1:
            raise ValueError(f"hop_length must be positive, not {self.hop_length}")
        if not 0 <= self.fmin < self.fmax <= nyquist:
            raise ValueError(
                f"need 0 <= fmin < fmax <= {nyquist:g} Hz (fmin={self.fmin}, fmax={self.fmax})"
            )
        if not 0 < self.n_lfcc <= self.n_linear_filters:
            raise ValueError(
                f"n_lfcc ({self.n_lfcc}) must be in 1..n_linear_filters ({self.n_linear_filters})"
            )
        if self.n_mels < 1 or self.cqt_n_bins < 1 or self.cqt_bins_per_octave < 1:
            raise ValueError("n_mels, cqt_n_bins and cqt_bins_per_octave must be positive")
        if not 2 <= self.pulse_n_fft <= self.win_length or self.pulse_n_fft % 2:
            raise ValueError(
                f"pulse_n_fft must be even and in 2..win_length ({self.win_length}), "
                f"not {self.pulse_n_fft}"
            )
        if self.pulse_hop < 1 or self.hop_length % self.pulse_hop:
            raise ValueError(
                f"pulse_hop ({self.pulse_hop}) must divide hop_length ({self.hop_length})"
            )
        if not 0 <= self.pulse_preemphasis < 1:
            raise ValueError(f"pulse_preemphasis must be in [0, 1), not {self.pulse_preemphasis}")
        if self.eps <= 0:
            raise ValueError(f"eps must be positive, not {self.eps}")
        top = self.cqt_fmin * 2 ** ((self.cqt_n_bins - 1) / self.cqt_bins_per_octave)
        if self.cqt_fmin <= 0 or top * (1 + 0.5 * HANN_BANDWIDTH / self.cqt_q) > nyquist:
            fit = self.cqt_bins_per_octave * math.log2(
                nyquist / (1 + 0.5 * HANN_BANDWIDTH / self.cqt_q) / self.cqt_fmin
            )
            raise ValueError(
                f"the CQT's top bin ({top:.0f} Hz) reaches past the Nyquist frequency "
                f"({nyquist:g} Hz); at most {max(0, math.floor(fit) + 1)} bins fit from "
                f"cqt_fmin={self.cqt_fmin:g} Hz"
            )

    @property
    def cqt_q(self) -> float:
        """The CQT's quality factor: centre frequency over bandwidth (librosa's)."""
        r = 2.0 ** (2.0 / self.cqt_bins_per_octave)
        return self.cqt_filter_scale * (r + 1) / (r - 1)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> FrontendConfig:
        """``default``, or ``tiny``: fewer feature bins for tests and smoke runs."""
        check_preset(name)
        base = (
            cls()
            if name == "default"
            else cls(
                n_mels=40,
                n_linear_filters=30,
                n_lfcc=20,
                cqt_bins_per_octave=12,
                cqt_n_bins=95,  # the 12-per-octave counterpart: top bin 7.46 kHz
            )
        )
        return from_dict(cls, dict(overrides), base=base)
