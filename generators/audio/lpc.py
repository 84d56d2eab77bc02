"""LPC resynthesis (``lpc``): the all-pole vocoder of classic speech coding.

Each 10 ms of a real utterance gets an all-pole filter fitted to its 25 ms
neighbourhood (the autocorrelation method, on pre-emphasised speech). The true
prediction residual is thrown away and replaced by a model of it, as LPC-10 style
coders do: a pulse train at the frame's F0 where the frame is voiced, white noise
where it is not, at the residual's energy. The result keeps the words and the formants
and loses the fine structure of the voice: buzzy, robotic speech.

F0 comes from YIN (``librosa.yin``: 200x real time, where pYIN ran at 8x); a frame is
voiced when the speech correlates with itself one F0 period later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import librosa
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detector.config import check_preset, from_dict
from detector.media.audio import SAMPLE_RATE
from generators.audio._dsp import CopySynthesis, finish, sub_seed
from generators.registry import register

YIN_FRAME = 1024  # 64 ms: two periods of the lowest F0 (fmin) must fit in it


@dataclass(frozen=True)
class LPCConfig:
    order: int = 18  # poles: 2 per kHz of bandwidth (8 kHz) plus 2 for the glottis and lips
    frame_length: int = 400  # 25 ms analysis window (Hamming)
    hop: int = 160  # 10 ms between filters
    pre_emphasis: float = 0.97  # flattens the speech tilt before the fit; undone after
    fmin: float = 60.0  # YIN's F0 search range, Hz
    fmax: float = 400.0
    # Voiced when the normalised autocorrelation one F0 period apart exceeds this and
    # the frame is no more than silence_db below the loudest one.
    voicing_threshold: float = 0.5
    silence_db: float = 40.0

    def __post_init__(self) -> None:
        if not 2 <= self.order < self.frame_length:
            raise ValueError(f"order must be in [2, frame_length), got {self.order}")
        if not 1 <= self.hop <= self.frame_length:
            raise ValueError(f"hop must be in [1, frame_length], got {self.hop}")
        if not 0.0 <= self.pre_emphasis < 1.0:
            raise ValueError(f"pre_emphasis must be in [0, 1), got {self.pre_emphasis}")
        if not 2 * SAMPLE_RATE / YIN_FRAME <= self.fmin < self.fmax <= SAMPLE_RATE / 4:
            raise ValueError(
                f"need {2 * SAMPLE_RATE / YIN_FRAME:.0f} <= fmin < fmax <= "
                f"{SAMPLE_RATE // 4} Hz, got {self.fmin}, {self.fmax}"
            )
        if not 0.0 < self.voicing_threshold < 1.0:
            raise ValueError(f"voicing_threshold must be in (0, 1), got {self.voicing_threshold}")
        if self.silence_db <= 0:
            raise ValueError(f"silence_db must be > 0, got {self.silence_db}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> LPCConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"order": 12},  # for tests (the method is fast at any size)
}


def levinson(frames: np.ndarray, order: int) -> np.ndarray:
    """``(F, order + 1)`` prediction-error filters ``[1, a_1, ...]`` of ``(F, L)`` windowed
    frames: the autocorrelation method, by the Levinson-Durbin recursion on all frames at
    once. Its filters are minimum-phase, so the synthesis filters are stable. (It matches
    scipy's solve_toeplitz to 1e-7; librosa.lpc's Burg method costs 1.7 s of numba
    compilation in every new process.)"""
    n = frames.shape[1]
    nfft = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(frames, nfft)
    r = np.fft.irfft(spec.real**2 + spec.imag**2, nfft)[:, : order + 1]
    r[:, 0] = r[:, 0] * (1 + 1e-9) + 1e-12  # a touch of white noise: never singular
    a = np.zeros((len(frames), order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        k = -(r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1 : 0 : -1], axis=1)) / err
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        err = err * (1 - k * k)
    return a


def lpc_filters(x: np.ndarray, *, order: int, frame_length: int, hop: int) -> np.ndarray:
    """``(ceil(n / hop), order + 1)`` all-pole coefficients, row ``t`` fitted to the
    Hamming-windowed ``frame_length`` samples centred on ``x[t * hop : (t + 1) * hop]``."""
    n = len(x)
    n_seg = math.ceil(n / hop)
    half = frame_length // 2
    # A whisper of fixed noise keeps silent frames well-conditioned.
    dithered = x + 1e-6 * np.random.default_rng(0).standard_normal(n)
    padded = np.pad(dithered, (half, half + hop))
    centres = np.arange(n_seg) * hop + hop // 2
    frames = sliding_window_view(padded, frame_length)[centres] * np.hamming(frame_length)
    coeffs = levinson(frames, order)
    bad = ~np.isfinite(coeffs).all(axis=1)
    coeffs[bad] = np.eye(1, order + 1)[0]  # a pass-through filter
    return coeffs


def voicing(
    y: np.ndarray, f0: np.ndarray, *, hop: int, threshold: float, silence_db: float
) -> np.ndarray:
    """Per YIN frame (centred at ``k * hop``): periodic at ``f0[k]`` and not silent."""
    frames = sliding_window_view(np.pad(y, YIN_FRAME // 2), YIN_FRAME)[::hop][: len(f0)]
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = energy_db > energy_db.max() - silence_db
    voiced = np.zeros(len(f0), dtype=bool)
    for k in np.flatnonzero(loud):
        lag = round(SAMPLE_RATE / f0[k])
        a, b = frames[k, :-lag], frames[k, lag:]
        denom = math.sqrt(float(a @ a) * float(b @ b))
        voiced[k] = denom > 0 and float(a @ b) / denom > threshold
    return voiced


class LPCVocoder(CopySynthesis):
    """Frame-wise LPC resynthesis with a modelled (pulse or noise) excitation."""

    family = "lpc"

    def __init__(self, name: str, config: LPCConfig) -> None:
        super().__init__(name, config)

    def resynthesize(self, y: np.ndarray, *, seed: int) -> np.ndarray:
        # Imported here: scipy.signal takes 0.7 s to import, every CLI start would pay it.
        from scipy.signal import lfilter, lfiltic

        cfg: LPCConfig = self.config
        x = np.asarray(y, dtype=np.float64)
        n, hop, sr = len(x), cfg.hop, SAMPLE_RATE
        rng = np.random.default_rng(sub_seed(seed, 2))
        emphasised = lfilter([1.0, -cfg.pre_emphasis], [1.0], x)
        coeffs = lpc_filters(emphasised, order=cfg.order, frame_length=cfg.frame_length, hop=hop)

        # F0 and voicing per YIN frame (centred at k * hop), then per sample.
        f0 = librosa.yin(
            x, fmin=cfg.fmin, fmax=cfg.fmax, sr=sr, frame_length=YIN_FRAME, hop_length=hop
        )
        voiced = voicing(x, f0, hop=hop, threshold=cfg.voicing_threshold, silence_db=cfg.silence_db)
        t = np.arange(n)
        f0_s = np.interp(t, np.arange(len(f0)) * hop, f0)
        voiced_s = voiced[np.minimum(np.rint(t / hop).astype(int), len(voiced) - 1)]

        # Unit-power excitation: pulses of height sqrt(period) on the F0 phase, or noise.
        phase = rng.random() + np.cumsum(f0_s / sr)
        pulses = np.diff(np.floor(phase), prepend=np.floor(phase[0])) > 0
        excitation = np.where(voiced_s, pulses * np.sqrt(sr / f0_s), rng.standard_normal(n))

        # Gains: the RMS of each segment's true residual, interpolated between centres.
        n_seg = len(coeffs)
        starts = np.arange(n_seg) * hop
        gains = np.empty(n_seg)
        for k, s in enumerate(starts.tolist()):
            ctx = max(0, s - cfg.order)
            residual = lfilter(coeffs[k], [1.0], emphasised[ctx : s + hop])[s - ctx :]
            gains[k] = math.sqrt(float(np.mean(residual**2)))
        excitation *= np.interp(t, starts + hop / 2, gains)

        # The time-varying all-pole filter, its past outputs carried from filter to filter.
        out = np.zeros(n)
        for k, s in enumerate(starts.tolist()):
            past = out[max(0, s - cfg.order) : s][::-1]
            zi = lfiltic([1.0], coeffs[k], past)
            out[s : s + hop], _ = lfilter([1.0], coeffs[k], excitation[s : s + hop], zi=zi)
        out = lfilter([1.0], [1.0, -cfg.pre_emphasis], out)
        return finish(out, y)


@register("lpc", family="lpc")
def lpc(*, preset: str = "default", **overrides: Any) -> LPCVocoder:
    return LPCVocoder("lpc", LPCConfig.preset(preset, **overrides))
