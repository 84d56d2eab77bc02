"""Partially synthetic clips (``splice``): a real utterance with one stretch resynthesised.

As in partially spoofed audio (Zhang et al., "An initial investigation for detecting
partially spoofed audio", 2021, https://arxiv.org/abs/2104.02518), most of the clip
is the real recording, untouched; one segment of it is replaced by its copy-synthesis
through an inner voice generator (WORLD by default), crossfaded in and out with
raised-cosine ramps. The inner generator resynthesises a window a little larger than
the segment, and only the segment is kept, so the inner method's start-up and edge
effects fall outside it.

``Samples.segments[i]`` is the synthetic part ``(start_s, end_s)`` of item ``i``, exact
in the clip's samples: outside it, the clip equals the real utterance sample for sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from detector.config import check_preset, from_dict
from detector.media.audio import SAMPLE_RATE
from generators.audio import world
from generators.audio._dsp import (
    CopySynthesis,
    check_audio_source,
    item_seeds,
    raised_cosine,
    sub_seed,
)
from generators.base import FitReport, Samples, StepFn
from generators.registry import register

SR = SAMPLE_RATE


def default_inner() -> str:
    """``world`` when pyworld is installed, else ``gl_linear`` (no optional dependency)."""
    return "world" if world.available() else "gl_linear"


@dataclass(frozen=True)
class SpliceConfig:
    # The registered conditional voice generator that makes the synthetic segment, and
    # its preset. The builder fills `inner` with default_inner() when it is not given.
    inner: str = "world"
    inner_preset: str = "default"
    # The segment's length in seconds, uniform in [min_seconds, max_seconds], capped so
    # that edge_seconds of real speech stay on each side. A clip shorter than
    # min_seconds + 2 * edge_seconds gets its middle third replaced instead.
    min_seconds: float = 1.0
    max_seconds: float = 2.5
    edge_seconds: float = 0.3
    context_seconds: float = 0.1  # resynthesised on each side of the segment, then cut
    crossfade_ms: float = 15.0  # raised-cosine ramps, inside the segment at both ends

    def __post_init__(self) -> None:
        check_preset(self.inner_preset)
        if self.inner == "splice":
            raise ValueError("splice cannot be its own inner generator")
        if not 0.05 <= self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"need 0.05 <= min_seconds <= max_seconds, got {self.min_seconds}, "
                f"{self.max_seconds}"
            )
        if min(self.edge_seconds, self.context_seconds, self.crossfade_ms) < 0:
            raise ValueError("edge_seconds, context_seconds and crossfade_ms must be >= 0")
        if self.crossfade_ms / 1000 > self.min_seconds / 4:
            raise ValueError("crossfade_ms must be at most a quarter of min_seconds")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SpliceConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # For tests: a tiny inner generator and segments that fit 2 s test clips.
    "tiny": {"inner_preset": "tiny", "min_seconds": 0.5, "max_seconds": 1.0},
}


def choose_segment(n: int, cfg: SpliceConfig, rng: np.random.Generator) -> tuple[int, int]:
    """The synthetic part ``[start, end)`` (samples) of an ``n``-sample clip."""
    edge = round(cfg.edge_seconds * SR)
    shortest = round(cfg.min_seconds * SR)
    if n < shortest + 2 * edge:
        return n // 3, n - n // 3
    length = min(round(rng.uniform(cfg.min_seconds, cfg.max_seconds) * SR), n - 2 * edge)
    start = int(rng.integers(edge, n - edge - length + 1))
    return start, start + length


class Splice(CopySynthesis):
    """Real speech with one segment replaced by an inner generator's copy of it."""

    family = "splice"

    def __init__(self, name: str, config: SpliceConfig) -> None:
        super().__init__(name, config)
        from generators.registry import create

        inner = create(config.inner, preset=config.inner_preset)
        if not isinstance(inner, CopySynthesis) or isinstance(inner, Splice):
            raise ValueError(
                f"splice's inner generator must be a conditional voice generator (one that "
                f"resynthesises real speech), not {config.inner!r}"
            )
        self.inner = inner
        self.nets["inner"] = inner.nets  # a trained inner (melgan) is saved with the splice

    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Fits the inner generator (0 steps unless it learns, e.g. ``melgan``)."""
        start = time.perf_counter()
        check_audio_source(self.name, source)
        report = self.inner.fit(source, on_step=on_step)
        self.fit_report = FitReport(
            steps=report.steps,
            seconds=time.perf_counter() - start,
            n_train=report.n_train,
            final=report.final,
        )
        return self.fit_report

    def splice(self, y: np.ndarray, *, seed: int) -> tuple[np.ndarray, tuple[int, int]]:
        """``y`` with a segment replaced, and the segment ``(start, end)`` in samples."""
        cfg: SpliceConfig = self.config
        n = len(y)
        start, end = choose_segment(n, cfg, np.random.default_rng(sub_seed(seed, 3)))
        ctx = round(cfg.context_seconds * SR)
        lo, hi = max(0, start - ctx), min(n, end + ctx)
        fake = self.inner.resynthesize(np.ascontiguousarray(y[lo:hi]), seed=sub_seed(seed, 4))[
            start - lo : end - lo
        ]
        fade = min(round(cfg.crossfade_ms * SR / 1000), (end - start) // 4)
        weight = np.ones(end - start, dtype=np.float32)  # of the synthetic part
        if fade:
            ramp = raised_cosine(fade)
            weight[:fade] = ramp
            weight[len(weight) - fade :] = ramp[::-1]
        out = np.array(y, dtype=np.float32)
        out[start:end] = weight * fake + (1 - weight) * out[start:end]
        return np.clip(out, -1.0, 1.0), (start, end)

    def resynthesize(self, y: np.ndarray, *, seed: int) -> np.ndarray:
        return self.splice(y, seed=seed)[0]

    def generate(self, n: int, *, seed: int, source: Any | None = None) -> Samples:
        """Spliced copies of ``n`` utterances of ``source`` picked with ``seed``."""
        source = check_audio_source(self.name, source)
        seeds = item_seeds(seed, n)
        utterances = source.pick(n, seed=seed) if n else []
        audio: list[np.ndarray] = []
        segments: list[tuple[float, float] | None] = []
        for u, s in zip(utterances, seeds, strict=True):
            clip, (start, end) = self.splice(np.array(u.load(), dtype=np.float32), seed=s)
            audio.append(clip)
            segments.append((start / SR, end / SR))
        return Samples(
            images=None,
            sources=[u.id for u in utterances],
            seeds=seeds,
            audio=audio,
            sample_rate=SR,
            segments=segments,
        )


@register("splice", family="splice")
def splice(*, preset: str = "default", **overrides: Any) -> Splice:
    overrides.setdefault("inner", default_inner())
    return Splice("splice", SpliceConfig.preset(preset, **overrides))
