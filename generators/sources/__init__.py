"""Real sources: ``starter`` (media installed packages carry) or a user's folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from generators.sources.audio import (
    AudioSource,
    Utterance,
    audio_folder_source,
    audio_starter_source,
)
from generators.sources.base import DEFAULT_SCALES, Crop, RealItem, RealSource, Skipped
from generators.sources.folder import folder_source
from generators.sources.starter import starter_source
from generators.sources.video import (
    VideoItem,
    VideoSource,
    open_video_folder,
    pan_zoom_clip,
    starter_video_source,
)


def open_source(
    spec: str,
    *,
    modality: str = "image",
    on_file: Callable[[int, Path], None] | None = None,
    clip_seconds: float = 4.0,
    max_clips: int = 8,
) -> RealSource | AudioSource | VideoSource:
    """``"starter"`` or a folder path, read as images, speech or video (cut into clips of
    ``clip_seconds``, at most ``max_clips`` a video)."""
    if modality == "video":
        if spec == "starter":
            return starter_video_source()
        return open_video_folder(spec, clip_seconds=clip_seconds, max_clips=max_clips,
                                 on_file=on_file)  # fmt: skip
    if modality == "audio":
        if spec == "starter":
            return audio_starter_source()
        return audio_folder_source(spec, on_file=on_file)
    if modality != "image":
        raise ValueError(
            f"unknown modality {modality!r}; valid values: ['image', 'audio', 'video']"
        )
    if spec == "starter":
        return starter_source()
    return folder_source(spec, on_file=on_file)


__all__ = [
    "DEFAULT_SCALES",
    "AudioSource",
    "Crop",
    "RealItem",
    "RealSource",
    "Skipped",
    "Utterance",
    "VideoItem",
    "VideoSource",
    "audio_folder_source",
    "audio_starter_source",
    "folder_source",
    "open_source",
    "open_video_folder",
    "pan_zoom_clip",
    "starter_source",
    "starter_video_source",
]
