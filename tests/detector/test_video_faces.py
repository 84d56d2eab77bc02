"""Faces of sampled frames: detection on key frames, interpolation between, prefetching."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from skimage import data as skdata

from detector.data.faces import FaceCropConfig, frame_faces, iou
from detector.inference import video_faces
from detector.inference.video_faces import prefetch, stream_faces
from detector.media.faces import FaceBox, detect_face_near, detect_faces
from detector.media.video_reader import VideoFrame
from generators.sources.video import pan_zoom_clip

CROP = FaceCropConfig(size=64)


def _frames(pixels: np.ndarray, fps: float = 2.0) -> list[VideoFrame]:
    return [VideoFrame(index=i, t=i / fps, pixels=p) for i, p in enumerate(pixels)]


@pytest.fixture(scope="module")
def moving_face() -> list[VideoFrame]:
    """A slow camera move over the astronaut: one face, in every frame."""
    clip = pan_zoom_clip(skdata.astronaut()[:300, 60:360], seconds=4.5, fps=2.0, size=(240, 180),
                         zoom=(1.0, 1.3), seed=3)  # fmt: skip
    return _frames(clip)


def test_every_frame_is_frame_faces(moving_face: list[VideoFrame]) -> None:
    got = list(stream_faces(moving_face, CROP, every=1))
    assert [f.t for f in got] == [f.t for f in moving_face] and all(f.searched for f in got)
    for f, frame in zip(got, moving_face, strict=True):
        want = frame_faces(frame.pixels, CROP)
        assert [b for b, _c in f.faces] == [b for b, _c in want]
        assert all(np.array_equal(c, w) for (_b, c), (_v, w) in zip(f.faces, want, strict=True))
    with pytest.raises(ValueError, match="detect_every"):
        list(stream_faces(moving_face, CROP, every=0))


def test_key_frames_and_following(
    moving_face: list[VideoFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    searched: list[tuple[int, ...]] = []
    monkeypatch.setattr(video_faces, "_detect", _spy(video_faces._detect, searched))
    got = list(stream_faces(moving_face, CROP, every=4))
    assert [f.t for f in got] == [f.t for f in moving_face]
    # 9 frames: keys 0, 4 and 8 are searched whole; the face is followed in the others.
    assert [f.searched for f in got] == [True, False, False, False] * 2 + [True]
    assert len(searched) == 3
    exact = [frame_faces(f.pixels, CROP) for f in moving_face]
    for f, want in zip(got, exact, strict=True):
        assert len(f.faces) == len(want) == 1 and f.whole is None
        assert iou(f.faces[0][0], want[0][0]) > 0.7  # a followed face is where it is
        assert f.faces[0][1].shape == (64, 64, 3)


def test_lost_faces_are_searched_and_new_ones_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    face = skdata.astronaut()[:240, 120:360]  # the face fills the frame
    empty = np.full_like(face, 128)
    frames = _frames(np.stack([face, face, empty, empty, face, face, empty]))
    searched: list[tuple[int, ...]] = []
    monkeypatch.setattr(video_faces, "_detect", _spy(video_faces._detect, searched))
    got = list(stream_faces(frames, CROP, every=4))
    # 0: key, a face. 1: followed. 2: the face is lost, so the frame is searched (none).
    # 3: after a frame without faces, none (scored whole). 4: key, the face is back.
    # 5: followed. 6: lost, searched.
    assert [f.searched for f in got] == [True, False, True, False, True, False, True]
    assert [bool(f.faces) for f in got] == [True, True, False, False, True, True, False]
    assert len(searched) == 4
    assert all((f.whole is None) == bool(f.faces) for f in got)
    assert got[3].whole is not None and min(got[3].whole.shape[:2]) == CROP.size


def _spy(fn, seen: list):  # type: ignore[no-untyped-def]
    def wrapped(pixels, config):  # type: ignore[no-untyped-def]
        seen.append(pixels.shape)
        return fn(pixels, config)

    return wrapped


def test_prefetch_keeps_order_and_runs_ahead() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(20):
            produced.append(i)
            yield i

    reader = prefetch(items(), size=4)
    assert next(reader) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert 5 <= len(produced) <= 6  # ahead of the reader, bounded by the queue
    assert list(reader) == list(range(1, 20))


def test_prefetch_raises_where_the_producer_failed() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("decoder broke")

    got: list[int] = []
    with pytest.raises(RuntimeError, match="decoder broke"):
        for x in prefetch(items(), size=8):
            got.append(x)
    assert got == [1, 2]


def test_prefetch_stops_the_producer_when_the_reader_stops() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    before = threading.active_count()
    reader = prefetch(items(), size=2)
    assert next(reader) == 0
    reader.close()  # the reader leaves early
    assert len(produced) < 10 and threading.active_count() == before


def test_detect_face_near(moving_face: list[VideoFrame]) -> None:
    first, second = moving_face[0].pixels, moving_face[1].pixels
    box = detect_faces(first)[0]
    near = detect_face_near(second, box)
    assert near is not None and iou(near.to_list(), detect_faces(second)[0].to_list()) > 0.7
    assert detect_face_near(np.full_like(second, 128), box) is None  # gone: nothing there
    assert detect_face_near(second, FaceBox(0, 0, 4, 4, 1.0)) is None  # too small to search
