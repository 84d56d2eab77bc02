"""``faceswap``: the graphics face swap (no learning), as in FaceForensics++'s FaceSwap.

Rossler et al., "FaceForensics++: Learning to Detect Manipulated Facial Images", 2019,
https://arxiv.org/abs/1901.08971, built its FaceSwap set with a graphics pipeline of the
same kind: a face of another person is fitted onto the tracked face of a real clip and
blended in. Here ``fit`` gathers a bank of real faces (the main face in a few frames
of every training clip, with its identity); ``generate`` puts a face of another identity
onto each target clip, frame by frame: box-to-box affine warp (or an eye-to-eye
similarity when OpenCV's eye cascade finds both eyes in both faces), colour transfer in
LAB, and Poisson blending under an ellipse. Its traces are blending boundaries, colour
and lighting mismatches and a face that does not move with the head's 3D pose.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from detector.config import check_choice, check_preset, from_dict
from detector.media.video import VideoClip
from generators.base import FitReport, Generator, Samples, StepFn
from generators.registry import register
from generators.video._paste import (
    BLENDS,
    box_affine,
    eyes_similarity,
    plausible_eye_map,
    roi_around,
    square_crop,
    swap_region,
    warp_into,
)
from generators.video._track import (
    Box,
    Eyes,
    check_tracking,
    check_video_source,
    eyes_available,
    find_eyes,
    identity_key,
    main_face,
    swap_clips,
    track_eyes,
    track_faces,
)

ROI_PAD = 0.3  # the region pasted in: the face box plus this much of its size each side


@dataclass(frozen=True)
class FaceSwapConfig:
    max_side: int = 384  # clips are loaded, swapped and returned at most this large
    bank_frames: int = 4  # frames per training clip searched for a source face
    bank_size: int = 160  # side of the stored face crops: past the target faces' size
    bank_margin: float = 0.4  # context kept around each stored face, so the warp has room
    # Refine the box-to-box warp by the eye positions when OpenCV's eye cascade finds both
    # eyes in both faces (OpenCV 4.x only; 5.x dropped the cascade classifier).
    align_eyes: bool = True
    blend: str = "seamless"  # one of BLENDS: Poisson NORMAL_CLONE, MIXED_CLONE or alpha
    colour_transfer: bool = True  # match the LAB mean and spread of the real skin
    # The ellipse's axes as a fraction of the box's half-sides: the Haar box runs from the
    # brows to the chin, and blending past it pulls in hair and background.
    mask_shrink: float = 0.9
    feather: float = 0.15  # blend="feather" only: the soft edge, as a fraction of the box
    detect_side: int = 256  # faces are detected on frames at most this large: speed
    # Detect every this many frames; boxes in between are interpolated. Detection is most
    # of the cost (~0.1 s a frame at 256 px on one core).
    detect_every: int = 2
    track_alpha: float = 0.6  # BoxTracker smoothing: weight of the new detection
    max_gap: int = 5  # frames a lost face is held before the frame is left unchanged

    def __post_init__(self) -> None:
        check_choice("blend", self.blend, BLENDS)
        if self.max_side < 32 or self.bank_size < 16 or self.bank_frames < 1:
            raise ValueError("need max_side >= 32, bank_size >= 16 and bank_frames >= 1")
        if not 0.0 <= self.bank_margin <= 1.0:
            raise ValueError(f"bank_margin must be in [0, 1], got {self.bank_margin}")
        if not 0.2 <= self.mask_shrink <= 1.2:
            raise ValueError(f"mask_shrink must be in [0.2, 1.2], got {self.mask_shrink}")
        if not 0.0 <= self.feather <= 1.0:
            raise ValueError(f"feather must be in [0, 1], got {self.feather}")
        check_tracking(self)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> FaceSwapConfig:
        """The ``tiny`` or ``default`` preset with field overrides (unknown keys raise)."""
        return from_dict(cls, overrides, base=cls(**_PRESETS[check_preset(name)]))


_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {"max_side": 128, "bank_frames": 2, "bank_size": 64, "detect_side": 128},  # tests
}


class FaceBank(nn.Module):
    """Real faces to swap in, kept as buffers so that checkpoints carry them.

    ``faces`` ``(N, S, S, 3)`` uint8 crops; ``boxes`` ``(N, 4)`` the face box in each crop;
    ``eyes`` ``(N, 4)`` the eye centres (NaN when not found); ``identity`` ``(N,)`` the
    :func:`identity_key` of each face's parent video. The bank's size is only known after
    ``fit``, so loading a state dict first resizes the buffers.
    """

    faces: torch.Tensor
    boxes: torch.Tensor
    eyes: torch.Tensor
    identity: torch.Tensor

    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("faces", torch.zeros(0, size, size, 3, dtype=torch.uint8))
        self.register_buffer("boxes", torch.zeros(0, 4))
        self.register_buffer("eyes", torch.zeros(0, 4))
        self.register_buffer("identity", torch.zeros(0, dtype=torch.int64))

    def fill(
        self, faces: list[np.ndarray], boxes: list[Box], eyes: list[Eyes | None], ids: list[int]
    ) -> None:
        size = self.faces.shape[1]
        self.faces = torch.from_numpy(np.stack(faces)) if faces else self.faces[:0]
        self.boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        flat = [[math.nan] * 4 if e is None else [*e[0], *e[1]] for e in eyes]
        self.eyes = torch.tensor(flat, dtype=torch.float32).reshape(-1, 4)
        self.identity = torch.tensor(ids, dtype=torch.int64)
        assert self.faces.shape[1:] == (size, size, 3)

    def __len__(self) -> int:
        return int(self.identity.shape[0])

    def face(self, i: int) -> tuple[np.ndarray, Box, Eyes | None]:
        box = tuple(float(v) for v in self.boxes[i])
        e = [float(v) for v in self.eyes[i]]
        eyes = None if math.isnan(e[0]) else ((e[0], e[1]), (e[2], e[3]))
        return self.faces[i].cpu().numpy(), box, eyes  # type: ignore[return-value]

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for name in ("faces", "boxes", "eyes", "identity"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args)


class FaceSwap(Generator):
    """Swaps the main face of real clips for a real face of another identity."""

    family = "face_swap"
    modality = "video"
    conditional = True

    def __init__(self, name: str, config: FaceSwapConfig) -> None:
        super().__init__(name, config)
        self.nets["bank"] = FaceBank(config.bank_size)

    @property
    def bank(self) -> FaceBank:
        bank = self.nets["bank"]
        assert isinstance(bank, FaceBank)
        return bank

    def fit(self, source: Any, *, on_step: StepFn | None = None) -> FitReport:
        """Fill the face bank from ``source``'s clips (a ``VideoSource``): the main face in
        ``bank_frames`` evenly spaced frames of each clip, with the clip's parent as its
        identity. Learns nothing; ``steps`` counts the clips searched."""
        start = time.perf_counter()
        source = check_video_source(self.name, source)
        n = self._fill_bank(source, on_step=on_step)
        self.fit_report = FitReport(
            steps=len(source),
            seconds=time.perf_counter() - start,
            n_train=len(self.bank),
            final={"faces": float(len(self.bank)), "identities": float(n)},
        )
        return self.fit_report

    def _fill_bank(self, source: Any, *, on_step: StepFn | None) -> int:
        cfg: FaceSwapConfig = self.config
        faces: list[np.ndarray] = []
        boxes: list[Box] = []
        eyes: list[Eyes | None] = []
        ids: list[int] = []
        for i, item in enumerate(source.items, start=1):
            frames = item.load(max_side=cfg.max_side).frames
            picks = np.unique(np.linspace(0, len(frames) - 1, cfg.bank_frames).round().astype(int))
            for t in picks:
                box = main_face(frames[t], work_side=cfg.detect_side)
                if box is None:
                    continue
                crop, crop_box = square_crop(
                    frames[t], box, margin=cfg.bank_margin, size=cfg.bank_size
                )
                faces.append(crop)
                boxes.append(crop_box)
                eyes.append(find_eyes(crop, crop_box) if cfg.align_eyes else None)
                ids.append(identity_key(item.parent))
            if on_step is not None:
                on_step(i, len(source), {"faces": float(len(faces))})
        self.bank.fill(faces, boxes, eyes, ids)
        return len(set(ids))

    def choose_donor(self, parent: str, *, seed: int) -> int:
        """The bank face (index) swapped into a clip of ``parent`` for an item ``seed``: one
        of another identity, drawn with the seed."""
        others = np.flatnonzero(self.bank.identity.cpu().numpy() != identity_key(parent))
        if not len(others):
            raise ValueError(
                f"{self.name} has no face of an identity other than {parent!r}: fit it on "
                "clips of at least two people"
            )
        return int(others[np.random.default_rng(seed).integers(len(others))])

    def swap(self, clip: VideoClip, donor: int) -> VideoClip:
        """``clip`` with bank face ``donor`` on its tracked main face (same frames count,
        size, rate and audio); ``boxes`` says where each frame changed."""
        cfg: FaceSwapConfig = self.config
        face, face_box, face_eyes = self.bank.face(donor)
        height, width = clip.frames.shape[1:3]
        tracked = track_faces(
            clip.frames,
            alpha=cfg.track_alpha,
            max_gap=cfg.max_gap,
            every=cfg.detect_every,
            work_side=cfg.detect_side,
        )
        frames = clip.frames.copy()
        if cfg.align_eyes and face_eyes is not None and eyes_available():
            target_eyes = track_eyes(frames, tracked)
        else:
            target_eyes = [None] * len(frames)
        boxes: list[list[list[int]]] = []
        for t, target in enumerate(tracked):
            if target is None:
                boxes.append([])
                continue
            m = box_affine(face_box, target)
            eyes = target_eyes[t]
            if face_eyes is not None and eyes is not None:
                by_eyes = eyes_similarity(face_eyes, eyes)
                if plausible_eye_map(by_eyes, m):
                    m = by_eyes
            roi = roi_around(target, pad=ROI_PAD, width=width, height=height)
            frames[t], changed = swap_region(
                frames[t],
                warp_into(face, m, roi),
                target,
                origin=roi[:2],
                blend=cfg.blend,
                colour=cfg.colour_transfer,
                shrink=cfg.mask_shrink,
                feather=cfg.feather,
            )
            boxes.append([changed] if changed is not None else [])
        return VideoClip(
            frames=frames,
            fps=clip.fps,
            audio=clip.audio,
            sample_rate=clip.sample_rate,
            boxes=boxes,
        )

    def generate(self, n: int, *, seed: int, source: Any | None = None) -> Samples:
        """``n`` clips of ``source`` (picked with ``seed``), each with its main face swapped
        for a bank face of another identity; ``sources[i]`` is the real clip's id.

        Without ``fit`` (an empty bank), the bank is first filled from ``source`` itself.
        """
        source = check_video_source(self.name, source)
        if not len(self.bank):
            self._fill_bank(source, on_step=None)
        cfg: FaceSwapConfig = self.config
        items, videos, seeds = swap_clips(
            self.name,
            source,
            n,
            seed=seed,
            make=lambda item, s: self.swap(
                item.load(max_side=cfg.max_side), self.choose_donor(item.parent, seed=s)
            ),
        )
        return Samples(images=None, sources=[it.id for it in items], seeds=seeds, videos=videos)


@register("faceswap", family="face_swap")
def faceswap(*, preset: str = "default", **overrides: Any) -> FaceSwap:
    return FaceSwap("faceswap", FaceSwapConfig.preset(preset, **overrides))
