"""Partially synthetic clips made on the fly, for the voice detector's online fakes.

A voice corpus holds one spliced clip per real utterance at most, all with one inner
generator (WORLD) and one segment each, so a detector sees each utterance's splice
from one place only. This maker splices a real training clip again at every draw
(``p_online_fake``): a new segment, 0.5-3 s anywhere in the clip, resynthesised by one
of the analysis-synthesis generators drawn at random (Griffin-Lim from the linear or
mel spectrogram, LPC, WORLD, WORLD with a pitch shift), crossfaded in and out exactly
as the ``splice`` generator does (it is that generator, with another inner).

Held-out families stay held out: a leave-one-out run that holds out a family makes no
segment with its generators, and one that holds out ``splice`` makes none at all (the
trainer turns the setting off, see ``AudioTask.online_family``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from detector.media.audio import SAMPLE_RATE
from generators.audio import world
from generators.audio.splice import Splice

# The generators that resynthesise a segment with nothing to learn first (``melgan``
# needs a trained vocoder; ``tts_espeak`` does not copy what was said in the segment).
INNERS = ("gl_linear", "gl_mel", "lpc", "world", "world_pitch")
MIN_SECONDS = 0.5
MAX_SECONDS = 3.0


@dataclass(frozen=True)
class SplicedClip:
    """A real clip with one stretch made synthetic: the samples and that stretch (s)."""

    media: np.ndarray
    segments: tuple[tuple[float, float], ...]


class OnlineSplicer:
    """``splicer(clip, rng)``: the clip with a random segment resynthesised by a random
    inner generator (a :class:`SplicedClip`); the same draws give the same clip."""

    def __init__(self, exclude_families: Iterable[str] = ()) -> None:
        from generators.registry import create, family

        excluded = set(exclude_families)
        if "splice" in excluded:
            raise ValueError("splice is held out: no spliced clips may be made")
        names = [
            n
            for n in INNERS
            if family(n) not in excluded and (family(n) != "world" or world.available())
        ]
        if not names:
            raise ValueError(
                f"no generator left to splice with: {', '.join(INNERS)} are all held out "
                "or unavailable"
            )
        self.splices: list[Splice] = []
        for name in names:
            splice = create("splice", inner=name, min_seconds=MIN_SECONDS, max_seconds=MAX_SECONDS)
            assert isinstance(splice, Splice)
            self.splices.append(splice)

    @property
    def inners(self) -> list[str]:
        return [s.inner.name for s in self.splices]

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> SplicedClip:
        splice = self.splices[int(rng.integers(len(self.splices)))]
        out, (start, end) = splice.splice(
            np.asarray(clip, dtype=np.float32), seed=int(rng.integers(2**32))
        )
        return SplicedClip(out, ((start / SAMPLE_RATE, end / SAMPLE_RATE),))
