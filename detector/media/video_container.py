"""Identifying and opening a video file: its container by content, size limits, FFmpeg.

The demuxer FFmpeg uses is the one the content names, so a file cannot steer FFmpeg
into a playlist or another protocol. ``detector.media.video`` builds the reader on it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from detector.media.errors import MediaError
from detector.media.files import size_and_head

VideoSource = str | Path | bytes  # a path or the file's bytes
VIDEO_FORMATS = ("mp4", "mov", "m4v", "3gp", "mkv", "webm", "avi", "ts", "flv", "asf", "mpeg")
# The FFmpeg demuxer each sniffed format is opened with (never FFmpeg's own guess).
_DEMUXER = {
    "mp4": "mov",
    "mov": "mov",
    "m4v": "mov",
    "3gp": "mov",
    "mkv": "matroska",
    "webm": "matroska",
    "avi": "avi",
    "ts": "mpegts",
    "flv": "flv",
    "asf": "asf",
    "mpeg": "mpeg",
}
_HEAD = 1024  # bytes read for sniffing
# ISO-BMFF brands of still images (HEIF/AVIF/JPEG in a box), not video.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
                 b"avif", b"avis", b"avci", b"crx "}  # fmt: skip
_ASF_GUID = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 2 * 1024**3  # too_large
    max_seconds: float = 3 * 3600.0  # too_long: a 2-hour file is fine (streamed), 10 hours not
    max_pixels: int = 3840 * 2160  # per frame: 4K; 8K frames are too_large
    max_frames: int = 1_000_000  # too_long


def sniff_video_format(head: bytes) -> str | None:
    """The container named by the first bytes (up to 1 KiB), or ``None`` when not video."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        if brand == b"qt  ":
            return "mov"
        if brand.startswith((b"3gp", b"3g2")):
            return "3gp"
        if brand in (b"M4V ", b"M4VH", b"M4VP"):
            return "m4v"
        return "mp4"
    size = int.from_bytes(head[:4], "big") if len(head) >= 8 else 0
    if (size >= 8 or size == 1) and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"pnot"):
        return "mov"  # QuickTime without an ftyp box
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head[:64] else "mkv"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    if head[:3] == b"FLV" and len(head) > 3 and head[3] == 1:
        return "flv"
    if head[:16] == _ASF_GUID:
        return "asf"
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "ts"
    if len(head) > 196 and head[4] == 0x47 and head[196] == 0x47:
        return "ts"  # M2TS: 192-byte packets (a 4-byte timecode before each)
    return None


def open_container(src: VideoSource, limits: VideoLimits) -> tuple[Any, str, int]:
    """Check size and signature, then open with the demuxer the content names."""
    n_bytes, head = size_and_head(src, _HEAD, limits.max_bytes)
    if isinstance(src, bytes | bytearray | memoryview):
        file: Any = io.BytesIO(bytes(src))
    else:  # the file protocol, whatever the name says
        file = "file:" + str(Path(src).resolve())
    fmt = sniff_video_format(head)
    if fmt is None:
        raise MediaError(
            "unsupported_media",
            f"not a supported video file (supported: {', '.join(VIDEO_FORMATS)}, by content)",
        )
    try:
        container = av.open(file, format=_DEMUXER[fmt], options={"protocol_whitelist": "file"})
    except Exception as exc:  # FFmpeg's errors, and PyAV's on a header it cannot parse
        raise MediaError(
            "corrupt_media",
            f"the file starts like {fmt.upper()} video but cannot be read ({error_reason(exc)})",
        ) from None
    return container, fmt, n_bytes


def _binary(src: VideoSource) -> Any:
    if isinstance(src, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(src))
    return Path(src).open("rb")


def boxes_complete(src: VideoSource) -> bool:
    """Whether an ISO-BMFF file's top-level boxes end exactly at the end of the file
    (a file cut short has a last box that claims more bytes than there are)."""
    try:
        with _binary(src) as f:
            end = f.seek(0, io.SEEK_END)
            pos = 0
            while pos < end:
                f.seek(pos)
                head = f.read(16)
                if len(head) < 8:
                    return False
                size = int.from_bytes(head[:4], "big")
                if size == 1 and len(head) == 16:
                    size = int.from_bytes(head[8:16], "big")
                elif size == 0:  # the last box runs to the end of the file
                    return True
                if size < 8:
                    return False
                pos += size
            return pos == end
    except OSError:
        return False


def error_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().rstrip(".")


def is_picture(stream: Any) -> bool:
    """A cover picture attached to an audio file is a video stream, not video."""
    return bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))


def seconds_at(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def duration_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.1f} s"


def demuxed_duration(src: VideoSource, limits: VideoLimits) -> float:
    """The duration from the packets' timestamps, for a header without one (no decoding)."""
    container, _fmt, _n = open_container(src, limits)
    with container:
        stream = next((s for s in container.streams.video if not is_picture(s)), None)
        if stream is None:
            return 0.0
        tb, end, start = stream.time_base, None, None
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                stop = packet.pts + (packet.duration or 0)
                end = stop if end is None else max(end, stop)
                start = packet.pts if start is None else min(start, packet.pts)
        except Exception:
            pass  # damaged from here: what was read counts
        if end is None or start is None:
            return 0.0
        return float((end - start) * tb)
