"""The final encoding every corpus item goes through, real and synthetic alike.

Same size, same mix of formats, same JPEG quality distribution: otherwise a
detector learns the file instead of the generator. The encoding of an item is
drawn from a generator seeded by the corpus seed and the item's id, never by
its label.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

FORMATS = ("png", "jpeg")


@dataclass(frozen=True)
class EncodingConfig:
    size: int = 64  # every item is size x size pixels
    jpeg_fraction: float = 0.7  # share of JPEG files; the rest are PNG
    jpeg_quality: tuple[int, int] = (70, 100)  # uniform, inclusive: the range of photo sharing

    def __post_init__(self) -> None:
        if not 0.0 <= self.jpeg_fraction <= 1.0:
            raise ValueError(f"jpeg_fraction must be in [0, 1], got {self.jpeg_fraction}")
        lo, hi = self.jpeg_quality
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"jpeg_quality must satisfy 1 <= low <= high <= 100, got {lo}-{hi}")
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")


@dataclass(frozen=True)
class Encoding:
    format: str  # "png" | "jpeg"
    quality: int | None  # JPEG quality, None for PNG

    @property
    def extension(self) -> str:
        return ".jpg" if self.format == "jpeg" else ".png"

    def to_dict(self) -> dict[str, object]:
        return {"format": self.format, "quality": self.quality, "encoder": "pillow"}


def choose_encoding(config: EncodingConfig, *, corpus_seed: int, item_id: str) -> Encoding:
    """The encoding of one item: a function of (seed, id) only, so it is label-blind."""
    digest = hashlib.sha256(f"{corpus_seed}:{item_id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    if rng.random() < config.jpeg_fraction:
        lo, hi = config.jpeg_quality
        return Encoding("jpeg", int(rng.integers(lo, hi + 1)))
    return Encoding("png", None)


def encode_image(image: np.ndarray, encoding: Encoding) -> bytes:
    """Encode ``(H, W, 3)`` uint8 RGB pixels; deterministic bytes for the same input."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 pixels, got {image.shape} {image.dtype}")
    buf = io.BytesIO()
    pil = Image.fromarray(image, mode="RGB")
    if encoding.format == "jpeg":
        pil.save(buf, format="JPEG", quality=encoding.quality, subsampling="4:2:0")
    else:
        pil.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


# --- audio --------------------------------------------------------------------------------

AUDIO_FORMATS = ("flac", "mp3", "opus")


@dataclass(frozen=True)
class AudioEncodingConfig:
    """The final encoding of audio items: 16 kHz mono, a label-blind mix of lossless FLAC
    and the lossy codecs speech travels through (MP3, Opus), bitrates drawn per item."""

    sample_rate: int = 16_000
    mp3_fraction: float = 0.3
    mp3_kbps: tuple[int, int] = (48, 128)
    opus_fraction: float = 0.2
    opus_kbps: tuple[int, int] = (24, 64)

    def __post_init__(self) -> None:
        if self.sample_rate != 16_000:
            raise ValueError("audio corpora are 16 kHz (the detectors' one sample rate)")
        if self.mp3_fraction < 0 or self.opus_fraction < 0:
            raise ValueError("codec fractions must be >= 0")
        if self.mp3_fraction + self.opus_fraction > 1:
            raise ValueError("mp3_fraction + opus_fraction must be at most 1")
        for name, (lo, hi) in (("mp3_kbps", self.mp3_kbps), ("opus_kbps", self.opus_kbps)):
            if not 6 <= lo <= hi <= 320:
                raise ValueError(f"{name} must satisfy 6 <= low <= high <= 320, got {lo}-{hi}")


@dataclass(frozen=True)
class AudioEncoding:
    format: str  # "flac" | "mp3" | "opus"
    bitrate_kbps: int | None  # None for FLAC

    @property
    def extension(self) -> str:
        return {"flac": ".flac", "mp3": ".mp3", "opus": ".opus"}[self.format]

    def to_dict(self) -> dict[str, object]:
        return {"format": self.format, "bitrate_kbps": self.bitrate_kbps, "encoder": "libsndfile"}


def choose_audio_encoding(
    config: AudioEncodingConfig, *, corpus_seed: int, item_id: str
) -> AudioEncoding:
    """The encoding of one clip: a function of (seed, id) only, so it is label-blind."""
    digest = hashlib.sha256(f"{corpus_seed}:{item_id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    u = rng.random()
    if u < config.mp3_fraction:
        return AudioEncoding("mp3", int(rng.integers(config.mp3_kbps[0], config.mp3_kbps[1] + 1)))
    if u < config.mp3_fraction + config.opus_fraction:
        lo, hi = config.opus_kbps
        return AudioEncoding("opus", int(rng.integers(lo, hi + 1)))
    return AudioEncoding("flac", None)


def encode_clip(samples: np.ndarray, sample_rate: int, encoding: AudioEncoding) -> bytes:
    """Encode a mono float clip (through the one audio codec path, detector.media.audio)."""
    from detector.media.audio import encode_audio

    if encoding.format == "flac":
        return encode_audio(samples, sample_rate, "flac")
    return encode_audio(samples, sample_rate, encoding.format, bitrate_kbps=encoding.bitrate_kbps)


# --- video --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoEncodingConfig:
    """The final encoding of video items: H.264 in MP4 with an AAC voice track.

    Real clips are cut from the source videos (``clip_seconds``, at most ``max_clips``
    per video) and downscaled so the longer side is at most ``max_side``. The encoding
    (the CRF) is drawn per *real* clip, and every synthetic clip made from it is
    encoded exactly like it: same codec, quality, frame rate and audio bitrate.
    """

    max_side: int = 384
    clip_seconds: float = 4.0
    max_clips: int = 8
    codec: str = "libx264"
    crf: tuple[int, int] = (18, 30)  # uniform, inclusive: from near-lossless to streaming
    x264_preset: str = "medium"
    audio_kbps: int = 64

    def __post_init__(self) -> None:
        if self.max_side < 32:
            raise ValueError(f"max_side must be at least 32 pixels, got {self.max_side}")
        if self.clip_seconds <= 0 or self.max_clips < 1:
            raise ValueError("clip_seconds must be > 0 and max_clips at least 1")
        lo, hi = self.crf
        if not 0 <= lo <= hi <= 51:
            raise ValueError(f"crf must satisfy 0 <= low <= high <= 51, got {lo}-{hi}")
        if not 8 <= self.audio_kbps <= 320:
            raise ValueError(f"audio_kbps must be in [8, 320], got {self.audio_kbps}")


@dataclass(frozen=True)
class VideoEncoding:
    codec: str
    crf: int
    x264_preset: str
    audio_kbps: int

    @property
    def extension(self) -> str:
        return ".mp4"

    def to_dict(self) -> dict[str, object]:
        return {
            "format": "mp4",
            "codec": self.codec,
            "crf": self.crf,
            "preset": self.x264_preset,
            "audio_kbps": self.audio_kbps,
            "encoder": "pyav",
        }


def choose_video_encoding(
    config: VideoEncodingConfig, *, corpus_seed: int, source_item: str
) -> VideoEncoding:
    """The encoding of a real clip and of every clip made from it: a function of (seed,
    real clip id) only, so it is label-blind."""
    digest = hashlib.sha256(f"{corpus_seed}:{source_item}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    lo, hi = config.crf
    return VideoEncoding(config.codec, int(rng.integers(lo, hi + 1)), config.x264_preset,
                         config.audio_kbps)  # fmt: skip


def encode_video_item(clip: object, encoding: VideoEncoding) -> bytes:
    """Encode a ``VideoClip`` (through the one video path, detector.media.video)."""
    from detector.media.video import VideoClip, encode_video

    assert isinstance(clip, VideoClip)
    return encode_video(
        clip,
        codec=encoding.codec,
        crf=encoding.crf,
        preset=encoding.x264_preset,
        audio_bit_rate=encoding.audio_kbps * 1000,
    )
