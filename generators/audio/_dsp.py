"""Shared pieces of the voice generators: the copy-synthesis base class, seeds, levels.

Every voice generator hands back float32 mono clips at 16 kHz in [-1, 1]. Conditional
ones (:class:`CopySynthesis`) resynthesise real utterances and keep their exact length
and level, so that neither duration nor loudness can tell real from fake.
"""

from __future__ import annotations

import abc
import time
from typing import Any

import numpy as np

from detector.media.audio import SAMPLE_RATE
from generators.base import FitReport, Generator, Samples, StepFn

PEAK = 0.99  # the same full-scale ceiling prepare_speech keeps real speech under


def item_seeds(seed: int, n: int) -> list[int]:
    """Per-item seeds derived from a call's ``seed`` (as the image generators derive
    theirs): items do not depend on how a call is batched, and nearby seeds share none."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n, np.uint32)]


def sub_seed(seed: int, *salt: int) -> int:
    """A seed for one use of an item seed (noise, shift, ...), independent of the others."""
    return int(np.random.SeedSequence([seed, *salt]).generate_state(1, np.uint32)[0])


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` trimmed or zero-padded at the end to exactly ``n`` samples."""
    if len(y) >= n:
        return y[:n]
    return np.pad(y, (0, n - len(y)))


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0


def finish(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """A synthetic clip made from ``ref``: its exact length, its RMS level, finite, float32,
    with peaks kept under full scale (as :func:`prepare_speech` keeps real speech)."""
    out = fit_length(
        np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0), len(ref)
    )
    level, target = rms(out), rms(ref)
    if level > 1e-9 and target > 0:
        out = out * (target / level)
    return limit(out)


def limit(y: np.ndarray) -> np.ndarray:
    """float32, scaled down (never up) so that the peak is at most :data:`PEAK`."""
    out = np.asarray(y, dtype=np.float32)
    peak = float(np.abs(out).max()) if len(out) else 0.0
    if peak > PEAK:
        out = out * np.float32(PEAK / peak)
    return np.ascontiguousarray(np.clip(out, -1.0, 1.0), dtype=np.float32)


def raised_cosine(n: int) -> np.ndarray:
    """``n`` weights rising from 0 to 1 (exclusive at both ends): a crossfade ramp."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / max(n, 1))).astype(np.float32)


def check_audio_source(name: str, source: Any) -> Any:
    """``source`` when it is an audio source; a ValueError saying what is needed if not."""
    if source is None:
        raise ValueError(
            f"{name} resynthesises real speech: generate() needs `source`, an AudioSource "
            "of the utterances to copy"
        )
    if getattr(source, "modality", None) != "audio":
        raise ValueError(f"{name} is a voice generator; it needs an audio source, not {source!r}")
    return source


def analysis_fit_report(start: float) -> FitReport:
    """What fit() of a method that learns nothing reports: no steps, no training data."""
    return FitReport(steps=0, seconds=time.perf_counter() - start, n_train=0, final={})


class VoiceGenerator(Generator):
    """A generator of speech clips (``Samples.audio``, 16 kHz mono float32)."""

    modality = "audio"


class CopySynthesis(VoiceGenerator):
    """Resynthesises real utterances: ``generate`` copies ``source.pick(n, seed=seed)``
    through :meth:`resynthesize`, so real and fake share speaker, words and length."""

    conditional = True

    @abc.abstractmethod
    def resynthesize(self, y: np.ndarray, *, seed: int) -> np.ndarray:
        """``y`` (float32 at 16 kHz) through the method: a clip of exactly ``len(y)``
        samples at ``y``'s level; the same ``y`` and ``seed`` give the same clip."""

    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Analysis-synthesis learns nothing: 0 steps (``source`` is only checked)."""
        start = time.perf_counter()
        check_audio_source(self.name, source)
        self.fit_report = analysis_fit_report(start)
        return self.fit_report

    def generate(self, n: int, *, seed: int, source: Any | None = None) -> Samples:
        """Copies of ``n`` utterances of ``source`` picked with ``seed``; ``sources[i]`` is
        the id of the utterance item ``i`` copies, ``seeds[i]`` the seed it was made with."""
        source = check_audio_source(self.name, source)
        seeds = item_seeds(seed, n)
        utterances = source.pick(n, seed=seed) if n else []
        audio = [
            self.resynthesize(np.array(u.load(), dtype=np.float32), seed=s)
            for u, s in zip(utterances, seeds, strict=True)
        ]
        return Samples(
            images=None,
            sources=[u.id for u in utterances],
            seeds=seeds,
            audio=audio,
            sample_rate=SAMPLE_RATE,
            segments=[None] * n,
        )
