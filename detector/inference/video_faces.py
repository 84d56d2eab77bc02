"""The faces of a stream of sampled frames, ready for the face model.

Searching a whole frame for faces (OpenCV's Haar cascade) costs more than decoding it
and more than the face model, so a scan searches whole frames only on every
``detect_every``-th sampled frame (the *key* frames) and follows the faces it found
between them: in the next frame each face is looked for only around where it was and
at about its size (:func:`detector.media.faces.detect_face_near`, a small fraction of
the cost). A face that cannot be followed (a cut, a turn away) makes that frame a key
frame. A frame after a key frame without faces has none either (it is scored whole):
a face that comes into view is found at the next key frame, at most
``detect_every - 1`` sampled frames later.

The work is done on a background thread (:func:`prefetch`): decoding, detection and
cropping release the GIL, so they run while the face model scores the previous batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from detector.data.faces import FaceCropConfig
from detector.media.faces import FaceBox, detect_face_near, detect_faces, face_crop
from detector.media.video_reader import VideoFrame

T = TypeVar("T")


@dataclass
class FrameFaces:
    """One sampled frame, cut for the model: its faces (box and crop, surest first), or
    the whole frame (``whole``) when it has none."""

    t: float
    faces: list[tuple[list[int], np.ndarray]]
    whole: np.ndarray | None
    searched: bool  # the whole frame was searched for faces (not followed from before)


def whole_frame(pixels: np.ndarray, size: int) -> np.ndarray:
    """The frame resized so its shorter side is ``size`` (faces and frames at one scale)."""
    h, w = pixels.shape[:2]
    s = size / min(h, w)
    new = (max(size, round(w * s)), max(size, round(h * s)))
    return np.asarray(Image.fromarray(pixels).resize(new, Image.Resampling.BILINEAR))


def _detect(pixels: np.ndarray, config: FaceCropConfig) -> list[FaceBox]:
    return detect_faces(pixels, max_faces=config.max_faces, min_size=config.min_face)


def _cut(
    frame: VideoFrame, boxes: list[FaceBox], config: FaceCropConfig, searched: bool
) -> FrameFaces:
    pixels = frame.pixels
    if not boxes:
        return FrameFaces(frame.t, [], whole_frame(pixels, config.size), searched)
    faces = [
        (b.to_list(), face_crop(pixels, b, margin=config.margin, size=config.size)) for b in boxes
    ]
    return FrameFaces(frame.t, faces, None, searched)


def stream_faces(
    frames: Iterable[VideoFrame], config: FaceCropConfig, *, every: int = 1
) -> Iterator[FrameFaces]:
    """The frames of ``frames`` in order, each with its faces cut: searched in the
    whole frame on every ``every``-th frame, followed from the frame before otherwise."""
    if every < 1:
        raise ValueError(f"detect_every must be at least 1, got {every}")
    last: list[FaceBox] = []
    for i, frame in enumerate(frames):
        followed = None if i % every == 0 else _follow(frame.pixels, last)
        searched = followed is None
        boxes = _detect(frame.pixels, config) if searched else followed
        assert boxes is not None
        yield _cut(frame, boxes, config, searched)
        last = boxes


def _follow(pixels: np.ndarray, last: list[FaceBox]) -> list[FaceBox] | None:
    """The faces of the frame before, followed into this one; ``None`` when one of them
    is lost (the frame is then searched whole)."""
    found = []
    for box in last:
        near = detect_face_near(pixels, box)
        if near is None:
            return None
        found.append(near)
    return found


_DONE = object()


def prefetch(items: Iterator[T], *, size: int) -> Iterator[T]:
    """``items``, produced on a background thread up to ``size`` ahead of the reader.

    An exception in the producer is raised in the reader, where the item it stopped at
    would have come; a reader that stops early stops the producer."""
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the reader, which raises it
            put(_Raised(exc))

    thread = threading.Thread(target=run, name="synthguard-frames", daemon=True)
    thread.start()
    try:
        while True:
            value = q.get()
            if value is _DONE:
                return
            if isinstance(value, _Raised):
                raise value.exc
            yield value
    finally:
        stop.set()
        thread.join()


@dataclass
class _Raised:
    exc: BaseException
