"""Clips for the voice detector: fixed-length chunks, and the augmentation chain both
classes go through (codecs, noise, telephone band, resampling, gain).

Speech reaches a moderator through phone lines, voice messages and re-uploads; a
detector trained on pristine clips learns "pristine" instead of "vocoded". The chain
is drawn per item, independently of the label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr
from scipy.signal import butter, sosfilt

from detector.media.audio import SAMPLE_RATE, decode_audio, encode_audio, prepare_speech


@dataclass(frozen=True)
class AudioAugmentConfig:
    p_codec: float = 0.4  # an MP3 or Opus round trip
    # Of the codec round trips, the share that is Opus: libsndfile's Opus encoder takes
    # 140 ms for a 4 s chunk against MP3's 25, and it dominated a training step.
    opus_share: float = 0.3
    mp3_kbps: tuple[int, int] = (24, 128)
    opus_kbps: tuple[int, int] = (12, 64)
    p_noise: float = 0.25
    snr_db: tuple[float, float] = (10.0, 40.0)
    p_telephone: float = 0.15  # 300-3400 Hz through 8 kHz
    p_resample: float = 0.15  # down to a lower rate and back: a low-pass of unknown corner
    resample_rates: tuple[int, ...] = (8000, 11025, 12000, 22050)
    p_gain: float = 0.3
    gain_db: tuple[float, float] = (-10.0, 6.0)


def load_clip(path: str) -> np.ndarray:
    """A stored clip as the detector sees it: decoded, 16 kHz mono, prepared."""
    return prepare_speech(decode_audio(path).samples).samples


def tile_to(y: np.ndarray, n: int) -> np.ndarray:
    """Repeat a short clip until it is ``n`` samples long (no silence padding: silence
    length is a shortcut this field has been bitten by)."""
    if len(y) >= n:
        return y[:n]
    reps = math.ceil(n / max(1, len(y)))
    return np.tile(y, reps)[:n]


def chunk_windows(n_samples: int, chunk: int, hop: int) -> list[tuple[int, int]]:
    """``(start, end)`` of the chunks covering a clip: every ``hop`` samples, the last
    one aligned to the end; a clip shorter than a chunk is one window over all of it."""
    if n_samples <= chunk:
        return [(0, n_samples)]
    starts = list(range(0, n_samples - chunk + 1, hop))
    if starts[-1] + chunk < n_samples:
        starts.append(n_samples - chunk)
    return [(s, s + chunk) for s in starts]


def chunk_clip(y: np.ndarray, chunk: int, hop: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``(n_chunks, chunk)`` float32 and each chunk's window in the clip."""
    windows = chunk_windows(len(y), chunk, hop)
    out = np.empty((len(windows), chunk), dtype=np.float32)
    for i, (a, b) in enumerate(windows):
        out[i] = tile_to(y[a:b], chunk)
    return out, windows


def random_chunk(
    y: np.ndarray,
    chunk: int,
    rng: np.random.Generator,
    *,
    segments: Sequence[Sequence[float]] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """A random ``chunk``-sample window; for a partially synthetic clip, one that holds
    (as much as fits of) the synthetic segment, so its label is true of the chunk."""
    return take_chunk(y, random_start(len(y), chunk, rng, segments, sample_rate), chunk)


def random_start(
    n_samples: int,
    chunk: int,
    rng: np.random.Generator,
    segments: Sequence[Sequence[float]] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> int:
    """Where ``random_chunk`` starts its window (0 for a clip no longer than a chunk)."""
    if n_samples <= chunk:
        return 0
    lo, hi = 0, n_samples - chunk
    if segments:
        a = int(segments[0][0] * sample_rate)
        b = int(segments[0][1] * sample_rate)
        if b - a >= chunk:  # the segment is longer than a chunk: stay inside it
            lo, hi = a, max(a, b - chunk)
        else:  # the chunk contains the whole segment
            lo, hi = max(0, b - chunk), min(hi, a)
        hi = min(max(lo, hi), n_samples - chunk)
    return int(rng.integers(lo, hi + 1))


def take_chunk(y: np.ndarray, start: int, chunk: int) -> np.ndarray:
    """``chunk`` samples from ``start``; a clip shorter than that is repeated to fill it."""
    return tile_to(y, chunk) if len(y) <= chunk else y[start : start + chunk]


def synthetic_mask(
    n_samples: int,
    label: int,
    segments: Sequence[Sequence[float]] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Per sample of a clip, 1 where it is synthetic: nowhere in a real clip, everywhere
    in a synthetic one, inside the manifest's segments in a partially synthetic one."""
    if not label:
        return np.zeros(n_samples, dtype=np.float32)
    if not segments:
        return np.ones(n_samples, dtype=np.float32)
    mask = np.zeros(n_samples, dtype=np.float32)
    for a, b in segments:
        mask[max(0, round(a * sample_rate)) : max(0, round(b * sample_rate))] = 1.0
    return mask


# --- augmentation -------------------------------------------------------------------------


def codec(y: np.ndarray, fmt: str, kbps: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """An MP3 or Opus round trip, trimmed or tiled back to the input length (encoders
    add delay and padding)."""
    out = decode_audio(encode_audio(y, sample_rate, fmt, bitrate_kbps=kbps)).samples
    return tile_to(out, len(y)) if len(out) < len(y) else out[: len(y)]


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(y.astype(np.float64) ** 2)) + 1e-12
    noise = rng.normal(scale=math.sqrt(power / 10 ** (snr_db / 10)), size=len(y))
    return (y + noise).astype(np.float32)


def telephone(y: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The narrow-band telephone chain: 300-3400 Hz band-pass, 8 kHz and back."""
    sos = butter(6, (300, 3400), btype="bandpass", fs=sample_rate, output="sos")
    narrow = soxr.resample(sosfilt(sos, y).astype(np.float32), sample_rate, 8000)
    return _fit_length(soxr.resample(narrow, 8000, sample_rate).astype(np.float32), len(y))


def resample_through(y: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    low = soxr.resample(y, sample_rate, rate)
    return _fit_length(soxr.resample(low, rate, sample_rate).astype(np.float32), len(y))


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def augment_audio(
    y: np.ndarray, config: AudioAugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """One random draw of the chain on a float32 chunk; the length is kept."""
    y = np.asarray(y, dtype=np.float32)
    if rng.random() < config.p_gain:
        y = y * np.float32(10 ** (rng.uniform(*config.gain_db) / 20))
    if rng.random() < config.p_resample:
        y = resample_through(y, int(rng.choice(config.resample_rates)))
    if rng.random() < config.p_telephone:
        y = telephone(y)
    if rng.random() < config.p_noise:
        y = add_noise(y, float(rng.uniform(*config.snr_db)), rng)
    if rng.random() < config.p_codec:
        if rng.random() >= config.opus_share:
            y = codec(y, "mp3", int(rng.integers(config.mp3_kbps[0], config.mp3_kbps[1] + 1)))
        else:
            y = codec(y, "opus", int(rng.integers(config.opus_kbps[0], config.opus_kbps[1] + 1)))
    return np.clip(y, -1.0, 1.0).astype(np.float32, copy=False)
