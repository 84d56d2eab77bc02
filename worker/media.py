"""Which detector a file goes to, and the cheap header check at upload time.

Recordings and videos are recognised by content (their container's signature; audio
first, so a WAV is never taken for an AVI); everything else is treated as an image,
whose decoder then names what is wrong with it. An MP4 with only a sound track is
sniffed as video and refused by the video probe (``unsupported_media``: no video track).
"""

from __future__ import annotations

from pathlib import Path

from detector.identity import ModelIdentity
from detector.media import ImageLimits, MediaError, probe_image
from detector.media.audio import AudioLimits, probe_audio, sniff_audio_format
from detector.media.video import probe_video
from detector.media.video_container import VideoLimits, sniff_video_format
from worker.settings import Settings

KINDS = ("image", "audio", "video")

# Image signatures: a GIF starts with 0x47, as an MPEG-TS packet does; an image whose
# 189th byte happens to be 0x47 too must not be sniffed as a transport stream.
_IMAGE_MAGIC = (b"GIF87a", b"GIF89a")


HEAD_BYTES = 1024  # a file's first bytes: enough to tell every container


def media_kind(head: bytes) -> str:
    """``audio`` for a recognised audio container, ``video`` for a video container, else
    ``image``. ``head``: the file's first ``HEAD_BYTES`` bytes."""
    if sniff_audio_format(head[:16]):
        return "audio"
    if not head.startswith(_IMAGE_MAGIC) and sniff_video_format(head[:HEAD_BYTES]):
        return "video"
    return "image"


def audio_limits(settings: Settings) -> AudioLimits:
    return AudioLimits(max_bytes=settings.max_upload_bytes, max_seconds=settings.max_audio_seconds)


def video_limits(settings: Settings) -> VideoLimits:
    return VideoLimits(
        max_bytes=settings.max_video_upload_bytes, max_seconds=settings.max_video_seconds
    )


_NO_MODEL = {
    "audio": "voice model (set SYNTHGUARD_AUDIO_MODEL to a model folder)",
    "video": "video model (set SYNTHGUARD_VIDEO_MODEL to a model folder)",
}


def no_model_error(kind: str) -> MediaError:
    """The refusal of a recording or a video on a server without a model for it."""
    return MediaError("unsupported_media", f"this server has no {_NO_MODEL[kind]}")


def check_upload(data: bytes | Path, settings: Settings, models: dict[str, ModelIdentity]) -> str:
    """Parse the header (no full decode) and return the media kind; raises ``MediaError``
    for an empty, unsupported, oversized or unparsable file, or a recording or a video
    when this server has no model for it. ``data``: the bytes, or a file (a video
    upload, streamed to disk)."""
    if isinstance(data, Path):
        with data.open("rb") as f:
            kind = media_kind(f.read(HEAD_BYTES))
        if kind != "video":
            data = data.read_bytes()
    else:
        kind = media_kind(data)
    if kind in _NO_MODEL and kind not in models:
        raise no_model_error(kind)
    if kind == "audio":
        probe_audio(data, limits=audio_limits(settings))
    elif kind == "video":
        probe_video(data, limits=video_limits(settings))
    else:
        probe_image(data, limits=ImageLimits(max_bytes=settings.max_upload_bytes))
    return kind
