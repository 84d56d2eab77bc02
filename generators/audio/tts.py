"""Text-to-speech with eSpeak NG (``tts_espeak``): fully synthetic speech from text.

eSpeak NG is a formant synthesiser (https://github.com/espeak-ng/espeak-ng): no
recording of a person is involved, so its clips are unconditional (``sources`` is
``None``). Each item reads one to a few sentences of :data:`SENTENCES` with a voice,
variant, pitch and speed drawn from its seed, and goes through the same decoding
(:func:`decode_audio`, resampled to 16 kHz) and preparation (:func:`prepare_speech`,
trimmed and loudness-normalised) as real speech.

``espeak-ng`` is a system program (``apt-get install espeak-ng``), not a Python
package: without it the generator constructs, :func:`available` is ``False`` and
``fit``/``generate`` raise a RuntimeError saying how to install it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from detector.config import check_preset, from_dict
from detector.media.audio import SAMPLE_RATE, decode_audio, prepare_speech
from generators.audio._dsp import VoiceGenerator, analysis_fit_report, item_seeds
from generators.base import FitReport, Samples, StepFn
from generators.registry import register

ESPEAK = "espeak-ng"
INSTALL_HINT = "espeak-ng is not installed; apt-get install espeak-ng"

# Short, plain, everyday sentences written for this project (not taken from a corpus).
SENTENCES: tuple[str, ...] = (
    "The kettle is already warm, so the tea will not take long.",
    "Please leave the blue folder on the kitchen table.",
    "We missed the early train and waited for the next one.",
    "My sister planted tomatoes along the garden fence.",
    "The meeting has been moved to Thursday afternoon.",
    "He could hear rain tapping on the window all night.",
    "Turn left at the bakery and walk past the old church.",
    "The library closes an hour earlier on Sundays.",
    "Could you call me back when you get this message?",
    "The children built a small bridge out of sticks.",
    "I think the battery in the clock needs replacing.",
    "A cold wind came down from the hills this morning.",
    "She keeps her bicycle in the shed behind the house.",
    "The soup needs a little more salt and some pepper.",
    "Our neighbours are painting their front door green.",
    "The shop on the corner sells fresh bread every day.",
    "Remember to water the plants before you go away.",
    "The bus was full, so we decided to walk instead.",
    "He wrote the phone number on the back of an envelope.",
    "The river was higher than usual after the storm.",
    "I have never seen so many birds in one tree.",
    "The printer on the second floor is out of paper.",
    "We should leave early to avoid the traffic.",
    "The cat likes to sleep in the sunniest spot of the room.",
    "There is a spare key under the flower pot.",
    "The museum has a new exhibition about old maps.",
    "My grandfather fixed clocks for almost forty years.",
    "The road to the village is closed for repairs.",
    "She asked whether the parcel had arrived yet.",
    "The lamp in the hallway flickers when it rains.",
    "They spent the whole weekend cleaning the attic.",
    "A good map is more useful than a fast car.",
    "The orange juice is on the top shelf of the fridge.",
    "We counted seven boats on the lake this evening.",
    "The teacher read the story aloud to the whole class.",
    "Please speak a little louder, the room is noisy.",
    "The garden looks much better since the rain.",
    "He forgot his umbrella at the station again.",
    "The new bridge will open at the end of the month.",
    "I would like a window seat if one is free.",
    "The dog waits by the door when it hears the car.",
    "Our flight was delayed by nearly two hours.",
    "The recipe calls for three eggs and a cup of flour.",
    "The football match was cancelled because of the snow.",
    "She found an old photograph inside the book.",
    "The light turned green, but nobody moved.",
    "Let us meet in front of the cinema at seven.",
    "The farmer sold apples and pears at the market.",
    "The radio said the weather would clear by noon.",
    "He carried the heavy boxes up three flights of stairs.",
    "The water in the pool was colder than we expected.",
    "I left my glasses somewhere in the living room.",
    "The children laughed at the clown with the red hat.",
    "The office will be closed on the public holiday.",
    "A small boat drifted slowly towards the harbour.",
    "The paint is still wet, so please do not touch it.",
    "We ordered pizza and watched an old film.",
    "The path through the forest is easy to follow.",
    "My phone battery always runs out in the cold.",
    "The baker starts work long before the sun comes up.",
    "The hotel room had a view of the mountains.",
    "Nobody knew who had left the gate open.",
    "The guitar needs new strings before the concert.",
    "We picked strawberries until our baskets were full.",
    "The clock in the square is five minutes slow.",
    "Please write your name at the top of the page.",
    "The wind blew the leaves across the empty car park.",
    "He practised the piano for an hour every evening.",
    "The market is busiest on Saturday mornings.",
    "Her coat was hanging on the back of the chair.",
)


def available() -> bool:
    """Whether the ``espeak-ng`` program is installed (the ``tts`` family works)."""
    return shutil.which(ESPEAK) is not None


def _require() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise RuntimeError(INSTALL_HINT)
    return path


@dataclass(frozen=True)
class TTSConfig:
    # eSpeak NG language voices and voice variants (espeak-ng-data/voices/!v), each item
    # drawing one of each: e.g. "en-gb-x-rp+f2". MBROLA voices need another program.
    voices: tuple[str, ...] = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029")
    variants: tuple[str, ...] = ("", "+m1", "+m3", "+m5", "+f1", "+f2", "+f4")
    pitch: tuple[int, int] = (35, 65)  # -p, 0-99 (eSpeak's default is 50), inclusive
    speed: tuple[int, int] = (140, 185)  # -s, words per minute (default 175), inclusive
    # Sentences read per clip, inclusive: 1-3 give clips of about 2-9 s, like real ones.
    # 2-5 sentences make 4-18 s clips: closer to read speech (LibriSpeech runs 10-35 s),
    # so clip length tells less and few clips are shorter than a detector chunk (4 s).
    sentences_per_clip: tuple[int, int] = (2, 5)
    timeout_s: float = 30.0  # per espeak-ng call

    def __post_init__(self) -> None:
        if not self.voices or not self.variants:
            raise ValueError("voices and variants must not be empty")
        for value in (*self.voices, *self.variants):
            if not all(c.isalnum() or c in "-+_" for c in value):
                raise ValueError(f"bad eSpeak voice or variant name {value!r}")
        lo, hi = self.pitch
        if not 0 <= lo <= hi <= 99:
            raise ValueError(f"pitch must be a range within 0-99, got {self.pitch}")
        lo, hi = self.speed
        if not 80 <= lo <= hi <= 450:
            raise ValueError(f"speed must be a range within 80-450 wpm, got {self.speed}")
        lo, hi = self.sentences_per_clip
        if not 1 <= lo <= hi <= len(SENTENCES):
            raise ValueError(f"sentences_per_clip must be within 1-{len(SENTENCES)}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TTSConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"sentences_per_clip": (1, 1)},  # for tests: short clips
}


@dataclass(frozen=True)
class Utterance:
    """What one item says and how: the arguments of its espeak-ng call."""

    text: str
    voice: str
    pitch: int
    speed: int


class EspeakTTS(VoiceGenerator):
    """Unconditional speech from text with eSpeak NG, its voice varied per item."""

    family = "tts"

    def __init__(self, name: str, config: TTSConfig) -> None:
        super().__init__(name, config)

    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Nothing to learn (0 steps); raises if espeak-ng is missing."""
        start = time.perf_counter()
        _require()
        self.fit_report = analysis_fit_report(start)
        return self.fit_report

    def utterance(self, seed: int) -> Utterance:
        """The text, voice, pitch and speed for an item seed."""
        cfg: TTSConfig = self.config
        rng = np.random.default_rng(seed)
        count = int(rng.integers(cfg.sentences_per_clip[0], cfg.sentences_per_clip[1] + 1))
        picks = rng.choice(len(SENTENCES), size=count, replace=False)
        voice = str(rng.choice(cfg.voices)) + str(rng.choice(cfg.variants))
        return Utterance(
            text=" ".join(SENTENCES[int(i)] for i in picks),
            voice=voice,
            pitch=int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1)),
            speed=int(rng.integers(cfg.speed[0], cfg.speed[1] + 1)),
        )

    def speak(self, utt: Utterance) -> np.ndarray:
        """One espeak-ng call: prepared speech, 16 kHz float32, like a real recording's."""
        cmd = [
            _require(),
            "--stdout",
            "--stdin",
            "-v",
            utt.voice,
            "-p",
            str(utt.pitch),
            "-s",
            str(utt.speed),
        ]
        try:
            done = subprocess.run(
                cmd,
                input=utt.text.encode(),
                capture_output=True,
                check=True,
                timeout=self.config.timeout_s,
            )
        except subprocess.CalledProcessError as exc:
            msg = exc.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"espeak-ng failed for voice {utt.voice!r}: {msg}") from None
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"espeak-ng took over {self.config.timeout_s:.0f} s for one clip"
            ) from None
        samples = decode_audio(done.stdout).samples
        return prepare_speech(samples).samples

    def generate(self, n: int, *, seed: int, source: Any | None = None) -> Samples:
        """``n`` clips; ``source`` is unused (text-to-speech copies no recording)."""
        _require()
        seeds = item_seeds(seed, n)
        return Samples(
            images=None,
            sources=[None] * n,
            seeds=seeds,
            audio=[self.speak(self.utterance(s)) for s in seeds],
            sample_rate=SAMPLE_RATE,
            segments=[None] * n,
        )


@register("tts_espeak", family="tts")
def tts_espeak(*, preset: str = "default", **overrides: Any) -> EspeakTTS:
    return EspeakTTS("tts_espeak", TTSConfig.preset(preset, **overrides))
