"""Speech-like test recordings, made in the test run: no data files needed.

A voiced source (a glottal pulse train whose pitch glides like intonation) through
three formant resonators that move from syllable to syllable, with syllable-rate
loudness, short pauses and a little breath noise. Not speech, but it has what
vocoders and spectrogram detectors care about: harmonics, formants, unvoiced gaps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

SR = 16_000
_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480))


def _resonator(x: np.ndarray, freq: float, bw: float, sr: int) -> np.ndarray:
    r = np.exp(-np.pi * bw / sr)
    theta = 2 * np.pi * freq / sr
    return lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)


def speech_like(
    seed: int, seconds: float = 3.0, *, sr: int = SR, f0: float | None = None
) -> np.ndarray:
    """``(n,)`` float32 in [-1, 1]: a deterministic speech-like signal for a seed."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    base = f0 if f0 is not None else float(rng.uniform(95, 220))
    t = np.arange(n) / sr
    pitch = base * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t + rng.uniform(0, 6)))
    phase = np.cumsum(pitch / sr)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    glottal = lfilter([1.0], [1, -0.97], pulses)  # a smoothed pulse train
    syl = int(sr * rng.uniform(0.18, 0.26))  # syllable length
    out = np.zeros(n)
    for start in range(0, n, syl):
        seg = slice(start, min(n, start + syl))
        vowel = _VOWELS[int(rng.integers(len(_VOWELS)))]
        voiced = rng.random() > 0.15
        src = glottal[seg] if voiced else rng.normal(scale=0.3, size=seg.stop - seg.start)
        y = sum(_resonator(src, f, 80 + 40 * k, sr) for k, f in enumerate(vowel))
        env = np.hanning(seg.stop - seg.start) ** 0.5
        if rng.random() < 0.1:  # a pause
            env *= 0.02
        out[seg] = y * env
    out += rng.normal(scale=0.002, size=n)
    out = out / (np.abs(out).max() + 1e-9) * 0.5
    return out.astype(np.float32)


def write_speech(
    path: Path, seed: int, seconds: float = 3.0, *, sr: int = SR, **kw: object
) -> Path:
    """Write a speech-like recording (``subtype``/``format`` passed to soundfile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), speech_like(seed, seconds, sr=sr), sr, **kw)  # type: ignore[arg-type]
    return path


def speech_folder(root: Path, n: int = 6, seconds: float = 2.5) -> Path:
    """A folder of ``n`` speech-like WAV files (different seeds, so different 'speakers')."""
    for i in range(n):
        write_speech(root / f"spk{i}.wav", seed=100 + i, seconds=seconds)
    return root
