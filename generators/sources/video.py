"""Real video: ``starter`` (pan-and-zoom clips of installed photos of faces) or a folder.

Corpus items are clips, not files: a long video gives several consecutive clips, all
with the video as their ``parent`` so that corpus splits never put two clips of one
video on both sides. Every file is read through the one video path
(``detector.media.video``), recognised by its content.

A folder may also hold photos of faces (read through the one image path): each becomes
a silent pan-and-zoom clip around its main face, rendered when loaded. Talking-head
video is scarce and face photos are not; more people means a face model that learns
the swaps rather than the faces.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.media import decode_image
from detector.media.errors import MediaError
from detector.media.faces import detect_faces
from detector.media.image import ImageLimits, sniff_image_format
from detector.media.video import (
    VideoClip,
    VideoLimits,
    decode_audio_track,
    encode_video,
    load_clip,
    probe_video,
)
from generators.sources.base import MediaSource, Skipped
from generators.sources.starter import _package_dir


@dataclass(frozen=True)
class VideoItem:
    """One clip of a real video: ``[start_s, end_s)`` of the file at ``origin``."""

    id: str  # "<video id>#<k>"
    origin: str  # the file path
    parent: str  # the video id: corpus splits are made by parent
    start_s: float
    end_s: float
    license: str = ""
    # A photo's clip: the main face's box (x, y, w, h) in the photo, which the camera
    # frames. ``None`` for a video's clip.
    photo_face: tuple[int, int, int, int] | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def load(self, *, max_side: int | None = None) -> VideoClip:
        """Frames and voice track of the clip, through the one video decoder (a photo's
        clip: rendered from the photo, silent)."""
        if self.photo_face is not None:
            return photo_clip(self, max_side=max_side)
        return load_clip(self.origin, start_s=self.start_s, end_s=self.end_s, max_side=max_side)

    def voice(self) -> np.ndarray | None:
        """The clip's voice track (16 kHz mono), ``None`` when it has none."""
        if self.photo_face is not None:
            return None
        return decode_audio_track(self.origin, start_s=self.start_s, end_s=self.end_s)


@dataclass
class VideoSource(MediaSource[VideoItem]):
    """A named set of real video clips. ``spec`` re-opens it (``starter`` or a folder)."""

    modality = "video"

    def pick(self, n: int, *, seed: int) -> list[VideoItem]:
        """``n`` clips, cycling through a seeded order: every clip is used before any is
        used twice."""
        if not self.items:
            raise ValueError(f"real source {self.spec!r} has no usable video clips")
        order = np.random.default_rng(seed).permutation(len(self.items))
        return [self.items[int(order[i % len(order)])] for i in range(n)]

    def parents(self) -> list[str]:
        """The videos the clips come from, each once, in source order."""
        return list(dict.fromkeys(it.parent for it in self.items))


def _cut(duration: float, clip_seconds: float, max_clips: int, min_seconds: float) -> list[float]:
    """Start times of up to ``max_clips`` consecutive clips; a last partial clip counts
    when it is at least ``min_seconds`` long."""
    full = min(max_clips, int(duration // clip_seconds + 1e-9))
    starts = [k * clip_seconds for k in range(full)]
    rest = duration - full * clip_seconds
    if full < max_clips and rest >= min_seconds - 1e-9:
        starts.append(full * clip_seconds)
    return starts


def _clips(
    path: Path,
    video_id: str,
    parent: str,
    *,
    clip_seconds: float,
    max_clips: int,
    min_seconds: float,
    license: str = "",
    limits: VideoLimits | None = None,
) -> list[VideoItem] | Skipped:
    try:
        info = probe_video(path, limits=limits or VideoLimits())
    except MediaError as exc:
        return Skipped(video_id, exc.code, exc.message)
    except OSError as exc:
        return Skipped(video_id, "corrupt_media", f"cannot read the file ({exc})")
    duration = info.duration_s or ((info.n_frames or 0) / info.fps if info.fps else 0.0)
    starts = _cut(duration, clip_seconds, max_clips, min_seconds)
    if not starts:
        return Skipped(video_id, "too_short", f"{duration:.2f} s; at least {min_seconds:g} s")
    return [
        VideoItem(
            id=f"{video_id}#{k}",
            origin=str(path),
            parent=parent,
            start_s=round(s, 6),
            end_s=round(min(s + clip_seconds, duration), 6),
            license=license,
        )
        for k, s in enumerate(starts)
    ]


def open_video_folder(
    path: str | Path,
    *,
    clip_seconds: float = 4.0,
    max_clips: int = 8,
    min_seconds: float = 1.0,
    limits: VideoLimits | None = None,
    photos: bool = True,
    on_file: Callable[[int, Path], None] | None = None,
) -> VideoSource:
    """Every video under ``path`` (recursive, by content), cut into clips; the files that
    cannot be used are in ``skipped`` with their error code. Ids are the files' paths
    relative to the folder (``<rel>#<k>``), so they are stable across machines.

    With ``photos``, a photo that shows a face becomes one ``clip_seconds`` pan-and-zoom
    clip around it (:func:`photo_clip`); photos without a usable face are skipped
    (``no_face``)."""
    if not clip_seconds > 0 or max_clips < 1 or not 0 < min_seconds <= clip_seconds:
        raise ValueError(
            "need clip_seconds > 0, max_clips >= 1 and 0 < min_seconds <= clip_seconds; "
            f"got {clip_seconds}, {max_clips}, {min_seconds}"
        )
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"real-data folder {root} does not exist or is not a directory")
    files = sorted(
        Path(d) / name for d, _dirs, names in os.walk(root, followlinks=False) for name in names
    )
    items: list[VideoItem] = []
    skipped: list[Skipped] = []
    for i, file in enumerate(files):
        if on_file is not None:
            on_file(i, file)
        rel = file.relative_to(root).as_posix()
        if photos and _is_photo(file):
            got = _photo_clips(file, rel, clip_seconds=clip_seconds)
        else:
            got = _clips(file, rel, rel, clip_seconds=clip_seconds, max_clips=max_clips,
                         min_seconds=min_seconds, limits=limits)  # fmt: skip
        if isinstance(got, Skipped):
            skipped.append(got)
        else:
            items.extend(got)
    return VideoSource(spec=str(root), items=items, skipped=skipped)


# --- photos of faces: one silent clip each ---------------------------------------------------

PHOTO_FPS, PHOTO_SIDE = 25.0, 384  # a photo's clip: square, at most this large
PHOTO_MIN_FACE = 48  # px: smaller faces are upscaled blur, no use to a face model
PHOTO_VIEW = 2.6  # the camera's widest view: this many face sides, centred on the face
PHOTO_ZOOM = (1.0, 1.25)  # at most 1.25x in: the face stays in view as the camera moves
# A photo cropped closer than this many face sides (a 150 px portrait of a 100 px face)
# gives a clip whose face fills the frame and leaves it as the camera moves. On the 135
# face photos of ../shared/data, the detector found the face in every sampled frame of
# nearly all the clips of photos at 1.5 face sides or more, and in 0-100% (often none)
# of those below: a swap there changes few frames or none.
PHOTO_MIN_VIEW = 1.5


def _is_photo(file: Path) -> bool:
    try:
        with open(file, "rb") as f:
            head = f.read(1 << 20)  # headers only: PIL identifies a format from its start
    except OSError:
        return False
    return sniff_image_format(head) is not None


def _photo_clips(file: Path, rel: str, *, clip_seconds: float) -> list[VideoItem] | Skipped:
    try:
        pixels = decode_image(file, limits=ImageLimits()).pixels
    except MediaError as exc:
        return Skipped(rel, exc.code, exc.message)
    except OSError as exc:
        return Skipped(rel, "corrupt_media", f"cannot read the file ({exc})")
    faces = detect_faces(pixels, max_faces=4, work_side=640)
    if not faces:
        return Skipped(rel, "no_face", "a photo with no frontal face the detector finds")
    sure = [b for b in faces if b.score >= 0.5 * faces[0].score]
    face = max(sure, key=lambda b: b.w * b.h)
    if min(face.w, face.h) < PHOTO_MIN_FACE:
        return Skipped(
            rel, "no_face", f"its face is {face.w}x{face.h} px; at least {PHOTO_MIN_FACE} px"
        )
    ih, iw = pixels.shape[:2]
    if min(iw, ih) < PHOTO_MIN_VIEW * max(face.w, face.h):
        return Skipped(
            rel,
            "tight_crop",
            f"cropped too close to its face ({face.w}x{face.h} px in {iw}x{ih}): a camera "
            f"view needs {PHOTO_MIN_VIEW:g} face sides",
        )
    return [
        VideoItem(
            id=f"{rel}#0",
            origin=str(file),
            parent=rel,
            start_s=0.0,
            end_s=float(clip_seconds),
            photo_face=(face.x, face.y, face.w, face.h),
        )
    ]


def photo_clip(item: VideoItem, *, max_side: int | None = None) -> VideoClip:
    """The clip of a photo item: a square camera view of about ``PHOTO_VIEW`` face sides
    around its face, panning and zooming in slowly (:func:`pan_zoom_clip`, seeded by the
    item's id), ``PHOTO_SIDE`` px or ``max_side`` if smaller, at 25 fps, silent."""
    assert item.photo_face is not None
    image = decode_image(item.origin, limits=ImageLimits()).pixels
    ih, iw = image.shape[:2]
    x, y, w, h = item.photo_face
    view = min(round(PHOTO_VIEW * max(w, h)), iw, ih)
    x0 = int(np.clip(x + w / 2 - view / 2, 0, iw - view))
    y0 = int(np.clip(y + h / 2 - view / 2, 0, ih - view))
    side = min(PHOTO_SIDE, max_side or PHOTO_SIDE)
    seed = int(hashlib.sha256(item.id.encode()).hexdigest()[:8], 16)
    frames = pan_zoom_clip(image[y0 : y0 + view, x0 : x0 + view], seconds=item.duration_s,
                           fps=PHOTO_FPS, size=(side, side), zoom=PHOTO_ZOOM,
                           seed=seed)  # fmt: skip
    return VideoClip(frames=frames, fps=PHOTO_FPS)


# --- starter: camera-like motion over real photos -----------------------------------------


def pan_zoom_clip(
    image: np.ndarray,
    *,
    seconds: float = 2.0,
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    zoom: tuple[float, float] = (1.0, 1.2),
    seed: int = 0,
) -> np.ndarray:
    """``(T, H, W, 3)`` uint8: a smooth Ken-Burns pan and zoom over a still photo.

    ``size`` is ``(width, height)``. The view starts and ends at zooms drawn from
    ``zoom`` (1.0: the largest window of the output's shape that fits the photo) and at
    drawn positions, eased in and out; it never leaves the photo. Deterministic per seed.
    """
    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[..., :3])
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, not {image.shape}")
    lo, hi = zoom
    if not 1.0 <= lo <= hi:
        raise ValueError(f"zoom must be (lo, hi) with 1 <= lo <= hi, not {zoom}")
    width, height = size
    n = max(1, round(seconds * fps))
    ih, iw = img.shape[:2]
    base = min(iw / width, ih / height)  # photo pixels per output pixel at zoom 1
    rng = np.random.default_rng(seed)
    z0, z1 = rng.uniform(lo, hi, size=2)
    u0, u1 = rng.uniform(0.0, 1.0, size=(2, 2))  # where the window sits in its free room
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        a = i / (n - 1) if n > 1 else 0.0
        a = a * a * (3 - 2 * a)  # ease in and out: a camera starts and stops smoothly
        scale = base / (z0 + (z1 - z0) * a)
        room_x, room_y = iw - width * scale, ih - height * scale
        ux, uy = u0 + (u1 - u0) * a
        x0, y0 = ux * room_x, uy * room_y
        m = np.array([[scale, 0.0, x0], [0.0, scale, y0]], np.float64)  # output -> photo
        out[i] = cv2.warpAffine(
            img, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )  # fmt: skip
    return out


# (package, path in the package, id, license): installed real photos, one face each.
STARTER_PHOTOS: tuple[tuple[str, str, str, str], ...] = (
    ("skimage", "data/astronaut.png", "astronaut", "public domain (NASA)"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "grace_hopper", "public domain"),
)
STARTER_CLIPS = 3  # per photo, each its own motion
STARTER_SECONDS, STARTER_FPS, STARTER_SIDE = 4.0, 25.0, 384
_STARTER_VERSION = "v1"  # bump when the recipe changes: a new cache folder


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "synthguard" / "starter-video"


def starter_video_source(
    cache_dir: Path | None = None,
    *,
    clips_per_photo: int = STARTER_CLIPS,
    seconds: float = STARTER_SECONDS,
    side: int = STARTER_SIDE,
) -> VideoSource:
    """Pan-and-zoom clips of the installed photos that show a face (two identities),
    encoded once into ``cache_dir`` (default ``$XDG_CACHE_HOME/synthguard/starter-video``)
    and reused. A clip's parent is its photo: clips of one face stay in one split.

    The defaults (3 clips a photo, 4 s, 384x384 at 25 fps) are the starter; tests ask
    for less. Each recipe has its own cache folder."""
    recipe = f"{_STARTER_VERSION}-{side}px-{seconds:g}s"
    folder = Path(cache_dir or _cache_root()) / recipe
    items: list[VideoItem] = []
    skipped: list[Skipped] = []
    for package, rel, photo_id, license_ in STARTER_PHOTOS:
        base = _package_dir(package)
        path = base / rel if base is not None else None
        if path is None or not path.is_file():
            skipped.append(Skipped(f"{package}/{rel}", "missing", "not in this installation"))
            continue
        for k in range(clips_per_photo):
            file = folder / f"{photo_id}-{k}.mp4"
            if not file.is_file():
                _write_starter_clip(path, file, seed=k, seconds=seconds, side=side)
            got = _clips(file, f"starter:{photo_id}-{k}", f"starter:{photo_id}",
                         clip_seconds=seconds, max_clips=1, min_seconds=min(1.0, seconds),
                         license=license_)  # fmt: skip
            if isinstance(got, Skipped):
                skipped.append(got)
            else:
                items.extend(got)
    return VideoSource(spec="starter", items=items, skipped=skipped)


def _write_starter_clip(photo: Path, file: Path, *, seed: int, seconds: float, side: int) -> None:
    image = decode_image(photo).pixels
    zooms = ((1.0, 1.15), (1.1, 1.35), (1.25, 1.6))[seed % 3]
    frames = pan_zoom_clip(image, seconds=seconds, fps=STARTER_FPS, size=(side, side),
                           zoom=zooms, seed=seed)  # fmt: skip
    data = encode_video(VideoClip(frames=frames, fps=STARTER_FPS), crf=20, preset="fast")
    file.parent.mkdir(parents=True, exist_ok=True)
    # Written beside its final name and renamed: a reader never sees half a file, and
    # two processes filling the cache at once both end with a whole one.
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
