"""A grid of model-sized crops over an image: large images are scored on crops, not resized."""

from __future__ import annotations

import math

import numpy as np

from detector.data.augment import pad_to


def _even(n: int) -> int:
    return n - n % 2


def _starts(length: int, size: int, count: int) -> list[int]:
    """Even offsets: a crop keeps the image's 2x2 pixel grid (where up-sampling leaves its
    trace) in the same phase."""
    if count <= 1 or length <= size:
        return [max(0, _even((length - size) // 2))]
    return [_even(round(i * (length - size) / (count - 1))) for i in range(count)]


def grid_boxes(
    height: int, width: int, size: int, *, max_crops: int = 16
) -> list[tuple[int, int, int, int]]:
    """``(x, y, w, h)`` boxes of ``size`` squares covering the image, evenly spread.

    Crops overlap by half (``ceil(2L / size) - 1`` per axis, so a 64 px side gets 3
    crops of 32), which averages out where a crop boundary falls; the count is
    capped so that at most ``max_crops`` are taken, spread evenly over the image.
    Images smaller than ``size`` give one box (the image is padded to it).
    """
    ny, nx = (max(1, math.ceil(2 * n / size) - 1) for n in (height, width))
    while ny * nx > max_crops:
        if ny >= nx:
            ny -= 1
        else:
            nx -= 1
    return [
        (x, y, min(size, width), min(size, height))
        for y in _starts(height, size, ny)
        for x in _starts(width, size, nx)
    ]


def grid_crops(
    pixels: np.ndarray, size: int, *, max_crops: int = 16
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """``(N, size, size, 3)`` crops and their boxes in the original image."""
    h, w = pixels.shape[:2]
    boxes = grid_boxes(h, w, size, max_crops=max_crops)
    padded = pad_to(pixels, size)
    crops = np.stack([padded[y : y + size, x : x + size] for x, y, _w, _h in boxes])
    return crops, boxes
