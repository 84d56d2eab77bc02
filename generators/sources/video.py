"""Real video: ``starter`` (pan-and-zoom clips of installed photos of faces) or a folder.

Corpus items are clips, not files: a long video gives several consecutive clips, all
with the video as their ``parent`` so that corpus splits never put two clips of one
video on both sides. Every file is read through the one video path
(``detector.media.video``), recognised by its content.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.media import decode_image
from detector.media.errors import MediaError
from detector.media.video import VideoClip, VideoLimits, encode_video, load_clip, probe_video
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

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def load(self, *, max_side: int | None = None) -> VideoClip:
        """Frames and voice track of the clip, through the one video decoder."""
        return load_clip(self.origin, start_s=self.start_s, end_s=self.end_s, max_side=max_side)


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
    on_file: Callable[[int, Path], None] | None = None,
) -> VideoSource:
    """Every video under ``path`` (recursive, by content), cut into clips; the files that
    cannot be used are in ``skipped`` with their error code. Ids are the files' paths
    relative to the folder (``<rel>#<k>``), so they are stable across machines."""
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
        got = _clips(file, rel, rel, clip_seconds=clip_seconds, max_clips=max_clips,
                     min_seconds=min_seconds, limits=limits)  # fmt: skip
        if isinstance(got, Skipped):
            skipped.append(got)
        else:
            items.extend(got)
    return VideoSource(spec=str(root), items=items, skipped=skipped)


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
