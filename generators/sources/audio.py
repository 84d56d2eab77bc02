"""Real speech: ``starter`` (the voice recordings Debian's alsa-utils installs) or a folder.

Every utterance is read through the one audio path (``detector.media.audio``):
decoded to 16 kHz mono, silence-trimmed and loudness-normalised. Generators and the
corpus builder only ever see prepared speech, so real and synthetic clips share it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.media.audio import SAMPLE_RATE, AudioLimits, decode_audio, prepare_speech
from detector.media.errors import MediaError
from generators.sources.base import MediaSource, Skipped

MIN_SECONDS = 0.5  # shorter clips (after trimming) hold too little speech to resynthesise
ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
# alsa-utils' recordings of a person reading the channel names (and one noise file).
_ALSA_VOICES = (
    "Front_Center.wav",
    "Front_Left.wav",
    "Front_Right.wav",
    "Rear_Center.wav",
    "Rear_Left.wav",
    "Rear_Right.wav",
    "Side_Left.wav",
    "Side_Right.wav",
)
ALSA_EXCLUDED = {"Noise.wav": "pink noise, not speech"}


@dataclass(frozen=True)
class Utterance:
    """One real recording: a stable id, where it came from, and how to load it."""

    id: str
    origin: str  # a path, for provenance
    license: str = ""

    def load(self) -> np.ndarray:
        """Prepared speech: ``(n,)`` float32 at 16 kHz, trimmed and normalised."""
        return _CACHE.get(self.origin)


@dataclass
class AudioSource(MediaSource[Utterance]):
    """A named set of real utterances. ``spec`` re-opens it (``starter`` or a folder)."""

    sample_rate: int = SAMPLE_RATE
    modality = "audio"

    def pick(self, n: int, *, seed: int) -> list[Utterance]:
        """``n`` utterances, cycling through a seeded order: every one is used before any
        is used twice (copy-synthesis of ``n`` items from a source)."""
        if not self.items:
            raise ValueError(f"real source {self.spec!r} has no usable speech")
        order = np.random.default_rng(seed).permutation(len(self.items))
        return [self.items[int(order[i % len(order)])] for i in range(n)]

    def total_seconds(self) -> float:
        return sum(len(it.load()) for it in self.items) / self.sample_rate


class _SpeechCache:
    """Prepared utterances shared by every source in the process, bounded in bytes."""

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, origin: str) -> np.ndarray:
        with self._lock:
            if origin in self._items:
                self._items.move_to_end(origin)
                return self._items[origin]
        y = prepare_speech(decode_audio(origin).samples).samples
        y.setflags(write=False)
        with self._lock:
            if origin not in self._items:
                self._items[origin] = y
                self._bytes += y.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _k, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes
        return y


_CACHE = _SpeechCache()


def _check(path: Path, rel: str, limits: AudioLimits | None) -> Skipped | None:
    try:
        decoded = decode_audio(path, limits=limits)
        prepared = prepare_speech(decoded.samples)
    except MediaError as exc:
        return Skipped(rel, exc.code, exc.message)
    except OSError as exc:
        return Skipped(rel, "corrupt_media", f"cannot read the file ({exc})")
    seconds = len(prepared.samples) / SAMPLE_RATE
    if seconds < MIN_SECONDS:
        return Skipped(rel, "too_short", f"{seconds:.2f} s of sound; at least {MIN_SECONDS} s")
    return None


def audio_folder_source(
    root: str | Path,
    *,
    limits: AudioLimits | None = None,
    on_file: Callable[[int, Path], None] | None = None,
) -> AudioSource:
    """Every decodable recording under ``root`` (by content), and why the rest were skipped."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"real-data folder {root} does not exist or is not a directory")
    items: list[Utterance] = []
    skipped: list[Skipped] = []
    paths = sorted(
        Path(d) / name for d, _dirs, files in os.walk(root, followlinks=False) for name in files
    )
    for i, path in enumerate(paths):
        if on_file is not None:
            on_file(i, path)
        rel = path.relative_to(root).as_posix()
        bad = _check(path, rel, limits)
        if bad is not None:
            skipped.append(bad)
            continue
        items.append(Utterance(id=rel, origin=str(path)))
    return AudioSource(spec=str(root), items=items, skipped=skipped)


def audio_starter_source(folder: Path = ALSA_SOUNDS) -> AudioSource:
    """The voice recordings alsa-utils installs (``apt-get install alsa-utils``), if present."""
    items: list[Utterance] = []
    skipped: list[Skipped] = []
    for name in _ALSA_VOICES:
        path = folder / name
        if not path.is_file():
            skipped.append(Skipped(str(path), "missing", "not installed (package alsa-utils)"))
            continue
        bad = _check(path, name, None)
        if bad is not None:
            skipped.append(bad)
            continue
        items.append(
            Utterance(id=f"starter:{name}", origin=str(path), license="GPL-2+ (alsa-utils)")
        )
    return AudioSource(spec="starter", items=items, skipped=skipped)
