"""Batched crop scoring: many images -> crops -> one forward pass per batch -> per-image logits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from detector.inference.crops import grid_crops


@dataclass
class ImageLogits:
    logit: float  # mean of the crop logits: the image's evidence
    crop_logits: list[float]
    boxes: list[tuple[int, int, int, int]]  # (x, y, w, h) of each crop


def to_batch(crops: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)


@torch.inference_mode()
def score_pixels(
    model: nn.Module,
    images: Sequence[np.ndarray],
    *,
    size: int,
    max_crops: int = 16,
    batch_size: int = 256,
) -> list[ImageLogits]:
    """Grid-crop every image, run the crops through ``model`` in batches, regroup per image."""
    if model.training:  # eval() walks every module: ~1 ms a call on a small net
        model.eval()
    device = next(model.parameters()).device
    all_crops: list[np.ndarray] = []
    owners: list[int] = []
    boxes: list[list[tuple[int, int, int, int]]] = []
    for i, img in enumerate(images):
        crops, b = grid_crops(img, size, max_crops=max_crops)
        all_crops.append(crops)
        owners.extend([i] * len(crops))
        boxes.append(b)
    if not all_crops:
        return []
    stacked = np.concatenate(all_crops)
    logits = np.empty(len(stacked), dtype=np.float64)
    for start in range(0, len(stacked), batch_size):
        x = to_batch(stacked[start : start + batch_size]).to(device)
        logits[start : start + len(x)] = model(x).double().cpu().numpy()
    out: list[ImageLogits] = []
    pos = 0
    for i in range(len(images)):
        n = len(boxes[i])
        crop_logits = logits[pos : pos + n]
        pos += n
        out.append(ImageLogits(float(crop_logits.mean()), crop_logits.tolist(), boxes[i]))
    return out


def mean_logits(
    model: nn.Module, images: Sequence[np.ndarray], *, size: int, max_crops: int = 16
) -> np.ndarray:
    """``(N,)`` image logits (the mean over each image's crops)."""
    return np.array([r.logit for r in score_pixels(model, images, size=size, max_crops=max_crops)])
