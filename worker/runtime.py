"""The models a process scores with: loaded once per process (a Celery child after fork,
or the API process in the embedded default), on CUDA when present."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from detector.identity import ModelIdentity, default_model_dir, model_identity
from worker.settings import Settings

if TYPE_CHECKING:
    from detector.inference import Detector


_IDENTITY_TTL_S = 1.0  # every request asks; a changed model is seen within a second
_identities: dict[Path, tuple[float, dict[str, ModelIdentity]]] = {}


def active_models(settings: Settings) -> dict[str, ModelIdentity]:
    """Modality -> the identity of the model that scores it (no torch needed)."""
    folder = settings.image_model or default_model_dir("image")
    now = time.monotonic()
    hit = _identities.get(folder)
    if hit is not None and now - hit[0] < _IDENTITY_TTL_S:
        return hit[1]
    models = {"image": model_identity(folder, modality="image")}
    _identities[folder] = (now, models)
    return models


@dataclass
class Runtime:
    image: Detector
    device: str


_lock = threading.Lock()
_runtimes: dict[Path, Runtime] = {}  # by model folder: a new active model loads beside


def configure_torch(*, threads: int, processes: int = 1) -> None:
    """Set the intra-op thread count deliberately: cores are shared among worker processes."""
    import torch

    if threads <= 0:
        threads = max(1, (os.cpu_count() or 1) // max(1, processes))
    torch.set_num_threads(threads)


def pick_device(process_index: int = 0) -> str:
    """``cuda:i`` for the i-th worker process (one process per GPU), else ``cpu``.

    Call it in the process that will use the device (after the fork): asking CUDA in
    the parent would make a context that forked children cannot use.
    """
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{process_index % torch.cuda.device_count()}"


def get_runtime(settings: Settings, *, device: str | None = None) -> Runtime:
    """Load the active models once per process (on ``device``, default :func:`pick_device`);
    later calls with the same active models return the same objects."""
    folder = active_models(settings)["image"].folder.resolve()
    with _lock:
        if folder not in _runtimes:
            from detector.inference import Detector

            device = device or pick_device()
            _runtimes[folder] = Runtime(image=Detector.load(folder, device=device), device=device)
        return _runtimes[folder]
