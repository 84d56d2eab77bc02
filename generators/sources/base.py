"""Real sources: real media with provenance, and the crops generators and corpora use."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, Self, TypeVar

import numpy as np
from PIL import Image

from detector.media import decode_image

# Crops are cut from the photo at its native resolution and at these downscales,
# so the corpus sees both fine sensor texture and whole-object structure.
DEFAULT_SCALES: tuple[float, ...] = (1.0, 0.5, 0.25)


@dataclass(frozen=True)
class RealItem:
    """One real photograph: a stable id, where it came from, and how to load it."""

    id: str
    origin: str  # a path or a package resource, for provenance
    license: str = ""

    def load(self) -> np.ndarray:
        """The photo as ``(H, W, 3)`` uint8 RGB, through the one image decoder."""
        return _load(self.origin)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=_HasId)


@dataclass(frozen=True)
class Skipped:
    path: str
    code: str  # a MediaError code, or "too_small"
    message: str


@dataclass(frozen=True)
class Crop:
    id: str  # "<item id>@<scale>:<x>,<y>"
    parent: str  # the RealItem id: splits are made by parent
    scale: float
    image: np.ndarray  # (size, size, 3) uint8


@dataclass
class MediaSource(Generic[ItemT]):
    """Real media with provenance: ``spec`` re-opens it (``starter`` or a folder path),
    ``items`` are usable, ``skipped`` says why the rest were not."""

    spec: str
    items: list[ItemT]
    skipped: list[Skipped] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [it.id for it in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"real source {self.spec!r} has duplicate item ids")

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, ids: Sequence[str]) -> Self:
        """The items whose ids are in ``ids`` (for example one split), in source order."""
        keep = set(ids)
        kept = [it for it in self.items if it.id in keep]
        return dataclasses.replace(self, items=kept, skipped=[])

    def skipped_summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.skipped:
            counts[s.code] = counts.get(s.code, 0) + 1
        return dict(sorted(counts.items()))


@dataclass
class RealSource(MediaSource[RealItem]):
    """A named set of real images."""

    def crops(
        self,
        n: int,
        *,
        size: int,
        seed: int,
        scales: Sequence[float] = DEFAULT_SCALES,
    ) -> Iterator[Crop]:
        """``n`` random square crops of ``size`` pixels, deterministic for a seed.

        Every photo contributes ``n // len(photos)`` crops (the first ``n % len`` of a
        seeded order one more), each at a random scale among those at which the photo
        still holds a ``size`` crop. A photo's crops come together, so each photo is
        decoded once per call however large the folder.
        """
        if not self.items:
            raise ValueError(f"real source {self.spec!r} has no usable images")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.items))
        per, extra = divmod(n, len(self.items))
        for rank, idx in enumerate(order):
            count = per + (rank < extra)
            if not count:
                continue
            item = self.items[int(idx)]
            full = _load(item.origin)
            photo_scales = [s for s in scales if _fits(full.shape[:2], s, size)]
            if not photo_scales:  # smaller than one crop at every scale: upscale to fit
                photo_scales = [_min_scale(full.shape[:2], size)]
            for _ in range(count):
                scale = float(photo_scales[int(rng.integers(len(photo_scales)))])
                img = _scaled(item.origin, scale)
                h, w = img.shape[:2]
                y = int(rng.integers(h - size + 1))
                x = int(rng.integers(w - size + 1))
                yield Crop(
                    id=f"{item.id}@{scale:g}:{x},{y}",
                    parent=item.id,
                    scale=scale,
                    image=img[y : y + size, x : x + size].copy(),
                )

    def crop_array(
        self, n: int, *, size: int, seed: int, scales: Sequence[float] = DEFAULT_SCALES
    ) -> np.ndarray:
        """``n`` crops stacked as ``(n, size, size, 3)`` uint8."""
        out = np.empty((n, size, size, 3), dtype=np.uint8)
        for i, crop in enumerate(self.crops(n, size=size, seed=seed, scales=scales)):
            out[i] = crop.image
        return out


class _PhotoCache:
    """Decoded photos and their rescaled copies, shared by every source (and subset) in
    the process, least recently used first out, bounded in bytes rather than in count:
    the 19 starter photos at three scales fit (~60 MB), a folder of 12 Mpx photos keeps
    its last few dozen."""

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, float], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, origin: str, scale: float) -> np.ndarray:
        key = (origin, scale)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        if scale == 1.0:
            pixels = decode_image(origin).pixels
        else:
            full = self.get(origin, 1.0)
            h, w = full.shape[:2]
            new = (max(1, round(w * scale)), max(1, round(h * scale)))
            pixels = np.asarray(Image.fromarray(full).resize(new, Image.Resampling.LANCZOS))
        pixels.setflags(write=False)  # shared: nobody may change a cached photo
        with self._lock:
            if key not in self._items:
                self._items[key] = pixels
                self._bytes += pixels.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _key, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes
        return pixels


_CACHE = _PhotoCache()


def _load(origin: str) -> np.ndarray:
    return _CACHE.get(origin, 1.0)


def _scaled(origin: str, scale: float) -> np.ndarray:
    return _CACHE.get(origin, scale)


def _fits(shape: tuple[int, int], scale: float, size: int) -> bool:
    return min(shape) * scale >= size


def _min_scale(shape: tuple[int, int], size: int) -> float:
    return size / min(shape) + 1e-6  # the epsilon keeps rounding at or above `size`
