"""``selfblend``: self-blended faces, a face swap whose donor is the face itself.

Shiohara and Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022,
https://arxiv.org/abs/2204.08376: a real face, slightly changed (shifted and scaled,
resampled, blurred or sharpened, its colours moved) and blended back onto itself under
a face mask. No identity changes, so the only thing that tells it from the real clip is
what every face swap leaves: a blending boundary, a resampled and colour-mismatched
face region, a landmark mismatch of a few pixels. A face model trained on these learns
those traces rather than the people or one generator's look, which is what carries to
face swaps it never saw (the paper's cross-dataset results; here the leave-one-family-
out rows).

Each clip draws one set of changes (from its seed) and applies it to its tracked main
face in every frame, so the change is steady over time as a swap's is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from detector.config import check_preset, from_dict
from detector.media.video import VideoClip
from generators.base import FitReport, Generator, Samples, StepFn
from generators.registry import register
from generators.video._paste import roi_around, swap_region
from generators.video._track import (
    Box,
    check_tracking,
    check_video_source,
    swap_clips,
    track_faces,
)

ROI_PAD = 0.3  # the region changed: the face box plus this much of its size each side


@dataclass(frozen=True)
class SelfBlendConfig:
    max_side: int = 384  # clips are loaded, changed and returned at most this large
    shift: float = 0.03  # the face moved by up to this fraction of its size, each way
    scale: float = 0.05  # and scaled by up to this much about its centre
    resample: tuple[float, float] = (0.5, 1.0)  # down-and-up scaling factor of the face
    blur: float = 1.0  # sigma up to this (half the clips), or an unsharp mask (the other)
    colour: float = 0.05  # per-channel gain within 1 +- colour, offset within +- 255 * colour
    mask_shrink: tuple[float, float] = (0.8, 1.0)  # the ellipse's axes, of the face box's
    feather: tuple[float, float] = (0.05, 0.3)  # soft edge, of the box (feather blend)
    seamless: float = 0.5  # share of clips Poisson-blended (the rest alpha-feathered)
    detect_side: int = 256  # faces are detected on frames at most this large: speed
    detect_every: int = 2  # detect every this many frames; boxes between interpolated
    track_alpha: float = 0.6
    max_gap: int = 5

    def __post_init__(self) -> None:
        if self.max_side < 32:
            raise ValueError(f"max_side must be at least 32, got {self.max_side}")
        lo, hi = self.resample
        if not 0.1 <= lo <= hi <= 1.0:
            raise ValueError(f"resample must be (lo, hi), 0.1 <= lo <= hi <= 1: {self.resample}")
        for name in ("shift", "scale", "colour"):
            if not 0.0 <= getattr(self, name) <= 0.5:
                raise ValueError(f"{name} must be in [0, 0.5], got {getattr(self, name)}")
        if self.blur < 0 or not 0.0 <= self.seamless <= 1.0:
            raise ValueError("blur must be >= 0 and seamless in [0, 1]")
        for name in ("mask_shrink", "feather"):
            a, b = getattr(self, name)
            if not 0.0 <= a <= b <= 1.2:
                raise ValueError(f"{name} must be (lo, hi) with 0 <= lo <= hi <= 1.2")
        check_tracking(self)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SelfBlendConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"max_side": 128, "detect_side": 128},  # tests
}


@dataclass(frozen=True)
class Changes:
    """What one clip's face goes through (drawn once per clip)."""

    dx: float  # shift, of the face size
    dy: float
    zoom: float
    resample: float
    blur: float  # > 0: Gaussian sigma; < 0: unsharp mask of that strength; 0: neither
    gain: tuple[float, float, float]
    offset: tuple[float, float, float]
    shrink: float
    feather: float
    blend: str

    @classmethod
    def draw(cls, config: SelfBlendConfig, rng: np.random.Generator) -> Changes:
        c = config
        sharpen = rng.random() < 0.5
        return cls(
            dx=float(rng.uniform(-c.shift, c.shift)),
            dy=float(rng.uniform(-c.shift, c.shift)),
            zoom=float(rng.uniform(1 - c.scale, 1 + c.scale)),
            resample=float(rng.uniform(*c.resample)),
            blur=float(-rng.uniform(0.3, 1.0) if sharpen else rng.uniform(0.3, 1.0) * c.blur),
            gain=tuple(float(g) for g in rng.uniform(1 - c.colour, 1 + c.colour, 3)),  # type: ignore[arg-type]
            offset=tuple(float(o) for o in rng.uniform(-255 * c.colour, 255 * c.colour, 3)),  # type: ignore[arg-type]
            shrink=float(rng.uniform(*c.mask_shrink)),
            feather=float(rng.uniform(*c.feather)),
            blend="seamless" if rng.random() < c.seamless else "feather",
        )


def changed_face(region: np.ndarray, box: Box, ch: Changes) -> np.ndarray:
    """``region`` (the frame around the face, ``box`` in its coordinates) with the face
    moved, resampled, blurred or sharpened and recoloured (the whole region; the mask
    picks the face out of it later)."""
    h, w = region.shape[:2]
    x, y, bw, bh = box
    cx, cy = x + bw / 2, y + bh / 2
    m = np.array(
        [[ch.zoom, 0.0, cx - ch.zoom * cx + ch.dx * bw],
         [0.0, ch.zoom, cy - ch.zoom * cy + ch.dy * bh]]
    )  # fmt: skip
    out = cv2.warpAffine(region, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if ch.resample < 0.999:
        small = (max(8, round(w * ch.resample)), max(8, round(h * ch.resample)))
        out = cv2.resize(cv2.resize(out, small, interpolation=cv2.INTER_AREA), (w, h),
                         interpolation=cv2.INTER_LINEAR)  # fmt: skip
    f = out.astype(np.float32)
    if ch.blur > 0:
        f = cv2.GaussianBlur(f, (0, 0), ch.blur)
    elif ch.blur < 0:
        f = f + (-ch.blur) * (f - cv2.GaussianBlur(f, (0, 0), 1.0))
    f = f * np.array(ch.gain, np.float32) + np.array(ch.offset, np.float32)
    return np.clip(f, 0, 255).round().astype(np.uint8)


def self_blended_crop(
    crop: np.ndarray,
    rng: np.random.Generator,
    *,
    margin: float,
    config: SelfBlendConfig | None = None,
) -> np.ndarray:
    """A face crop self-blended: one draw of :class:`Changes` blended back onto it under
    the face's ellipse. ``crop`` is cut as ``detector.media.faces.face_crop`` cuts (the
    face box in the middle, ``margin`` of its side on each side); the face model's
    training makes a new one from a real crop at each draw (``p_online_fake``)."""
    cfg = config or SelfBlendConfig()
    h, w = crop.shape[:2]
    fw, fh = w / (1 + 2 * margin), h / (1 + 2 * margin)
    box = (round((w - fw) / 2), round((h - fh) / 2), round(fw), round(fh))
    changes = Changes.draw(cfg, rng)
    face = changed_face(crop, box, changes)
    out, _changed = swap_region(
        crop,
        face,
        box,
        origin=(0, 0),
        blend=changes.blend,
        colour=False,
        shrink=changes.shrink,
        feather=changes.feather,
    )
    return out


class SelfBlend(Generator):
    """Blends each real clip's main face, slightly changed, back onto itself."""

    family = "self_blend"
    modality = "video"
    conditional = True

    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Nothing to learn: checks the source and counts its clips."""
        start = time.perf_counter()
        source = check_video_source(self.name, source)
        if on_step is not None:
            on_step(1, 1, {})
        self.fit_report = FitReport(
            steps=0, seconds=time.perf_counter() - start, n_train=len(source), final={}
        )
        return self.fit_report

    def blend(self, clip: VideoClip, changes: Changes) -> VideoClip:
        """``clip`` with its tracked main face self-blended in every frame where it is
        found; ``boxes`` says where each frame changed."""
        cfg: SelfBlendConfig = self.config
        height, width = clip.frames.shape[1:3]
        tracked = track_faces(clip.frames, alpha=cfg.track_alpha, max_gap=cfg.max_gap,
                              every=cfg.detect_every, work_side=cfg.detect_side)  # fmt: skip
        frames = clip.frames.copy()
        boxes: list[list[list[int]]] = []
        for t, target in enumerate(tracked):
            if target is None:
                boxes.append([])
                continue
            x0, y0, x1, y1 = roi_around(target, pad=ROI_PAD, width=width, height=height)
            local = (target[0] - x0, target[1] - y0, target[2], target[3])
            face = changed_face(frames[t][y0:y1, x0:x1], local, changes)
            frames[t], changed = swap_region(
                frames[t],
                face,
                target,
                origin=(x0, y0),
                blend=changes.blend,
                colour=False,  # the colour change is the point
                shrink=changes.shrink,
                feather=changes.feather,
            )
            boxes.append([changed] if changed is not None else [])
        return VideoClip(frames=frames, fps=clip.fps, audio=clip.audio,
                         sample_rate=clip.sample_rate, boxes=boxes)  # fmt: skip

    def generate(self, n: int, *, seed: int, source: Any | None = None) -> Samples:
        """``n`` clips of ``source`` (picked with ``seed``), each with its main face
        self-blended; ``sources[i]`` is the real clip's id."""
        source = check_video_source(self.name, source)
        cfg: SelfBlendConfig = self.config
        items, videos, seeds = swap_clips(
            self.name,
            source,
            n,
            seed=seed,
            make=lambda item, s: self.blend(
                item.load(max_side=cfg.max_side), Changes.draw(cfg, np.random.default_rng(s))
            ),
        )
        return Samples(images=None, sources=[it.id for it in items], seeds=seeds, videos=videos)


@register("selfblend", family="self_blend")
def selfblend(*, preset: str = "default", **overrides: Any) -> SelfBlend:
    return SelfBlend("selfblend", SelfBlendConfig.preset(preset, **overrides))
