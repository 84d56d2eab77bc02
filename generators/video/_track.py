"""Finding and following the face a swap replaces, in every frame of a real clip.

Faces come from the one face detector (``detector.media.faces``), every few frames, and
a ``BoxTracker`` smooths the main face's box over time; boxes in between are
interpolated, and runs of another face the tracker wandered onto are dropped. Eyes (for
an eye-to-eye alignment) come from OpenCV's eye cascade where the installed OpenCV has
it (4.x wheels).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from detector.media.faces import BoxTracker, FaceBox, detect_faces
from generators.image._tensor import item_seeds

if TYPE_CHECKING:
    from detector.media.video import VideoClip
    from generators.sources.video import VideoItem, VideoSource

Box = tuple[float, float, float, float]  # x, y, w, h in pixels
Eyes = tuple[tuple[float, float], tuple[float, float]]  # (left, right) centres, image left first
EYE_FACE_SIDE = 160  # faces are enlarged to about this width before looking for eyes


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


# A swapped clip must change the face in at least this share of its frames; a clip whose
# face the tracker follows in fewer (a face that fills the frame, or turns away) is passed
# over for the next clip of the source. A "synthetic" clip with few or no changed frames
# is a real clip with a wrong label: the video corpus before this rule held 27 such clips
# among its 220 swaps (`faceswap`, `ae_swap`), 10 of them changed in no frame at all.
MIN_CHANGED = 0.5


def changed_share(clip: VideoClip) -> float:
    """The share of a clip's frames in which a generator changed a face (its ``boxes``)."""
    boxes = clip.boxes or []
    return sum(map(bool, boxes)) / len(boxes) if boxes else 0.0


def swap_clips(
    name: str,
    source: VideoSource,
    n: int,
    *,
    seed: int,
    make: Callable[[VideoItem, int], VideoClip],
    min_changed: float = MIN_CHANGED,
) -> tuple[list[VideoItem], list[VideoClip], list[int]]:
    """``n`` swapped clips of ``source``: its clips in the seeded order of ``source.pick``
    (every clip used before any twice), each made by ``make(item, item_seed)``; a clip
    that changes fewer than ``min_changed`` of its frames is dropped and its source clip
    not used again. Returns the clips used, the swapped clips and their seeds; a
    ValueError when no clip of the source can be swapped."""
    seeds = item_seeds(seed, n)
    order = source.pick(len(source), seed=seed) if n else []
    used: list[VideoItem] = []
    videos: list[VideoClip] = []
    passed: set[str] = set()
    i = 0
    while len(videos) < n:
        if len(passed) == len(order):
            raise ValueError(
                f"{name}: no clip of {source.spec!r} has a face it could follow in "
                f"{min_changed:.0%} of the frames"
            )
        item = order[i % len(order)]
        i += 1
        if item.id in passed:
            continue
        clip = make(item, seeds[len(videos)])
        if changed_share(clip) < min_changed:
            passed.add(item.id)
            continue
        used.append(item)
        videos.append(clip)
    return used, videos, seeds


# --- finding the face ----------------------------------------------------------------------


class TrackingFields(Protocol):
    detect_side: int
    detect_every: int
    track_alpha: float
    max_gap: int


def check_tracking(config: TrackingFields) -> None:
    """Validate the tracking fields the swap configs share."""
    side, every = config.detect_side, config.detect_every
    if side < 32 or every < 1:
        raise ValueError(f"need detect_side >= 32 and detect_every >= 1, got {side}, {every}")
    alpha, gap = config.track_alpha, config.max_gap
    if not 0.0 < alpha <= 1.0 or gap < 0:
        raise ValueError(f"need 0 < track_alpha <= 1 and max_gap >= 0, got {alpha}, {gap}")


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


def identity_key(parent: str) -> int:
    """A stable 64-bit key for an identity (a parent video id): what checkpoints keep."""
    return int.from_bytes(hashlib.sha256(parent.encode()).digest()[:8], "little", signed=True)
