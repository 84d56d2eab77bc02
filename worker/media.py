"""Which detector a file goes to, and the cheap header check at upload time.

Recordings are recognised by content (their container's signature); everything else is
treated as an image, whose decoder then names what is wrong with it.
"""

from __future__ import annotations

from detector.identity import ModelIdentity
from detector.media import ImageLimits, MediaError, probe_image
from detector.media.audio import AudioLimits, probe_audio, sniff_audio_format
from worker.settings import Settings

KINDS = ("image", "audio")


def media_kind(head: bytes) -> str:
    """``audio`` for a recognised audio container, else ``image``."""
    return "audio" if sniff_audio_format(head[:16]) else "image"


def audio_limits(settings: Settings) -> AudioLimits:
    return AudioLimits(max_bytes=settings.max_upload_bytes, max_seconds=settings.max_audio_seconds)


def check_upload(data: bytes, settings: Settings, models: dict[str, ModelIdentity]) -> str:
    """Parse the header (no full decode) and return the media kind; raises ``MediaError``
    for an empty, unsupported, oversized or unparsable file, or a recording when this
    server has no voice model."""
    kind = media_kind(data)
    if kind == "audio":
        if "audio" not in models:
            raise MediaError(
                "unsupported_media",
                "this server has no voice model (set SYNTHGUARD_AUDIO_MODEL to a model folder)",
            )
        probe_audio(data, limits=audio_limits(settings))
    else:
        probe_image(data, limits=ImageLimits(max_bytes=settings.max_upload_bytes))
    return kind
