"""The models a process scores with: loaded once per process (a Celery child after fork,
or the API process in the embedded default), on CUDA when present."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from detector.identity import ModelIdentity, default_model_dir, model_identity
from worker.settings import Settings

if TYPE_CHECKING:
    from detector.inference import Detector
    from detector.inference.video import VideoDetector
    from detector.inference.voice import VoiceDetector


_D = TypeVar("_D", bound="Detector")

_IDENTITY_TTL_S = 1.0  # every request asks; a changed model is seen within a second


@dataclass(frozen=True)
class _Models:
    active: dict[str, ModelIdentity]  # modality -> the model that scores it
    shadow: dict[str, ModelIdentity]  # modality -> the store version scored in shadow


_identities: dict[tuple[str, Path | None, Path | None, Path | None], tuple[float, _Models]] = {}


def _optional(active: dict[str, Path], configured: Path | None, modality: str) -> Path | None:
    """The store's active version, else the configured folder, else the shipped model
    if the package has one (voice and video models may not ship)."""
    folder = active.get(modality) or configured
    if folder is None:
        shipped = default_model_dir(modality)
        folder = shipped if (shipped / "card.json").is_file() else None
    return folder


def _models(settings: Settings) -> _Models:
    """The active and shadow models, from one read of the store (at most once a second
    per process): the store's active versions, else the settings, else the models
    shipped with the package (no voice or video model when none is)."""
    from worker.model_store import store_paths

    key = (settings.sqlalchemy_url, settings.image_model, settings.audio_model,
           settings.video_model)  # fmt: skip
    now = time.monotonic()
    hit = _identities.get(key)
    if hit is not None and now - hit[0] < _IDENTITY_TTL_S:
        return hit[1]
    active, shadow = store_paths(settings)
    image = active.get("image") or settings.image_model or default_model_dir("image")
    models = {"image": model_identity(image, modality="image")}
    for modality, configured in (("audio", settings.audio_model), ("video", settings.video_model)):
        folder = _optional(active, configured, modality)
        if folder is not None:
            models[modality] = model_identity(folder, modality=modality)
    found = _Models(
        active=models,
        shadow={m: model_identity(p, modality=m) for m, p in shadow.items()},
    )
    _identities[key] = (now, found)
    return found


def active_models(settings: Settings) -> dict[str, ModelIdentity]:
    """Modality -> the identity of the model that scores it (no torch needed). ``audio``
    (``video``) is absent when no voice (video) model is active, configured or shipped.

    Read at most once a second per process (the store's active versions come from the
    database), so a promotion reaches every worker between two batches.
    """
    return _models(settings).active


def shadow_models(settings: Settings) -> dict[str, ModelIdentity]:
    """Modality -> the store version scored in shadow next to the active one (if any)."""
    return _models(settings).shadow


@dataclass
class Runtime:
    image: Detector
    audio: VoiceDetector | None
    device: str
    shadows: dict[str, Detector] = field(default_factory=dict)  # modality -> detector
    video: VideoDetector | None = None

    def detector(self, kind: str) -> Detector:
        if kind == "audio":
            if self.audio is None:
                raise RuntimeError("no voice model is loaded")
            return self.audio
        if kind == "video":
            if self.video is None:
                raise RuntimeError("no video model is loaded")
            return self.video
        return self.image


_lock = threading.Lock()
# By model folders: a new active model loads beside the old one.
_runtimes: dict[tuple[Path, Path | None, Path | None, tuple[tuple[str, Path], ...]], Runtime] = {}


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
    models = active_models(settings)
    image = models["image"].folder.resolve()
    audio = models["audio"].folder.resolve() if "audio" in models else None
    video = models["video"].folder.resolve() if "video" in models else None
    shadows = tuple(sorted((m, i.folder.resolve()) for m, i in shadow_models(settings).items()))
    key = (image, audio, video, shadows)
    with _lock:
        if key not in _runtimes:
            from detector.inference import Detector
            from detector.inference.video import VideoDetector
            from detector.inference.voice import VoiceDetector

            device = device or pick_device()
            voice = _load(audio, VoiceDetector, "voice", device) if audio is not None else None
            film = _load(video, VideoDetector, "video", device) if video is not None else None
            _runtimes[key] = Runtime(
                image=Detector.load(image, device=device),
                audio=voice,
                device=device,
                shadows={
                    m: _limited(Detector.load(folder, device=device), settings)
                    for m, folder in shadows
                },
                video=film,
            )
            for det in (voice, film):
                if det is not None:
                    _limited(det, settings)
        return _runtimes[key]


def _load(folder: Path, cls: type[_D], what: str, device: str) -> _D:
    from detector.inference import Detector

    det = Detector.load(folder, device=device)
    if not isinstance(det, cls):
        raise ValueError(f"{folder} is not a {what} model (its card says {det.modality})")
    return det


def _limited(det: Detector, settings: Settings) -> Detector:
    """The service's limits on a detector's input (duration, bytes)."""
    from detector.inference.video import VideoDetector
    from detector.inference.voice import VoiceDetector
    from worker.media import audio_limits, video_limits

    if isinstance(det, VoiceDetector):
        det.audio_limits = audio_limits(settings)
    elif isinstance(det, VideoDetector):
        det.video_limits = video_limits(settings)
    return det
