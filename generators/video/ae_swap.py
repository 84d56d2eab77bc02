"""``ae_swap``: the original "deepfakes" face swap, a shared encoder and a decoder per person.

The method the 2017 "deepfakes" code made famous (and DeepFaceLab and faceswap later
refined; Perov et al., "DeepFaceLab", 2020, https://arxiv.org/abs/2005.05535): one
convolutional encoder, shared, and one decoder per identity, each trained to rebuild its
own person's face crops from randomly warped copies. The shared encoder learns pose and
expression common to both; decoding person A's code with B's decoder draws B's face in
A's pose. ``generate`` does that for every frame of a real clip and pastes the result
back. Its traces: a blurry, low-resolution face (64 px rebuilt and scaled up), blending
seams, colour mismatches and frame-to-frame flicker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from detector.config import check_choice, check_preset, from_dict
from detector.media.video import VideoClip
from generators.base import FitReport, Generator, Samples, StepFn
from generators.image._tensor import Smoothed, to_tensor, to_uint8
from generators.registry import register
from generators.video._paste import (
    BLENDS,
    box_affine,
    roi_around,
    square_crop,
    swap_region,
    warp_into,
)
from generators.video._track import (
    check_tracking,
    check_video_source,
    identity_key,
    main_face,
    swap_clips,
    track_faces,
)

ROI_PAD = 0.3  # the region pasted in: the face box plus this much of its size each side
GENERATE_BATCH = 64  # frames' crops per forward pass


@dataclass(frozen=True)
class AESwapConfig:
    # The default preset must train in about 5 minutes on 2 CPU cores: widths, batch and
    # steps are sized for that first, the sharpness of the swapped face second.
    max_side: int = 384  # clips are loaded, swapped and returned at most this large
    image_size: int = 64  # face crops, as in the original deepfakes code; a multiple of 16
    margin: float = 0.15  # context around the detected face in a crop: mostly face
    identities: int = 2  # the parents with the most face crops get a decoder each
    frames_per_clip: int = 24  # training frames searched for a face, evenly spaced
    channels: int = 24  # encoder width at full resolution, doubled per stride-2 conv
    latent: int = 256  # the dense bottleneck: what both decoders share
    batch_size: int = 8  # per identity and step
    # A step (2 x 8 crops of 64 px) took 0.21-0.24 s on 2 idle cores and 0.3 s on one
    # thread of a busy 2-core machine, where the whole fit on the six starter clips (15 s
    # of it finding faces) took 5.3 minutes.
    steps: int = 1000
    lr: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.999)  # the deepfakes code's Adam settings
    # Augmentation: a random similarity (both input and target, plus flips) and a random
    # smooth warp of the input only, so decoders must redraw faces, not copy pixels.
    rotate_deg: float = 10.0
    zoom: float = 0.05
    shift: float = 0.05
    warp: float = 0.04  # displacement of the warp's 5x5 control grid, in crop widths
    dssim_weight: float = 0.5  # loss = L1 + this * DSSIM (structural detail), 0: L1 only
    blend: str = "feather"  # one of BLENDS; "feather" keeps the swapped face's own edges
    colour_transfer: bool = True
    mask_shrink: float = 0.85
    feather: float = 0.2
    detect_side: int = 256  # faces are detected on frames at most this large: speed
    # Detect every this many frames; boxes in between are interpolated. Detection is most
    # of the cost (~0.1 s a frame at 256 px on one core).
    detect_every: int = 2
    track_alpha: float = 0.6
    max_gap: int = 5
    seed: int = 0  # weight init, augmentation and minibatches

    def __post_init__(self) -> None:
        check_choice("blend", self.blend, BLENDS)
        if self.image_size < 16 or self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {self.image_size}")
        if self.identities < 2:
            raise ValueError(f"identities must be >= 2, got {self.identities}")
        counts = (self.frames_per_clip, self.channels, self.latent, self.batch_size, self.steps)
        if min(counts) < 1:
            raise ValueError("frames_per_clip, channels, latent, batch_size and steps must be >= 1")
        if self.max_side < 32 or not 0.0 <= self.margin <= 1.0:
            raise ValueError("need max_side >= 32 and 0 <= margin <= 1")
        if self.dssim_weight < 0 or self.warp < 0 or self.zoom < 0 or self.shift < 0:
            raise ValueError("dssim_weight, warp, zoom and shift must be >= 0")
        if not 0.2 <= self.mask_shrink <= 1.2 or not 0.0 <= self.feather <= 1.0:
            raise ValueError("need 0.2 <= mask_shrink <= 1.2 and 0 <= feather <= 1")
        check_tracking(self)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AESwapConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Seconds on a CPU: for tests, not for looking at.
    "tiny": {
        "max_side": 128,
        "detect_side": 128,
        "image_size": 32,
        "frames_per_clip": 6,
        "channels": 8,
        "latent": 32,
        "batch_size": 4,
        "steps": 24,
    },
}


# --- networks ---------------------------------------------------------------------------


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


class Upscale(nn.Module):
    """``(B, c_in, H, W)`` -> ``(B, c_out, 2H, 2W)``: 3x3 conv to 4x the channels, then
    pixel shuffle, as the deepfakes code upscales."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out * 4, 3, 1, 1)
        self.act = _act()
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.act(self.conv(x)))


class Encoder(nn.Module):
    """``(B, 3, S, S)`` -> ``(B, 4c, S/8, S/8)``: four stride-2 5x5 convs to ``S/16``, a
    dense bottleneck of ``latent`` numbers, then one upscale (the deepfakes layout)."""

    def __init__(self, *, size: int, channels: int, latent: int) -> None:
        super().__init__()
        c = channels
        self.convs = nn.Sequential(
            nn.Conv2d(3, c, 5, 2, 2), _act(),
            nn.Conv2d(c, 2 * c, 5, 2, 2), _act(),
            nn.Conv2d(2 * c, 4 * c, 5, 2, 2), _act(),
            nn.Conv2d(4 * c, 8 * c, 5, 2, 2), _act(),
        )  # fmt: skip
        self.side = size // 16
        flat = 8 * c * self.side**2
        self.dense = nn.Sequential(nn.Linear(flat, latent), nn.Linear(latent, flat))
        self.up = Upscale(8 * c, 4 * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)  # (B, 8c, S/16, S/16)
        h = self.dense(h.flatten(1)).view_as(h)
        return self.up(h)  # (B, 4c, S/8, S/8)


class Decoder(nn.Module):
    """``(B, 4c, S/8, S/8)`` -> ``(B, 3, S, S)`` in [-1, 1]: three upscales and a 5x5 conv."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            Upscale(4 * c, 4 * c),
            Upscale(4 * c, 2 * c),
            Upscale(2 * c, c),
            nn.Conv2d(c, 3, 5, 1, 2),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Identities(nn.Module):
    """The :func:`identity_key` of each decoder's person (0 before ``fit``): a buffer, so a
    checkpoint knows which decoder draws whom."""

    keys: torch.Tensor

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("keys", torch.zeros(n, dtype=torch.int64))


# --- objective and augmentation -----------------------------------------------------------


def dssim(x: torch.Tensor, y: torch.Tensor, *, window: int = 7) -> torch.Tensor:
    """Structural dissimilarity ``(1 - SSIM) / 2`` of two ``(B, 3, H, W)`` batches in
    [-1, 1], with box windows (Wang et al., 2004, https://doi.org/10.1109/TIP.2003.819861)."""
    x, y = (x + 1) / 2, (y + 1) / 2
    c1, c2 = 0.01**2, 0.03**2

    def pool(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, window, 1, window // 2, count_include_pad=False)

    mx, my = pool(x), pool(y)
    vx, vy, cxy = pool(x * x) - mx * mx, pool(y * y) - my * my, pool(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return ((1 - ssim) / 2).mean()


def swap_loss(recon: torch.Tensor, target: torch.Tensor, *, dssim_weight: float) -> torch.Tensor:
    loss = F.l1_loss(recon, target)
    if dssim_weight:
        loss = loss + dssim_weight * dssim(recon, target)
    return loss


def augment(
    faces: torch.Tensor, cfg: AESwapConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(warped input, target)`` from a ``(B, 3, S, S)`` batch: both moved by one random
    similarity (and flipped at random), the input also bent by a smooth random warp."""
    b, _, s, _ = faces.shape

    def uniform(scale: float) -> torch.Tensor:
        return (torch.rand(b, generator=generator) * 2 - 1) * scale

    angle = torch.deg2rad(uniform(cfg.rotate_deg))
    zoom = 1 + uniform(cfg.zoom)
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) / zoom * flip
    theta[:, 0, 1] = -torch.sin(angle) / zoom
    theta[:, 1, 0] = torch.sin(angle) / zoom * flip
    theta[:, 1, 1] = torch.cos(angle) / zoom
    theta[:, 0, 2] = uniform(cfg.shift) * 2
    theta[:, 1, 2] = uniform(cfg.shift) * 2
    grid = F.affine_grid(theta, [b, 3, s, s], align_corners=False)
    target = F.grid_sample(faces, grid, padding_mode="reflection", align_corners=False)
    bend = (torch.rand(b, 2, 5, 5, generator=generator) * 2 - 1) * cfg.warp * 2
    bend = F.interpolate(bend, size=(s, s), mode="bicubic", align_corners=True)
    warped_grid = grid + bend.permute(0, 2, 3, 1)
    warped = F.grid_sample(faces, warped_grid, padding_mode="reflection", align_corners=False)
    return warped, target


# --- the generator ------------------------------------------------------------------------


class AESwap(Generator):
    """Shared encoder, one decoder per identity; swaps by decoding with the other's."""

    family = "autoencoder_swap"
    modality = "video"
    conditional = True

    def __init__(self, name: str, config: AESwapConfig) -> None:
        super().__init__(name, config)
        # Seeded init, without touching the global RNG: the same config builds the same nets.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.nets["encoder"] = Encoder(
                size=config.image_size, channels=config.channels, latent=config.latent
            )
            self.nets["decoders"] = nn.ModuleList(
                Decoder(channels=config.channels) for _ in range(config.identities)
            )
        self.nets["identities"] = Identities(config.identities)
        self.identity_names: list[str] = []  # known after fit (a checkpoint keeps keys only)

    @property
    def decoders(self) -> nn.ModuleList:
        return cast(nn.ModuleList, self.nets["decoders"])

    @property
    def identity_keys(self) -> list[int]:
        """The :func:`identity_key` of each decoder's person (all 0 before ``fit``)."""
        return [int(k) for k in cast(Identities, self.nets["identities"]).keys]

    def face_crops(self, source: Any) -> dict[str, np.ndarray]:
        """Per parent, the ``(N, S, S, 3)`` uint8 crops of the main face (``main_face``) in
        ``frames_per_clip`` evenly spaced frames of each of its clips."""
        cfg: AESwapConfig = self.config
        crops: dict[str, list[np.ndarray]] = {}
        for item in source.items:
            frames = item.load(max_side=cfg.max_side).frames
            picks = np.linspace(0, len(frames) - 1, cfg.frames_per_clip).round().astype(int)
            for t in np.unique(picks):
                found = main_face(frames[t], work_side=cfg.detect_side)
                if found is not None:
                    crop, _ = square_crop(frames[t], found, margin=cfg.margin, size=cfg.image_size)
                    crops.setdefault(item.parent, []).append(crop)
        return {p: np.stack(c) for p, c in crops.items()}

    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Train on the face crops of the ``identities`` parents of ``source`` (a
        ``VideoSource``) with the most crops; each decoder rebuilds its own person."""
        cfg: AESwapConfig = self.config
        start = time.perf_counter()
        source = check_video_source(self.name, source)
        by_parent = self.face_crops(source)
        ranked = sorted(by_parent, key=lambda p: (-len(by_parent[p]), p))[: cfg.identities]
        if len(ranked) < cfg.identities:
            raise ValueError(
                f"{self.name} needs faces of {cfg.identities} identities; found faces in "
                f"clips of {len(ranked)} ({ranked}) in {source.spec!r}"
            )
        device = self.device
        data = [to_tensor(by_parent[p]) for p in ranked]  # (N_i, 3, S, S), on the CPU
        rng = torch.Generator().manual_seed(cfg.seed)
        encoder, decoders = self.nets["encoder"], self.decoders
        self.nets.train()
        params = [*encoder.parameters(), *decoders.parameters()]
        opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas)
        smooth = Smoothed()
        metrics: dict[str, float] = {}
        for step in range(1, cfg.steps + 1):
            loss = torch.zeros((), device=device)
            values: dict[str, float] = {}
            for i, faces in enumerate(data):
                idx = torch.randint(0, len(faces), (cfg.batch_size,), generator=rng)
                warped, target = augment(faces[idx], cfg, rng)
                recon = decoders[i](encoder(warped.to(device)))
                part = swap_loss(recon, target.to(device), dssim_weight=cfg.dssim_weight)
                values[f"loss_{i}"] = part.item()
                loss = loss + part
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            metrics = smooth.update(loss=loss.item(), **values)
            if on_step is not None:
                on_step(step, cfg.steps, metrics)
        self.nets.eval()
        keys = torch.tensor([identity_key(p) for p in ranked], dtype=torch.int64)
        cast(Identities, self.nets["identities"]).keys.copy_(keys)
        self.identity_names = ranked
        self.fit_report = FitReport(
            steps=cfg.steps,
            seconds=time.perf_counter() - start,
            n_train=sum(len(d) for d in data),
            final=metrics,
        )
        return self.fit_report

    def decoder_for(self, parent: str, *, seed: int) -> int:
        """The decoder that redraws a clip of ``parent`` for an item ``seed``: another
        identity's (drawn with the seed among the others when there are more than two), or
        one drawn with the seed when ``parent`` is none of the trained identities."""
        keys = self.identity_keys
        if not any(keys):
            raise ValueError(f"{self.name} is not trained: fit() it or load a checkpoint first")
        own = identity_key(parent)
        choices = [i for i, k in enumerate(keys) if k != own]
        return choices[int(np.random.default_rng(seed).integers(len(choices)))]

    def redraw(self, crops: np.ndarray, decoder: int) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 face crops through the encoder and decoder ``decoder``."""
        encoder, dec = self.nets["encoder"].eval(), self.decoders[decoder].eval()
        out = np.empty_like(crops)
        with torch.inference_mode():
            for i in range(0, len(crops), GENERATE_BATCH):
                x = to_tensor(crops[i : i + GENERATE_BATCH]).to(self.device)
                out[i : i + GENERATE_BATCH] = to_uint8(dec(encoder(x)))
        return out

    def swap(self, clip: VideoClip, decoder: int) -> VideoClip:
        """``clip`` with its tracked main face redrawn by decoder ``decoder`` (same frame
        count, size, rate and audio); ``boxes`` says where each frame changed."""
        cfg: AESwapConfig = self.config
        height, width = clip.frames.shape[1:3]
        tracked = track_faces(
            clip.frames,
            alpha=cfg.track_alpha,
            max_gap=cfg.max_gap,
            every=cfg.detect_every,
            work_side=cfg.detect_side,
        )
        frames = clip.frames.copy()
        boxes: list[list[list[int]]] = [[] for _ in tracked]
        todo = [(t, b) for t, b in enumerate(tracked) if b is not None]
        if todo:
            cut = [
                square_crop(frames[t], box, margin=cfg.margin, size=cfg.image_size)
                for t, box in todo
            ]
            faces = self.redraw(np.stack([c for c, _ in cut]), decoder)
            for (t, target), (_, crop_box), face in zip(todo, cut, faces, strict=True):
                roi = roi_around(target, pad=ROI_PAD, width=width, height=height)
                frames[t], changed = swap_region(
                    frames[t],
                    warp_into(face, box_affine(crop_box, target), roi),
                    target,
                    origin=roi[:2],
                    blend=cfg.blend,
                    colour=cfg.colour_transfer,
                    shrink=cfg.mask_shrink,
                    feather=cfg.feather,
                )
                if changed is not None:
                    boxes[t] = [changed]
        return VideoClip(
            frames=frames,
            fps=clip.fps,
            audio=clip.audio,
            sample_rate=clip.sample_rate,
            boxes=boxes,
        )

    def generate(self, n: int, *, seed: int, source: Any | None = None) -> Samples:
        """``n`` clips of ``source`` (picked with ``seed``), each with its main face redrawn
        as another identity; ``sources[i]`` is the real clip's id."""
        source = check_video_source(self.name, source)
        cfg: AESwapConfig = self.config
        items, videos, seeds = swap_clips(
            self.name,
            source,
            n,
            seed=seed,
            make=lambda item, s: self.swap(
                item.load(max_side=cfg.max_side), self.decoder_for(item.parent, seed=s)
            ),
        )
        return Samples(images=None, sources=[it.id for it in items], seeds=seeds, videos=videos)


@register("ae_swap", family="autoencoder_swap")
def ae_swap(*, preset: str = "default", **overrides: Any) -> AESwap:
    return AESwap("ae_swap", AESwapConfig.preset(preset, **overrides))
