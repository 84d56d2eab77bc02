"""Face detection on real photos that installed packages carry, crops and tracking."""

from __future__ import annotations

import threading

import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from detector.media.faces import BoxTracker, FaceBox, detect_faces, face_backend, face_crop


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()  # 512x512, one face around x 175-270, y 65-165


@pytest.fixture(scope="module")
def grace() -> np.ndarray:
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))  # 512x600, face around x 160-370


def _centre(box: FaceBox) -> tuple[float, float]:
    return box.x + box.w / 2, box.y + box.h / 2


def test_one_face_where_it_is(astronaut: np.ndarray, grace: np.ndarray) -> None:
    assert face_backend() in ("opencv-haar", "lbp-numpy")
    for image, centre, side in [(astronaut, (222, 115), 100), (grace, (265, 215), 210)]:
        boxes = detect_faces(image)
        assert len(boxes) == 1, boxes
        (box,) = boxes
        cx, cy = _centre(box)
        assert abs(cx - centre[0]) < 25 and abs(cy - centre[1]) < 25
        assert 0.7 * side < box.w < 1.4 * side and box.score > 0
        assert box.to_list() == [box.x, box.y, box.w, box.h]


def test_full_resolution_boxes(astronaut: np.ndarray) -> None:
    """Detection runs on a small copy; boxes come back in the frame's own pixels."""
    big = np.asarray(Image.fromarray(astronaut).resize((1024, 1024)))
    (box,) = detect_faces(big, work_side=320)
    cx, cy = _centre(box)
    assert abs(cx - 2 * 222) < 50 and abs(cy - 2 * 115) < 50 and 140 < box.w < 280


def test_no_faces() -> None:
    rng = np.random.default_rng(0)
    assert detect_faces(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) == []
    assert detect_faces(np.full((120, 160, 3), 128, np.uint8)) == []
    assert detect_faces(skdata.coffee()) == []
    with pytest.raises(ValueError):
        detect_faces(np.zeros((32, 32), np.uint8))


def test_options(astronaut: np.ndarray) -> None:
    assert detect_faces(astronaut, max_faces=0) == []
    assert detect_faces(astronaut, min_size=0.5) == []  # the face is a fifth of the frame
    # Two faces side by side: sorted by score, capped by max_faces.
    pair = np.concatenate([astronaut[:, 100:356], astronaut[:, 100:356]], axis=1)
    boxes = detect_faces(pair)
    assert len(boxes) == 2 and boxes[0].score >= boxes[1].score
    assert len(detect_faces(pair, max_faces=1)) == 1


def test_square_and_crop(astronaut: np.ndarray) -> None:
    box = FaceBox(100, 100, 40, 60, 1.0)
    sq = box.square(0.25, 512, 512)
    assert sq.w == sq.h == 90 and _centre(sq) == _centre(box)
    corner = FaceBox(2, 500, 20, 10, 1.0).square(0.5, 512, 512)  # pushed back inside
    assert corner.w == 40 and (corner.x, corner.y) == (0, 472)
    huge = FaceBox(0, 0, 300, 300, 1.0).square(0.5, 320, 200)  # larger than the frame
    assert (huge.x, huge.y, huge.w, huge.h) == (50, 0, 200, 200)  # centred, inside
    (face,) = detect_faces(astronaut)
    crop = face_crop(astronaut, face, size=64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    assert face_crop(astronaut, face, size=300).shape == (300, 300, 3)  # upscaled
    edge = face_crop(astronaut, FaceBox(490, 490, 30, 30, 1.0), margin=0.3, size=32)
    assert edge.shape == (32, 32, 3)
    assert len(detect_faces(face_crop(astronaut, face, margin=0.5, size=160))) == 1


def test_threads_share_nothing(astronaut: np.ndarray) -> None:
    results: list[list[FaceBox]] = []

    def run() -> None:
        results.append(detect_faces(astronaut, work_side=256))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1] and len(results[0]) == 1


def test_tracker_smooths_and_holds() -> None:
    tracker = BoxTracker(alpha=0.5, max_gap=2)
    assert tracker.update([]) is None
    first = tracker.update([FaceBox(100, 100, 50, 50, 2.0), FaceBox(0, 0, 20, 20, 1.0)])
    assert first is not None and first.to_list() == [100, 100, 50, 50]
    # The nearest box is followed (not the surest), halfway at alpha 0.5.
    moved = tracker.update([FaceBox(300, 300, 40, 40, 9.0), FaceBox(110, 100, 50, 50, 1.0)])
    assert moved is not None and moved.to_list() == [105, 100, 50, 50]
    # A jittery detector is damped.
    xs = []
    for i in range(10):
        box = tracker.update([FaceBox(105 + (6 if i % 2 else -6), 100, 50, 50, 1.0)])
        assert box is not None
        xs.append(box.x)
    assert max(xs) - min(xs) <= 6
    # Missed detections: held for max_gap frames, then lost.
    held = tracker.update([])
    assert held is not None and tracker.update([]) == held
    assert tracker.update([]) is None
    # A new face starts a new track at once.
    again = tracker.update([FaceBox(10, 10, 30, 30, 1.0)])
    assert again is not None and again.to_list() == [10, 10, 30, 30]
    with pytest.raises(ValueError):
        BoxTracker(alpha=0.0)


def test_tracker_on_a_moving_face(astronaut: np.ndarray) -> None:
    """Real detections on a photo panned across five frames: the box follows the face."""
    tracker = BoxTracker()
    boxes = []
    for dx in range(0, 50, 10):
        frame = astronaut[:400, dx : dx + 400]
        boxes.append(tracker.update(detect_faces(frame)))
    assert all(b is not None for b in boxes)
    xs = [b.x for b in boxes if b is not None]
    assert xs == sorted(xs, reverse=True) and xs[0] - xs[-1] > 25  # moves left with the pan
