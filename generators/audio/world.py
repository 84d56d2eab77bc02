"""The WORLD vocoder: ``world`` (copy synthesis) and ``world_pitch`` (pitch-shifted).

Morise, Yokomori & Ozawa, "WORLD: a vocoder-based high-quality speech synthesis system
for real-time applications", 2016, https://doi.org/10.1587/transinf.2015EDP7457. An
utterance is analysed into F0 (DIO refined by StoneMask, or Harvest), a spectral
envelope (CheapTrick) and band aperiodicities (D4C), then synthesised from them: the
parametric source-filter trace of statistical-parametric TTS and voice conversion.
``world_pitch`` shifts F0 by a few semitones per item (formants stay put), as a voice
conversion system would.

pyworld is an optional dependency (``pip install pyworld``, the ``voice`` extra);
without it these generators construct but raise a RuntimeError saying so when used.
"""

from __future__ import annotations

import importlib.metadata
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

from detector.config import check_choice, check_preset, from_dict
from detector.media.audio import SAMPLE_RATE
from generators.audio._dsp import CopySynthesis, finish, sub_seed
from generators.base import FitReport, StepFn
from generators.registry import register

F0_METHODS = ("dio", "harvest")
INSTALL_HINT = "pyworld is not installed; pip install pyworld (the `voice` extra)"


def _import_pyworld() -> Any:
    try:
        import pyworld

        return pyworld
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
    # pyworld 0.3.5's __init__ asks pkg_resources (gone from setuptools >= 81) for its
    # own version and nothing else: lend it a stand-in for the import, then take it away.
    shim = types.ModuleType("pkg_resources")
    shim.get_distribution = lambda name: types.SimpleNamespace(  # type: ignore[attr-defined]
        version=importlib.metadata.version(name)
    )
    sys.modules["pkg_resources"] = shim
    try:
        import pyworld
    finally:
        if sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]
    return pyworld


def load_pyworld() -> Any:
    """The pyworld module, or a RuntimeError naming ``pip install pyworld``."""
    try:
        return _import_pyworld()
    except ImportError as exc:
        raise RuntimeError(f"{INSTALL_HINT} ({exc})") from None


def available() -> bool:
    """Whether pyworld can be imported (the ``world`` family works)."""
    try:
        _import_pyworld()
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class WorldConfig:
    # DIO + StoneMask ran at 25x real time on 1 CPU thread (LibriSpeech), Harvest at 7x:
    # Harvest tracks F0 better in creaky and breathy speech, at 3-4x the cost.
    f0_method: str = "dio"
    frame_period: float = 5.0  # ms between analysis frames (WORLD's default)
    f0_floor: float = 71.0  # Hz; WORLD's defaults cover men's and women's voices
    f0_ceil: float = 800.0
    # Each item's F0 is scaled by 2 ** (s / 12), s drawn from the item's seed uniformly
    # with |s| in [min_semitones, max_semitones] and a random sign: 0, 0 copies the pitch.
    min_semitones: float = 0.0
    max_semitones: float = 0.0

    def __post_init__(self) -> None:
        check_choice("f0_method", self.f0_method, F0_METHODS)
        if not 1.0 <= self.frame_period <= 20.0:
            raise ValueError(f"frame_period must be 1-20 ms, got {self.frame_period}")
        if not 20.0 <= self.f0_floor < self.f0_ceil <= SAMPLE_RATE / 4:
            raise ValueError(
                f"need 20 <= f0_floor < f0_ceil <= {SAMPLE_RATE // 4} Hz, got "
                f"{self.f0_floor}, {self.f0_ceil}"
            )
        if not 0.0 <= self.min_semitones <= self.max_semitones <= 12.0:
            raise ValueError(
                "need 0 <= min_semitones <= max_semitones <= 12, got "
                f"{self.min_semitones}, {self.max_semitones}"
            )

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> WorldConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))

    def semitones(self, seed: int) -> float:
        """The pitch shift for an item seed (0 when the range is 0, 0)."""
        if self.max_semitones == 0:
            return 0.0
        rng = np.random.default_rng(sub_seed(seed, 1))
        size = rng.uniform(self.min_semitones, self.max_semitones)
        return float(size if rng.random() < 0.5 else -size)


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"frame_period": 10.0},  # for tests: half the frames
}


class World(CopySynthesis):
    """Analysis (F0, spectral envelope, aperiodicity) and resynthesis with WORLD."""

    family = "world"

    def __init__(self, name: str, config: WorldConfig) -> None:
        super().__init__(name, config)

    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Nothing to learn (0 steps); raises early when pyworld is missing."""
        load_pyworld()
        return super().fit(source, on_step=on_step)

    def resynthesize(self, y: np.ndarray, *, seed: int) -> np.ndarray:
        cfg: WorldConfig = self.config
        pw = load_pyworld()
        x = np.ascontiguousarray(y, dtype=np.float64)  # what pyworld's C code takes
        fs = SAMPLE_RATE
        kw = {"f0_floor": cfg.f0_floor, "f0_ceil": cfg.f0_ceil, "frame_period": cfg.frame_period}
        if cfg.f0_method == "dio":
            f0, t = pw.dio(x, fs, **kw)
            f0 = pw.stonemask(x, f0, t, fs)
        else:
            f0, t = pw.harvest(x, fs, **kw)
        envelope = pw.cheaptrick(x, f0, t, fs, f0_floor=cfg.f0_floor)
        aperiodicity = pw.d4c(x, f0, t, fs)
        f0 = np.ascontiguousarray(f0 * 2.0 ** (cfg.semitones(seed) / 12.0))
        out = pw.synthesize(f0, envelope, aperiodicity, fs, cfg.frame_period)
        return finish(out, y)


@register("world", family="world")
def world(*, preset: str = "default", **overrides: Any) -> World:
    return World("world", WorldConfig.preset(preset, **overrides))


@register("world_pitch", family="world")
def world_pitch(*, preset: str = "default", **overrides: Any) -> World:
    overrides.setdefault("min_semitones", 1.0)
    overrides.setdefault("max_semitones", 3.0)
    return World("world_pitch", WorldConfig.preset(preset, **overrides))
