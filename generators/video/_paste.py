"""Shared steps of the face-swap generators: find and follow the face, put a new one in.

The pipeline every swap shares (Korshunova et al., "Fast face-swap using convolutional
neural networks", 2017, https://arxiv.org/abs/1611.09577, and the original "deepfakes"
scripts describe the same last steps): detect the face per frame and smooth its box over
time; bring the new face into the frame's geometry; match its colours to the real skin
(Reinhard et al., "Color transfer between images", 2001: mean and spread per channel in
LAB); blend it in under an elliptical mask, by Poisson editing (Perez et al., "Poisson
image editing", 2003, ``cv2.seamlessClone``) or a feathered alpha. Each paste reports the
box of the pixels it may have changed, which is what ``VideoClip.boxes`` records.
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Any

import cv2
import numpy as np

from detector.media.faces import BoxTracker, FaceBox, detect_faces

BLENDS = ("seamless", "mixed", "feather")  # Poisson (NORMAL_CLONE, MIXED_CLONE) or alpha
_CLONE_FLAGS = {"seamless": cv2.NORMAL_CLONE, "mixed": cv2.MIXED_CLONE}

Box = tuple[float, float, float, float]  # x, y, w, h in pixels
EYE_FACE_SIDE = 160  # faces are enlarged to about this width before looking for eyes
Eyes = tuple[tuple[float, float], tuple[float, float]]  # (left, right) centres, image left first


def check_video_source(name: str, source: Any) -> Any:
    """``source`` when it is a video source; a ValueError saying what is needed if not."""
    if source is None:
        raise ValueError(
            f"{name} changes real video: generate() needs `source`, a VideoSource of the "
            "clips to work from"
        )
    if getattr(source, "modality", None) != "video":
        raise ValueError(f"{name} is a video generator; it needs a video source, not {source!r}")
    if not len(source):
        raise ValueError(f"real source {source.spec!r} has no usable clips")
    return source


# --- finding the face ----------------------------------------------------------------------


def check_tracking(*, detect_side: int, detect_every: int, alpha: float, max_gap: int) -> None:
    """Validate the tracking fields the swap configs share."""
    if detect_side < 32 or detect_every < 1:
        raise ValueError(
            f"need detect_side >= 32 and detect_every >= 1, got {detect_side}, {detect_every}"
        )
    if not 0.0 < alpha <= 1.0 or max_gap < 0:
        raise ValueError(f"need 0 < track_alpha <= 1 and max_gap >= 0, got {alpha}, {max_gap}")


def track_faces(
    frames: np.ndarray, *, alpha: float, max_gap: int, every: int, work_side: int
) -> list[Box | None]:
    """The main face's smoothed box in each frame of ``(T, H, W, 3)``, ``None`` where it
    is lost (no detection for more than ``max_gap`` frames).

    Faces are detected (on a copy at most ``work_side`` on a side) in every ``every``-th
    frame and the last, followed by a ``BoxTracker``; the frames between two tracked
    detections get boxes interpolated linearly (the clip is whole: no need to wait for
    the next detection), those next to a lost one are left without. The tracker picks
    up another face when it loses one, so its output is cut into runs of one face each
    (:func:`main_face_runs`) and only the main face's are kept.
    """
    last = len(frames) - 1
    keys = [*range(0, last, every), last]
    tracker = BoxTracker(alpha=alpha, max_gap=math.ceil(max_gap / every))
    found: list[Box | None] = []
    scores: list[float] = []
    for t in keys:
        box = tracker.update(detect_faces(frames[t], max_faces=4, work_side=work_side))
        found.append(None if box is None else as_box(box))
        scores.append(0.0 if box is None else float(box.score))
    keep = main_face_runs(found, scores)
    found = [b if k else None for b, k in zip(found, keep, strict=True)]
    out: list[Box | None] = []
    for k in range(len(keys) - 1):
        (t0, t1), (p, q) = keys[k : k + 2], found[k : k + 2]
        out.append(p)
        for t in range(t0 + 1, t1):
            u = (t - t0) / (t1 - t0)
            out.append(None if p is None or q is None else _lerp(p, q, u))
    out.append(found[-1])
    return out


def main_face_runs(boxes: list[Box | None], scores: list[float]) -> list[bool]:
    """Which tracked boxes belong to the main face.

    A run is a stretch of boxes each overlapping the one before (one face). The main
    face's runs are the run with the largest total detection score, and the others whose
    mean score is at least half of its mean: a background pattern the detector keeps
    finding scores lower than a face, however long it lasts.
    """
    runs: list[list[int]] = []
    for i, box in enumerate(boxes):
        if box is None:
            continue
        prev = boxes[i - 1] if i else None
        if runs and prev is not None and _overlap(prev, box):
            runs[-1].append(i)
        else:
            runs.append([i])
    keep = [False] * len(boxes)
    if not runs:
        return keep
    main = max(runs, key=lambda r: sum(scores[i] for i in r))
    bar = 0.5 * float(np.mean([scores[i] for i in main]))
    for run in runs:
        if run is main or float(np.mean([scores[i] for i in run])) >= bar:
            for i in run:
                keep[i] = True
    return keep


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _lerp(a: Box, b: Box, u: float) -> Box:
    return (
        a[0] + u * (b[0] - a[0]),
        a[1] + u * (b[1] - a[1]),
        a[2] + u * (b[2] - a[2]),
        a[3] + u * (b[3] - a[3]),
    )


def main_face(rgb: np.ndarray, *, work_side: int) -> Box | None:
    """The largest face in a still frame among those the detector is at least half as
    sure of as of its surest (a large false detection in the background scores low)."""
    boxes = detect_faces(rgb, max_faces=4, work_side=work_side)
    if not boxes:
        return None
    sure = [b for b in boxes if b.score >= 0.5 * boxes[0].score] or boxes[:1]
    return as_box(max(sure, key=lambda b: b.w * b.h))


def as_box(box: FaceBox) -> Box:
    return float(box.x), float(box.y), float(box.w), float(box.h)


@functools.cache
def _eye_cascade() -> Any | None:
    # OpenCV 4.x wheels ship Haar cascades in cv2.data; OpenCV 5 dropped the cascade
    # classifier from the main module. Without it, alignment falls back to the face box.
    classifier = getattr(cv2, "CascadeClassifier", None)
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if classifier is None or not folder:
        return None
    cascade = classifier(folder + "haarcascade_eye.xml")
    return None if cascade.empty() else cascade


def eyes_available() -> bool:
    """Whether OpenCV's eye cascade can be loaded (eye alignment is possible)."""
    return _eye_cascade() is not None


def find_eyes(rgb: np.ndarray, box: Box) -> Eyes | None:
    """The two eye centres (image coordinates, left one first) inside the upper part of
    face ``box``, or ``None`` unless the eye cascade finds one in each half."""
    cascade = _eye_cascade()
    if cascade is None:
        return None
    x, y, w, h = (round(v) for v in box)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, rgb.shape[1]), min(y + round(0.6 * h), rgb.shape[0])  # eyes sit high
    if x1 - x0 < 16 or y1 - y0 < 10:
        return None
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    # Look at every face at one width: the cascade's window is 20 px, an eye about a
    # sixth of the face (small faces are enlarged, large ones need no more pixels).
    k = EYE_FACE_SIDE / w
    gray = cv2.resize(gray, (round(gray.shape[1] * k), round(gray.shape[0] * k)))
    gray = cv2.equalizeHist(gray)
    found = cascade.detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=3, minSize=(20, 20), maxSize=(64, 64)
    )
    centres = [
        (x0 + (ex + ew / 2) / k, y0 + (ey + eh / 2) / k, ew * eh) for ex, ey, ew, eh in found
    ]
    mid = x + w / 2
    left = [c for c in centres if c[0] < mid]
    right = [c for c in centres if c[0] >= mid]
    if not left or not right:
        return None
    le, re = max(left, key=lambda c: c[2]), max(right, key=lambda c: c[2])
    return (le[0], le[1]), (re[0], re[1])


def track_eyes(
    frames: np.ndarray, boxes: list[Box | None], *, window: int = 5, min_found: float = 0.25
) -> list[Eyes | None]:
    """Eye centres in every frame with a face box, steady enough to warp by.

    Per-frame detections jitter and come and go, and a warp that jumps between them
    flickers. So the eyes are kept relative to the tracked box, interpolated over the
    frames where they were not found, and averaged over ``window`` frames. All ``None``
    when they were found in fewer than ``min_found`` of the face's frames.
    """
    rel = np.full((len(frames), 4), np.nan)  # (T, 4): left x, y, right x, y as box fractions
    for t, box in enumerate(boxes):
        eyes = find_eyes(frames[t], box) if box is not None else None
        if box is not None and eyes is not None:
            x, y, w, h = box
            (lx, ly), (rx, ry) = eyes
            rel[t] = ((lx - x) / w, (ly - y) / h, (rx - x) / w, (ry - y) / h)
    found = np.flatnonzero(~np.isnan(rel[:, 0]))
    n_faces = sum(b is not None for b in boxes)
    if not len(found) or len(found) < min_found * n_faces:
        return [None] * len(frames)
    steps = np.arange(len(frames))
    pad = window // 2
    for j in range(4):
        track = np.interp(steps, found, rel[found, j])  # held flat past the ends
        padded = np.pad(track, pad, mode="edge")
        rel[:, j] = np.convolve(padded, np.ones(window) / window, mode="valid")
    return [
        None
        if box is None
        else (
            (box[0] + r[0] * box[2], box[1] + r[1] * box[3]),
            (box[0] + r[2] * box[2], box[1] + r[3] * box[3]),
        )
        for box, r in zip(boxes, rel, strict=True)
    ]


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


def identity_key(parent: str) -> int:
    """A stable 64-bit key for an identity (a parent video id): what checkpoints keep."""
    return int.from_bytes(hashlib.sha256(parent.encode()).digest()[:8], "little", signed=True)


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
