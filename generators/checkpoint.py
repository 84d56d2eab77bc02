"""Generator checkpoints: ``model.safetensors`` plus ``config.json`` (the resolved config)."""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from generators.base import FitReport, Generator

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save_generator(gen: Generator, out_dir: str | Path, **extra: Any) -> Path:
    """Write weights and the resolved config (plus ``extra`` facts, e.g. the real source)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in gen.nets.state_dict().items()}
    save_file(state, str(out / WEIGHTS))
    meta = gen.describe()
    meta["fit"] = dataclasses.asdict(gen.fit_report) if gen.fit_report else None
    meta["versions"] = {"torch": torch.__version__, "python": platform.python_version()}
    meta.update(extra)
    (out / CONFIG).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out


def read_checkpoint_meta(ckpt_dir: str | Path) -> dict[str, Any]:
    path = Path(ckpt_dir) / CONFIG
    if not path.is_file():
        raise ValueError(f"{ckpt_dir} is not a generator checkpoint (no {CONFIG})")
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta


def load_generator(ckpt_dir: str | Path, *, map_location: str = "cpu") -> Generator:
    """Rebuild the generator from its saved config and load its weights (safetensors only)."""
    from generators.registry import create

    meta = read_checkpoint_meta(ckpt_dir)
    gen = create(meta["name"], preset="default", **meta["config"])
    if gen.config_hash != meta["config_hash"]:
        raise ValueError(f"{ckpt_dir}: config does not match its recorded hash")
    gen.nets.load_state_dict(load_file(str(Path(ckpt_dir) / WEIGHTS), device=map_location))
    if meta.get("fit"):
        gen.fit_report = FitReport(**meta["fit"])
    return gen
