"""Putting a new face into a real frame: geometry, colour and blending.

The last steps every swap shares (Korshunova et al., "Fast face-swap using convolutional
neural networks", 2017, https://arxiv.org/abs/1611.09577, and the original "deepfakes"
scripts take the same ones): bring the new face into the frame's geometry; match its
colours to the real skin (Reinhard et al., "Color transfer between images", 2001: mean
and spread per channel in LAB); blend it in under an elliptical mask, by Poisson editing
(Perez et al., "Poisson image editing", 2003, ``cv2.seamlessClone``) or a feathered
alpha. Each paste reports the box of the pixels it may have changed, which is what
``VideoClip.boxes`` records.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from generators.video._track import Box, Eyes

BLENDS = ("seamless", "mixed", "feather")  # Poisson (NORMAL_CLONE, MIXED_CLONE) or alpha
_CLONE_FLAGS = {"seamless": cv2.NORMAL_CLONE, "mixed": cv2.MIXED_CLONE}


# --- geometry ------------------------------------------------------------------------------


def box_affine(src: Box, dst: Box) -> np.ndarray:
    """The ``(2, 3)`` affine map taking box ``src`` onto box ``dst`` (scale and shift)."""
    sx, sy = dst[2] / max(src[2], 1e-6), dst[3] / max(src[3], 1e-6)
    return np.array([[sx, 0.0, dst[0] - sx * src[0]], [0.0, sy, dst[1] - sy * src[1]]])


def eyes_similarity(src: Eyes, dst: Eyes) -> np.ndarray:
    """The ``(2, 3)`` similarity (rotation, uniform scale, shift) taking the eye pair
    ``src`` exactly onto ``dst``."""
    (a1, a2), (b1, b2) = (complex(*src[0]), complex(*src[1])), (complex(*dst[0]), complex(*dst[1]))
    k = (b2 - b1) / (a2 - a1 if a2 != a1 else 1e-6)  # rotation and scale as one complex number
    t = b1 - k * a1
    return np.array([[k.real, -k.imag, t.real], [k.imag, k.real, t.imag]])


def plausible_eye_map(m: np.ndarray, box_map: np.ndarray, *, tolerance: float = 0.35) -> bool:
    """Whether an eye-based map stays near the box-based one: similar scale, little tilt
    (a false eye detection would throw the face across the frame)."""
    scale = math.hypot(m[0, 0], m[1, 0])
    box_scale = math.sqrt(abs(box_map[0, 0] * box_map[1, 1]))
    angle = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    return abs(scale / max(box_scale, 1e-6) - 1) < tolerance and abs(angle) < 25


def square_crop(rgb: np.ndarray, box: Box, *, margin: float, size: int) -> tuple[np.ndarray, Box]:
    """A ``(size, size, 3)`` crop of the square around face ``box`` grown by ``margin`` of
    its side on every side (edges mirrored where it leaves the frame), and the face box in
    the crop's coordinates: the form both swaps keep faces in."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    left, top = x + w / 2 - side / 2, y + h / 2 - side / 2
    k = size / side
    m = np.array([[k, 0.0, -k * left], [0.0, k, -k * top]])
    crop = cv2.warpAffine(
        rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return crop, (k * (x - left), k * (y - top), k * w, k * h)


def warp_into(face: np.ndarray, m: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """``face`` moved by the ``(2, 3)`` map ``m`` (face -> frame coordinates) and cut to
    the frame region ``roi`` = ``(x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = roi
    shifted = m.copy()
    shifted[:, 2] -= (x0, y0)
    return cv2.warpAffine(
        face, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def roi_around(box: Box, *, pad: float, width: int, height: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: ``box`` grown by ``pad`` of its size on every side, inside the
    frame. The region every paste works in (cheaper than whole frames)."""
    x, y, w, h = box
    x0, y0 = max(0, math.floor(x - pad * w)), max(0, math.floor(y - pad * h))
    x1, y1 = min(width, math.ceil(x + w + pad * w)), min(height, math.ceil(y + h + pad * h))
    return x0, y0, x1, y1


def ellipse_mask(shape: tuple[int, int], box: Box, *, shrink: float, feather: float) -> np.ndarray:
    """``(h, w)`` float32 in [0, 1]: an ellipse inscribed in ``box`` (in the mask's own
    coordinates), its axes scaled by ``shrink``, its edge blurred over ``feather`` of the
    box size (0: a hard edge)."""
    x, y, w, h = box
    mask = np.zeros(shape, dtype=np.uint8)
    centre = (round(x + w / 2), round(y + h / 2))
    axes = (max(1, round(w / 2 * shrink)), max(1, round(h / 2 * shrink)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, thickness=-1)
    if feather <= 0:
        return mask.astype(np.float32) / 255.0
    sigma = max(0.5, feather * min(w, h) / 2)
    # Blur an eroded ellipse so the soft edge stays about on the hard one.
    k = max(1, round(sigma))
    eroded = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1,) * 2))
    soft: np.ndarray = cv2.GaussianBlur(eroded.astype(np.float32) / 255.0, (0, 0), sigma)
    return soft


# --- colour and blending ---------------------------------------------------------------------


def match_colours(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``face`` (uint8 RGB) with the mean and standard deviation of each LAB channel inside
    ``mask`` (> 0.5) moved to those of ``target`` over the same pixels."""
    inside = mask > 0.5
    if inside.sum() < 16:
        return face
    src = cv2.cvtColor(face, cv2.COLOR_RGB2LAB).astype(np.float32)
    dst = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    s, d = src[inside], dst[inside]  # (n, 3)
    scale = (d.std(0) + 1e-3) / (s.std(0) + 1e-3)
    scale = np.clip(scale, 0.4, 2.5)  # a flat source patch would blow up otherwise
    out = (src - s.mean(0)) * scale + d.mean(0)
    return cv2.cvtColor(np.clip(out, 0, 255).round().astype(np.uint8), cv2.COLOR_LAB2RGB)


def paste(
    frame: np.ndarray,
    face: np.ndarray,
    alpha: np.ndarray,
    *,
    origin: tuple[int, int],
    blend: str,
) -> tuple[np.ndarray, list[int] | None]:
    """``face`` (``(h, w, 3)`` uint8, aligned with ``frame`` at ``origin`` = ``(x0, y0)``)
    blended into a copy of ``frame`` under ``alpha`` (``(h, w)`` in [0, 1]).

    Returns the new frame and the ``[x, y, w, h]`` box outside which no pixel changed
    (``None``, and the frame unchanged, when the mask is empty).
    """
    x0, y0 = origin
    h, w = alpha.shape
    alpha = alpha.copy()
    # Keep the mask off the frame's edge: seamlessClone needs a border around it.
    H, W = frame.shape[:2]
    if y0 == 0:
        alpha[:2] = 0
    if x0 == 0:
        alpha[:, :2] = 0
    if y0 + h >= H - 1:
        alpha[max(0, H - 2 - y0) :] = 0
    if x0 + w >= W - 1:
        alpha[:, max(0, W - 2 - x0) :] = 0
    out = frame.copy()
    # Poisson blending needs a hard mask; alpha changes every pixel it touches at all.
    support = alpha > 0.5 / 255 if blend == "feather" else alpha >= 0.5
    if support.sum() < 16:
        return out, None
    bx, by, bw, bh = cv2.boundingRect(support.astype(np.uint8))
    if blend == "feather":
        region = out[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
        a = alpha[..., None]
        out[y0 : y0 + h, x0 : x0 + w] = np.clip(
            a * face.astype(np.float32) + (1 - a) * region, 0, 255
        ).round()
    else:
        mask = support.astype(np.uint8) * 255
        # seamlessClone centres the mask's bounding box on `centre`: put it back in place.
        centre = (x0 + bx + bw // 2, y0 + by + bh // 2)
        out = cv2.seamlessClone(
            np.ascontiguousarray(face), frame, mask, centre, _CLONE_FLAGS[blend]
        )
    return out, [x0 + bx, y0 + by, bw, bh]


def swap_region(
    frame: np.ndarray,
    face: np.ndarray,
    box: Box,
    *,
    origin: tuple[int, int],
    blend: str,
    colour: bool,
    shrink: float,
    feather: float,
) -> tuple[np.ndarray, list[int] | None]:
    """The last steps of every swap: an elliptical mask on face ``box`` (frame
    coordinates) over ``face`` (aligned with ``frame`` at ``origin``), colour matching to
    the real skin under it, then the blend. Returns what :func:`paste` does."""
    x0, y0 = origin
    h, w = face.shape[:2]
    local = (box[0] - x0, box[1] - y0, box[2], box[3])
    # Poisson blending needs a hard edge: the gradient field does the softening.
    alpha = ellipse_mask((h, w), local, shrink=shrink, feather=feather if blend == "feather" else 0)
    if colour:
        face = match_colours(face, frame[y0 : y0 + h, x0 : x0 + w], alpha)
    return paste(frame, face, alpha, origin=origin, blend=blend)
