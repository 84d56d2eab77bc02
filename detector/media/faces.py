"""Face detection, crops and temporal tracking for video frames.

Detection is a boosted cascade, run on a copy of the frame downscaled to ``work_side``
(fast) with the boxes mapped back to full resolution:

* OpenCV's bundled Haar cascade (``haarcascade_frontalface_default.xml``,
  ``detectMultiScale3`` for a per-face score) where the installed OpenCV has it (4.x);
* otherwise the frontal-face LBP cascade that scikit-image installs
  (``lbpcascade_frontalface_opencv.xml``, trained with OpenCV), evaluated here in numpy
  exactly as OpenCV's ``CascadeClassifier`` does (Liao et al., "Learning Multi-scale
  Block Local Binary Patterns for Face Recognition", 2007): OpenCV 5 wheels no longer
  ship the cascade classifier.

:func:`face_backend` says which one runs. Both are deterministic; they do not give
identical boxes, so a corpus should be built and scanned with the same one.
"""

from __future__ import annotations

import functools
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

_HAAR = "haarcascade_frontalface_default.xml"
_SCALE_STEP = 1.1  # between the window sizes tried (OpenCV's default scaleFactor)
_MIN_NEIGHBORS = 3  # overlapping detections needed to keep a face (OpenCV's default)
_GROUP_EPS = 0.2  # how close two detections must be to count as one face
# The Haar cascade fires more readily (flags, helmets): more neighbours and a floor on its
# level weight keep those out (true faces of the test photos weigh 4-8, false ones < 1).
_HAAR_NEIGHBORS = 5
_HAAR_MIN_SCORE = 1.0


@dataclass(frozen=True)
class FaceBox:
    x: int
    y: int
    w: int
    h: int
    score: float  # the cascade's confidence; higher is surer (see face_backend)

    def to_list(self) -> list[int]:
        """``[x, y, w, h]``."""
        return [self.x, self.y, self.w, self.h]

    def square(self, margin: float, width: int, height: int) -> FaceBox:
        """A square around the face, its side grown by ``margin`` of the face's side on
        each side, shifted (then clipped) to stay inside a ``width`` x ``height`` frame."""
        side = max(self.w, self.h) * (1 + 2 * margin)
        side = max(1, min(round(side), width, height))
        cx, cy = self.x + self.w / 2, self.y + self.h / 2
        x = min(max(round(cx - side / 2), 0), width - side)
        y = min(max(round(cy - side / 2), 0), height - side)
        return FaceBox(x, y, side, side, self.score)


def face_backend() -> str:
    """``"opencv-haar"`` or ``"lbp-numpy"``: which detector :func:`detect_faces` uses."""
    return "opencv-haar" if _haar_path() is not None else "lbp-numpy"


def detect_faces(
    rgb: np.ndarray, *, max_faces: int = 8, min_size: float = 0.06, work_side: int = 480
) -> list[FaceBox]:
    """Frontal faces in an ``(H, W, 3)`` uint8 RGB frame, surest first.

    ``min_size``: the smallest face side, as a fraction of the frame's shorter side.
    Detection runs on a copy whose longer side is at most ``work_side``.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, not shape {rgb.shape}")
    height, width = rgb.shape[:2]
    scale = min(1.0, work_side / max(height, width))
    gray = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        size = max(1, round(width * scale)), max(1, round(height * scale))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)  # the cascades expect a normalised contrast
    min_side = max(1, round(min_size * min(gray.shape)))
    raw = _detect_haar(gray, min_side) if _haar_path() else _lbp().detect(gray, min_side)
    boxes = []
    for x, y, w, h, score in raw:
        x0, y0 = round(x / scale), round(y / scale)
        x1, y1 = min(width, round((x + w) / scale)), min(height, round((y + h) / scale))
        boxes.append(FaceBox(x0, y0, x1 - x0, y1 - y0, float(score)))
    boxes.sort(key=lambda b: (-b.score, b.y, b.x))
    return boxes[:max_faces]


def detect_face_near(
    rgb: np.ndarray, box: FaceBox, *, reach: float = 0.5, work_face: int = 64
) -> FaceBox | None:
    """The face that ``box`` (from a frame just before) moved to: searched only around it
    (``reach`` of its side each way) and only at 0.6-1.6 times its size, on a copy
    scaled so the face is about ``work_face`` pixels. A small fraction of a whole-frame
    search; ``None`` when no face overlaps the old box.

    On the 24 talking-head videos of ``../shared/data/real_video/faces`` (2 frames a
    second), following each searched face into the next frame lost 16 of 473 at 48
    pixels, 9 at 64 and 8 at 80, and the followed box overlapped the searched one at a
    mean IoU of 0.864, 0.948 and 0.951; on ``bench/video_scan``'s clip (a face 630
    pixels high in a 720p frame) 48 pixels lost 15 of 119, 64 none."""
    height, width = rgb.shape[:2]
    side = max(box.w, box.h)
    pad = round(reach * side)
    x0, y0 = max(0, box.x - pad), max(0, box.y - pad)
    x1, y1 = min(width, box.x + box.w + pad), min(height, box.y + box.h + pad)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    scale = min(1.0, work_face / side)
    roi = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1], dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        size = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
        roi = cv2.resize(roi, size, interpolation=cv2.INTER_AREA)
    roi = cv2.equalizeHist(roi)
    lo, hi = max(1, round(0.6 * side * scale)), round(1.6 * side * scale)
    raw = _detect_haar(roi, lo, hi) if _haar_path() else _lbp().detect(roi, lo)
    found = [
        FaceBox(
            x0 + round(x / scale),
            y0 + round(y / scale),
            min(width - x0, round(w / scale)),
            min(height - y0, round(h / scale)),
            float(score),
        )
        for x, y, w, h, score in raw
        if w <= hi
    ]
    old = np.array(box.to_list(), float)
    best = max(found, key=lambda b: (_iou(old, b), b.score), default=None)
    return best if best is not None and _iou(old, best) > 0.0 else None


def face_crop(rgb: np.ndarray, box: FaceBox, *, margin: float = 0.3, size: int = 224) -> np.ndarray:
    """A ``(size, size, 3)`` uint8 square crop around ``box`` with ``margin``."""
    height, width = rgb.shape[:2]
    sq = box.square(margin, width, height)
    crop = rgb[sq.y : sq.y + sq.h, sq.x : sq.x + sq.w]
    interp = cv2.INTER_AREA if sq.w > size else cv2.INTER_LINEAR
    return np.ascontiguousarray(
        cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interp)
    )


class BoxTracker:
    """One face's box across frames: follows the detection nearest the last box (IoU),
    smooths x, y, w, h exponentially (``alpha``: the weight of the new detection), and
    holds the last box through up to ``max_gap`` frames without a detection."""

    def __init__(self, alpha: float = 0.6, max_gap: int = 5) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], not {alpha}")
        if max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, not {max_gap}")
        self.alpha, self.max_gap = alpha, max_gap
        self._box: np.ndarray | None = None  # x, y, w, h as floats
        self._score = 0.0
        self._missed = 0

    def reset(self) -> None:
        self._box, self._missed = None, 0

    def update(self, boxes: list[FaceBox]) -> FaceBox | None:
        """The face's box in this frame given its detections (surest first), or ``None``
        when there is no face to follow."""
        if self._box is not None:
            prev = self._box
            near = max(boxes, key=lambda b: _iou(prev, b), default=None)
            if near is not None and _iou(prev, near) > 0.0:
                self._box = (1 - self.alpha) * prev + self.alpha * np.array(near.to_list(), float)
                self._score, self._missed = near.score, 0
                return self._current()
            self._missed += 1
            if self._missed <= self.max_gap:
                return self._current()  # held: a missed detection or a brief occlusion
            self._box = None
        if not boxes:
            return None
        best = boxes[0]  # a fresh start: the surest face
        self._box, self._score, self._missed = np.array(best.to_list(), float), best.score, 0
        return self._current()

    def _current(self) -> FaceBox:
        assert self._box is not None
        x, y, w, h = (round(v) for v in self._box)
        return FaceBox(x, y, w, h, self._score)


def _iou(a: np.ndarray, b: FaceBox) -> float:
    ax, ay, aw, ah = a
    ix = max(0.0, min(ax + aw, b.x + b.w) - max(ax, b.x))
    iy = max(0.0, min(ay + ah, b.y + b.h) - max(ay, b.y))
    inter = ix * iy
    union = aw * ah + b.w * b.h - inter
    return float(inter / union) if union > 0 else 0.0


# --- OpenCV's Haar cascade (OpenCV 4.x) ---------------------------------------------------


@functools.cache
def _haar_path() -> str | None:
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not hasattr(cv2, "CascadeClassifier") or not folder or not (Path(folder) / _HAAR).is_file():
        return None
    return str(Path(folder) / _HAAR)


_LOCAL = threading.local()  # cv2 classifiers are not thread-safe: one per thread


def _detect_haar(
    gray: np.ndarray, min_side: int, max_side: int = 0
) -> list[tuple[int, int, int, int, float]]:
    cascade = getattr(_LOCAL, "haar", None)
    if cascade is None:
        cascade = _LOCAL.haar = cv2.CascadeClassifier(_haar_path())  # type: ignore[attr-defined]
    rects, _levels, weights = cascade.detectMultiScale3(
        gray, scaleFactor=_SCALE_STEP, minNeighbors=_HAAR_NEIGHBORS,
        minSize=(min_side, min_side), maxSize=(max_side, max_side), outputRejectLevels=True,
    )  # fmt: skip
    return [
        (int(x), int(y), int(w), int(h), float(s))
        for (x, y, w, h), s in zip(rects, np.ravel(weights), strict=False)
        if s >= _HAAR_MIN_SCORE
    ]


# --- the LBP cascade in numpy -------------------------------------------------------------


def _lbp_path() -> Path:
    from skimage import data

    return Path(data.lbp_frontal_face_cascade_filename())


@functools.cache
def _lbp() -> _LBPCascade:
    return _LBPCascade(_lbp_path())


class _LBPCascade:
    """An OpenCV LBP cascade (``featureType`` LBP, stumps over 256-way categories),
    scanned over an image pyramid with every window evaluated at once per scale."""

    def __init__(self, path: Path) -> None:
        root = ET.parse(path).getroot().find("cascade")
        assert root is not None and root.findtext("featureType") == "LBP"
        self.win_h, self.win_w = int(root.findtext("height") or 0), int(root.findtext("width") or 0)
        rects = [
            [int(v) for v in (f.findtext("rect") or "").split()]
            for f in root.find("features") or []
        ]
        self.rects = np.array(rects, np.int64)  # (n_features, 4): x, y, cell w, cell h
        self.stages: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
        for stage in root.find("stages") or []:
            feats, subsets, leaves = [], [], []
            for weak in stage.find("weakClassifiers") or []:
                node = [int(v) for v in (weak.findtext("internalNodes") or "").split()]
                feats.append(node[2])
                subsets.append([v & 0xFFFFFFFF for v in node[3:11]])
                leaves.append([float(v) for v in (weak.findtext("leafValues") or "").split()])
            self.stages.append(
                (
                    float(stage.findtext("stageThreshold") or 0),
                    np.array(feats, np.int64),
                    np.array(subsets, np.uint32),
                    np.array(leaves, np.float64),
                )
            )
        self._offsets: dict[int, list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]] = {}
        codes = np.arange(256)
        self._tables: list[np.ndarray] = []  # per stage: each weak's leaf value for each code
        for _t, _feats, words, values in self.stages:
            bits = (words[:, codes >> 5] >> (codes & 31).astype(np.uint32)) & 1
            self._tables.append(np.where(bits == 1, values[:, :1], values[:, 1:]))  # (weak, 256)

    def detect(self, gray: np.ndarray, min_side: int) -> list[tuple[int, int, int, int, float]]:
        height, width = gray.shape
        found: list[tuple[float, float, float, float, float]] = []
        factor = max(1.0, min_side / self.win_w)
        while self.win_w * factor <= width and self.win_h * factor <= height:
            size = round(width / factor), round(height / factor)
            small = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR) if factor > 1 else gray
            step = 2 if factor <= 2 else 1  # as OpenCV: finer steps at the large scales
            for x, y, score in self._scan(small, step):
                found.append(
                    (x * factor, y * factor, self.win_w * factor, self.win_h * factor, score)
                )
            factor *= _SCALE_STEP
        return _group(found, _MIN_NEIGHBORS, _GROUP_EPS)

    def _scan(self, img: np.ndarray, step: int) -> list[tuple[int, int, float]]:
        """Every window of ``img`` (every ``step`` pixels) through the stages; the
        survivors with their margin over the last stage's threshold.

        The first stages see every window: they run on whole-grid slices of the integral
        image. The few windows they pass are then gathered one by one.
        """
        h, w = img.shape
        ii = np.zeros((h + 1, w + 1), np.int32)  # 480 x 480 x 255 fits in 32 bits
        ii[1:, 1:] = img.astype(np.int32).cumsum(0).cumsum(1)
        ny, nx = (h - self.win_h) // step + 1, (w - self.win_w) // step + 1
        stages = self._stages_for(w + 1)
        alive = np.ones((ny, nx), bool)
        total = np.zeros((ny, nx))
        for threshold, _corners, tables, feats in stages[:_DENSE_STAGES]:
            total[:] = 0.0
            for f, table in zip(feats, tables, strict=True):
                total += table[self._dense_code(ii, self.rects[f], ny, nx, step)]
            alive &= total >= threshold
        ys, xs = np.nonzero(alive)
        base = (ys * step * (w + 1) + xs * step).astype(np.int64)
        margin = total[ys, xs] - stages[_DENSE_STAGES - 1][0]
        flat = ii.ravel()
        for threshold, corners, tables, _feats in stages[_DENSE_STAGES:]:
            if not len(base):
                return []
            p = flat[base[:, None, None] + corners[None]]  # (n, weak, 16) corner sums
            cells = p[..., _A] - p[..., _B] - p[..., _C] + p[..., _D]  # (n, weak, 9)
            code = ((cells[..., :8] >= cells[..., 8:]) * _BITS).sum(axis=-1)  # (n, weak)
            score = tables[np.arange(code.shape[1]), code].sum(axis=1)
            keep = score >= threshold
            base, margin = base[keep], score[keep] - threshold
        ys, xs = np.divmod(base, w + 1)
        return [(int(x), int(y), float(m)) for x, y, m in zip(xs, ys, margin, strict=True)]

    @staticmethod
    def _dense_code(ii: np.ndarray, rect: np.ndarray, ny: int, nx: int, step: int) -> np.ndarray:
        """The LBP code of one feature for every window of the grid, ``(ny, nx)``."""
        x, y, cw, ch = (int(v) for v in rect)
        box = ii[ch:, cw:] - ii[:-ch, cw:] - ii[ch:, :-cw] + ii[:-ch, :-cw]  # every cell's sum

        def cell(r: int, c: int) -> np.ndarray:
            y0, x0 = y + r * ch, x + c * cw
            return box[y0 : y0 + (ny - 1) * step + 1 : step, x0 : x0 + (nx - 1) * step + 1 : step]

        cells = [cell(r, c) for r, c in _CELLS]
        code = np.zeros((ny, nx), np.intp)
        for bit, outer in zip(_BITS, cells[:8], strict=True):
            code += (outer >= cells[8]) * int(bit)
        return code

    def _stages_for(self, stride: int) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
        """Per stage: its threshold, each weak classifier's 16 corner offsets for this row
        stride, its leaf value for each of the 256 codes, and its feature index."""
        cached = self._offsets.get(stride)
        if cached is None:
            r, c = np.divmod(np.arange(16), 4)
            x, y, cw, ch = (self.rects[:, k : k + 1] for k in range(4))
            offsets: np.ndarray = (y + r * ch) * stride + x + c * cw  # (n_features, 16)
            cached = [
                (t, offsets[feats], tables, feats)
                for (t, feats, _s, _l), tables in zip(self.stages, self._tables, strict=True)
            ]
            self._offsets[stride] = cached
        return cached


_DENSE_STAGES = 2  # evaluated on the whole grid (they see most windows)
# The 3x3 cells of a multi-block LBP feature from its 4x4 integral-image corners (row-major
# corner k = 4 * row + col): the 8 outer cells in OpenCV's bit order, then the centre.
_CELLS = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (1, 1)]
_A = np.array([4 * r + c for r, c in _CELLS])
_B = _A + 1
_C = _A + 4
_D = _A + 5
_BITS = np.array([128, 64, 32, 16, 8, 4, 2, 1])


def _group(
    found: list[tuple[float, float, float, float, float]], min_neighbors: int, eps: float
) -> list[tuple[int, int, int, int, float]]:
    """OpenCV's ``groupRectangles``: cluster similar windows, keep clusters of more than
    ``min_neighbors``, average each, drop a face nested inside a stronger one. The score
    is the sum of the windows' margins over the last stage's threshold: more windows,
    and surer ones, make a surer face."""
    if not found:
        return []
    r = np.array(found)
    n = len(r)
    x, y, w, h = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
    delta = eps * (np.minimum(w[:, None], w[None]) + np.minimum(h[:, None], h[None])) * 0.5
    similar = (
        (np.abs(x[:, None] - x[None]) <= delta)
        & (np.abs(y[:, None] - y[None]) <= delta)
        & (np.abs(x[:, None] + w[:, None] - x[None] - w[None]) <= delta)
        & (np.abs(y[:, None] + h[:, None] - y[None] - h[None]) <= delta)
    )
    label = np.arange(n)
    changed = True
    while changed:  # connected components: every window takes its smallest linked label
        new = np.where(similar, label[None], n).min(axis=1)
        new = np.minimum(new, label)
        new = new[new]
        changed = bool((new != label).any())
        label = new
    groups = []
    for g in np.unique(label):
        members = r[label == g]
        if len(members) <= min_neighbors:
            continue
        mean = members[:, :4].mean(axis=0)
        groups.append((*mean, float(members[:, 4].sum()), len(members)))
    kept = []
    for i, (gx, gy, gw, gh, score, count) in enumerate(groups):
        nested = False
        for j, (ox, oy, ow, oh, _s, other) in enumerate(groups):
            d = _GROUP_EPS * ow
            if (
                i != j
                and other >= max(3, count)
                and (
                    gx >= ox - d
                    and gy >= oy - d
                    and gx + gw <= ox + ow + d
                    and gy + gh <= oy + oh + d
                )
            ):
                nested = True
                break
        if not nested:
            kept.append((round(gx), round(gy), round(gw), round(gh), score))
    return kept
