"""Detector model folders: ``model.safetensors`` (weights) plus ``card.json`` (everything else)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from detector.config import to_dict
from detector.models.registry import create

WEIGHTS = "model.safetensors"
CARD = "card.json"


def save_model(model: nn.Module, card: dict[str, Any], out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS))
    (out / CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return out


def read_card(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / CARD
    if not path.is_file():
        raise ValueError(f"{model_dir} is not a synthguard model folder (no {CARD})")
    card: dict[str, Any] = json.loads(path.read_text())
    return card


def load_model(model_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network from its card and load the weights (safetensors, never pickle)."""
    card = read_card(model_dir)
    model = create(card["architecture"], preset="default", **card["model_config"])
    model.load_state_dict(load_file(str(Path(model_dir) / WEIGHTS)))
    model.eval()
    return model, card


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    return to_dict(model.config)  # type: ignore[arg-type]
