"""A model folder's identity (name, version, card) without loading torch.

The API needs it to answer a repeated upload from the stored result of the same model;
the workers need the same answer when they write that result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MODALITIES = ("image", "audio", "video")


@dataclass(frozen=True)
class ModelIdentity:
    modality: str
    name: str
    version: str
    folder: Path
    card: dict[str, Any]


def default_model_dir(modality: str) -> Path:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
    return WEIGHTS_DIR / modality


def model_identity(folder: str | Path, *, modality: str = "image") -> ModelIdentity:
    """Name from the card (its architecture, else the folder), version from the card (else
    the weights' hash).

    Cached by the files' size and modification time: the service asks on every request,
    and hashing the weights takes milliseconds.
    """
    folder = Path(folder).resolve()
    card_path = folder / "card.json"
    weights = folder / "model.safetensors"
    try:
        c, w = card_path.stat(), weights.stat()
    except FileNotFoundError:
        raise ValueError(
            f"{folder} is not a model folder (needs card.json and model.safetensors)"
        ) from None
    stamp = (c.st_mtime_ns, c.st_size, w.st_mtime_ns, w.st_size)
    return _identity(folder, modality, stamp)


@lru_cache(maxsize=64)
def _identity(folder: Path, modality: str, _stamp: tuple[int, ...]) -> ModelIdentity:
    card_path = folder / "card.json"
    weights = folder / "model.safetensors"
    card: dict[str, Any] = json.loads(card_path.read_text())
    version = card.get("version")
    if not version:
        digest = hashlib.sha256()
        with weights.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        version = digest.hexdigest()[:12]
    return ModelIdentity(
        modality=modality,
        name=str(card.get("name") or card.get("architecture") or folder.name),
        version=str(version),
        folder=folder,
        card=card,
    )
