"""``voice_swap``: real footage with its voice track replaced by a synthetic copy.

The frames stay real; the voice is the clip's own speech passed through a registered
voice generator's copy synthesis (``gl_mel`` by default; ``gl_linear``, ``lpc``,
``world``, ``melgan``, ...): same speaker, words and timing, so only the voice's
synthesis traces tell it apart, as in audio-only deepfake videos (the "real video, fake
audio" class of FakeAVCeleb: Khalid et al., 2021, https://arxiv.org/abs/2108.05080).

Clips without a voice track (or with a silent one) cannot be voice-swapped:
``generate`` draws only from the clips that have one, and raises a ``ValueError`` when
the source has none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from detector.config import check_preset, from_dict
from detector.media.audio import SAMPLE_RATE, prepare_speech
from detector.media.errors import MediaError
from detector.media.video import VideoClip
from generators.base import FitReport, Generator, Samples, StepFn
from generators.image._tensor import item_seeds
from generators.registry import create, names, register
from generators.sources.audio import AudioSource
from generators.video._track import (
    check_video_source,
)

MIN_VOICE_S = 0.25  # shorter tracks hold too little to resynthesise (and to hear)


@dataclass(frozen=True)
class VoiceSwapConfig:
    max_side: int = 384  # clips are loaded and returned at most this large (frames untouched)
    # A conditional voice generator with resynthesize(): gl_mel, gl_linear, lpc, world, ...
    vocoder: str = "gl_mel"
    vocoder_preset: str = "default"  # the voice generator's own preset

    def __post_init__(self) -> None:
        check_preset(self.vocoder_preset)
        if self.max_side < 32:
            raise ValueError(f"max_side must be >= 32, got {self.max_side}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> VoiceSwapConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"max_side": 128, "vocoder_preset": "tiny"},  # for tests
}


def copy_synthesis_names() -> list[str]:
    """Registered voice generators that can resynthesise a given recording."""
    out = []
    for name in names():
        try:
            gen = create(name, preset="tiny")
        except Exception:  # a plugin that cannot build is just not a choice
            continue
        if _is_copy_synthesis(gen):
            out.append(name)
    return out


def _is_copy_synthesis(gen: Generator | None) -> bool:
    return gen is not None and (
        gen.modality == "audio" and gen.conditional and callable(getattr(gen, "resynthesize", None))
    )


@dataclass(frozen=True)
class ClipVoice:
    """The voice track of one real clip, as an utterance a voice generator can fit on."""

    id: str
    origin: str
    samples: np.ndarray  # prepared speech: trimmed and level-normalised, 16 kHz

    def load(self) -> np.ndarray:
        return self.samples


def voice_track(item: Any) -> np.ndarray | None:
    """The voice track of a ``VideoItem`` (16 kHz, as its clip holds it), without decoding
    the frames; ``None`` when the video has no audio."""
    return item.voice()


def has_voice(audio: np.ndarray | None) -> bool:
    """Whether a voice track is long and loud enough to be resynthesised."""
    if audio is None or len(audio) < MIN_VOICE_S * SAMPLE_RATE:
        return False
    try:
        prepare_speech(audio, trim=False)
    except MediaError:  # silent
        return False
    return True


class VoiceSwap(Generator):
    """Real frames, synthetic voice: the clip's own speech through ``vocoder``'s copy
    synthesis (exactly as long as the real track, at 16 kHz)."""

    family = "voice_swap"
    modality = "video"
    conditional = True

    def __init__(self, name: str, config: VoiceSwapConfig) -> None:
        super().__init__(name, config)
        vocoder = (
            create(config.vocoder, preset=config.vocoder_preset)
            if config.vocoder in names()
            else None
        )
        if vocoder is None or not _is_copy_synthesis(vocoder):
            raise ValueError(
                f"unknown vocoder {config.vocoder!r} (not a copy-synthesis voice generator); "
                f"valid values: {copy_synthesis_names()}"
            )
        self.vocoder: Any = vocoder
        self.nets["vocoder"] = vocoder.nets  # trained vocoders (melgan) go into checkpoints
        self._voiced: dict[str, bool] = {}  # item id -> has a voice track

    def voiced(self, source: Any) -> Any:
        """The clips of ``source`` with a voice track (checked once per clip id)."""
        for item in source.items:
            if item.id not in self._voiced:
                self._voiced[item.id] = has_voice(voice_track(item))
        return source.subset([it.id for it in source.items if self._voiced[it.id]])

    def _no_voice(self, source: Any) -> ValueError:
        return ValueError(
            f"{self.name} replaces voice tracks, and none of the {len(source)} clips of "
            f"{source.spec!r} has one (clips without audio cannot be voice-swapped)"
        )

    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Fit the vocoder on the training clips' voice tracks (copy synthesis learns
        nothing: 0 steps; ``melgan`` trains)."""
        start = time.perf_counter()
        source = check_video_source(self.name, source)
        voices = []
        for item in self.voiced(source).items:
            track = voice_track(item)
            assert track is not None  # voiced() kept only clips with a voice track
            speech = prepare_speech(track).samples
            voices.append(ClipVoice(id=item.id, origin=str(item.origin), samples=speech))
        if not voices and any(True for _ in self.nets.parameters()):
            raise self._no_voice(source)
        report = self.vocoder.fit(
            AudioSource(spec=f"{source.spec} (voice tracks)", items=voices),  # type: ignore[arg-type]
            on_step=on_step,
        )
        self.fit_report = FitReport(
            steps=report.steps,
            seconds=time.perf_counter() - start,
            n_train=len(voices),
            final=report.final,
        )
        return self.fit_report

    def swap(self, clip: VideoClip, *, seed: int) -> VideoClip:
        """``clip`` with its voice track resynthesised (frames and boxes untouched)."""
        if not has_voice(clip.audio):
            raise ValueError(f"{self.name}: the clip has no voice track to replace")
        if clip.sample_rate != SAMPLE_RATE:
            raise ValueError(f"voice tracks must be at {SAMPLE_RATE} Hz, got {clip.sample_rate}")
        audio = np.asarray(clip.audio, dtype=np.float32)
        return VideoClip(
            frames=clip.frames,
            fps=clip.fps,
            audio=self.vocoder.resynthesize(audio, seed=seed),
            sample_rate=clip.sample_rate,
            boxes=[[] for _ in range(len(clip.frames))],
        )

    def generate(self, n: int, *, seed: int, source: Any | None = None) -> Samples:
        """``n`` clips drawn with ``seed`` from those of ``source`` that have a voice track,
        each with the track resynthesised; ``sources[i]`` is the real clip's id."""
        source = check_video_source(self.name, source)
        cfg: VoiceSwapConfig = self.config
        voiced = self.voiced(source)
        if not len(voiced):
            raise self._no_voice(source)
        seeds = item_seeds(seed, n)
        items = voiced.pick(n, seed=seed) if n else []
        videos = [
            self.swap(item.load(max_side=cfg.max_side), seed=s)
            for item, s in zip(items, seeds, strict=True)
        ]
        return Samples(images=None, sources=[it.id for it in items], seeds=seeds, videos=videos)


@register("voice_swap", family="voice_swap")
def voice_swap(*, preset: str = "default", **overrides: Any) -> VoiceSwap:
    return VoiceSwap("voice_swap", VoiceSwapConfig.preset(preset, **overrides))
