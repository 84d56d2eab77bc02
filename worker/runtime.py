"""The models a process scores with: loaded once per process (a Celery child after fork,
or the API process in the embedded default), on CUDA when present."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detector.identity import ModelIdentity, default_model_dir, model_identity
from worker.settings import Settings

if TYPE_CHECKING:
    from detector.inference import Detector


def active_models(settings: Settings) -> dict[str, ModelIdentity]:
    """Modality -> the identity of the model that scores it (no torch needed)."""
    folder = settings.image_model or default_model_dir("image")
    return {"image": model_identity(folder, modality="image")}


@dataclass
class Runtime:
    image: Detector
    device: str


_lock = threading.Lock()
_runtime: Runtime | None = None


def configure_torch(*, threads: int, processes: int = 1) -> None:
    """Set the intra-op thread count deliberately: cores are shared among worker processes."""
    import torch

    if threads <= 0:
        threads = max(1, (os.cpu_count() or 1) // max(1, processes))
    torch.set_num_threads(threads)


def get_runtime(settings: Settings) -> Runtime:
    """Load the active models once; later calls return the same objects."""
    global _runtime
    with _lock:
        if _runtime is None:
            import torch

            from detector.inference import Detector

            device = "cuda" if torch.cuda.is_available() else "cpu"
            folder = active_models(settings)["image"].folder
            _runtime = Runtime(image=Detector.load(folder, device=device), device=device)
        return _runtime


def reset_runtime() -> None:
    """Forget loaded models (tests; a promotion re-reads the store)."""
    global _runtime
    with _lock:
        _runtime = None
