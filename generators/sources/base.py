"""Real sources: real media with provenance, and the crops generators and corpora use."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
        return decode_image(self.origin).pixels


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
class RealSource:
    """A named set of real images. ``spec`` re-opens it (``starter`` or a folder path)."""

    spec: str
    items: list[RealItem]
    skipped: list[Skipped] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [it.id for it in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"real source {self.spec!r} has duplicate item ids")

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, ids: Sequence[str]) -> RealSource:
        """The items whose ids are in ``ids`` (for example one split), in source order."""
        keep = set(ids)
        return RealSource(spec=self.spec, items=[it for it in self.items if it.id in keep])

    def skipped_summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.skipped:
            counts[s.code] = counts.get(s.code, 0) + 1
        return dict(sorted(counts.items()))

    def crops(
        self,
        n: int,
        *,
        size: int,
        seed: int,
        scales: Sequence[float] = DEFAULT_SCALES,
    ) -> Iterator[Crop]:
        """``n`` random square crops of ``size`` pixels, deterministic for a seed.

        Crops go round-robin over the photos (so each contributes equally), each at a
        random scale among those at which the photo still holds a ``size`` crop.
        """
        if not self.items:
            raise ValueError(f"real source {self.spec!r} has no usable images")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.items))
        for i in range(n):
            item = self.items[int(order[i % len(order)])]
            photo_scales = [s for s in scales if _fits(self._shape(item.id), s, size)]
            if not photo_scales:  # smaller than one crop at every scale: upscale to fit
                photo_scales = [_min_scale(self._shape(item.id), size)]
            scale = float(photo_scales[int(rng.integers(len(photo_scales)))])
            img = self._scaled(item.id, scale)
            h, w = img.shape[:2]
            y = int(rng.integers(h - size + 1))
            x = int(rng.integers(w - size + 1))
            yield Crop(
                id=f"{item.id}@{scale:g}:{x},{y}",
                parent=item.id,
                scale=scale,
                image=np.ascontiguousarray(img[y : y + size, x : x + size]),
            )

    def crop_array(
        self, n: int, *, size: int, seed: int, scales: Sequence[float] = DEFAULT_SCALES
    ) -> np.ndarray:
        """``n`` crops stacked as ``(n, size, size, 3)`` uint8."""
        out = np.empty((n, size, size, 3), dtype=np.uint8)
        for i, crop in enumerate(self.crops(n, size=size, seed=seed, scales=scales)):
            out[i] = crop.image
        return out

    # Photos are decoded once and kept (each scale too), bounded for large folders.
    @functools.lru_cache(maxsize=256)  # noqa: B019 - the source lives as long as its cache
    def _scaled(self, item_id: str, scale: float) -> np.ndarray:
        full = self._full(item_id)
        if scale == 1.0:
            return full
        h, w = full.shape[:2]
        new = (max(1, round(w * scale)), max(1, round(h * scale)))
        return np.asarray(Image.fromarray(full).resize(new, Image.Resampling.LANCZOS))

    @functools.lru_cache(maxsize=64)  # noqa: B019
    def _full(self, item_id: str) -> np.ndarray:
        return self._by_id()[item_id].load()

    def _shape(self, item_id: str) -> tuple[int, int]:
        return self._full(item_id).shape[:2]  # type: ignore[return-value]

    @functools.cache  # noqa: B019
    def _by_id(self) -> dict[str, RealItem]:
        return {it.id: it for it in self.items}

    def __hash__(self) -> int:  # lru_cache keys on self
        return id(self)


def _fits(shape: tuple[int, int], scale: float, size: int) -> bool:
    return min(shape) * scale >= size


def _min_scale(shape: tuple[int, int], size: int) -> float:
    return size / min(shape) + 1e-6  # the epsilon keeps rounding at or above `size`


ProgressFn = Callable[[int, int], None]
