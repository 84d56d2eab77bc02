"""Encoding video: frames and a voice track into MP4/MOV, Matroska/WebM or AVI (PyAV),
byte-for-byte reproducible. ``detector.media.video`` re-exports :func:`encode_video`."""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np

if TYPE_CHECKING:
    from detector.media.video import VideoClip

_MUXER = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi"}


def encode_video(
    clip: VideoClip,
    *,
    codec: str = "libx264",
    crf: int = 23,
    preset: str = "medium",
    bit_rate: int | None = None,
    container: str = "mp4",
    audio_codec: str = "aac",
    audio_bit_rate: int = 64_000,
    threads: int = 1,
) -> bytes:
    """Encode ``clip`` (yuv420p; an odd width or height loses its last pixel column or
    row) at ``clip.fps``, with its audio when it has one.

    ``crf``/``preset`` drive libx264 (and ``crf`` libvpx-vp9); ``bit_rate`` replaces
    ``crf`` when given. The same input gives the same bytes: the encoder runs on a fixed
    number of ``threads`` and the muxer in bit-exact mode (no random ids, no
    timestamps). MP4/MOV have their index first (faststart), so a cut copy still plays.
    """
    from detector.config import check_choice
    from detector.media.video_container import error_reason

    check_choice("container", container, _MUXER)
    for name in (codec, audio_codec):
        if name not in av.codecs_available:
            raise ValueError(f"unknown codec {name!r}; this FFmpeg has e.g. libx264, mpeg4, "
                             "libvpx-vp9, aac, libopus")  # fmt: skip
    frames = np.asarray(clip.frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"clip frames must be (T, H, W, 3) uint8 with T >= 1, not "
                         f"{frames.shape} {frames.dtype}")  # fmt: skip
    if not clip.fps > 0:
        raise ValueError(f"clip fps must be positive, not {clip.fps}")
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    if h < 2 or w < 2:
        raise ValueError(f"frames of {frames.shape[2]}x{frames.shape[1]} are too small to encode")
    rate = Fraction(clip.fps).limit_denominator(1001)
    mux_options = {"fflags": "+bitexact"}
    if container in ("mp4", "mov"):
        mux_options["movflags"] = "+faststart"
    with tempfile.TemporaryDirectory(prefix="synthguard-video-") as tmp:
        path = Path(tmp) / f"out.{container}"
        try:
            with av.open(str(path), "w", format=_MUXER[container], options=mux_options) as out:
                _encode_into(out, frames[:, :h, :w], rate, clip, codec=codec, crf=crf,
                             preset=preset, bit_rate=bit_rate, threads=threads,
                             audio_codec=audio_codec, audio_bit_rate=audio_bit_rate)  # fmt: skip
        except (av.FFmpegError, ValueError) as exc:  # e.g. a codec the container cannot hold
            raise ValueError(
                f"cannot encode {codec}/{audio_codec} in {container} ({error_reason(exc)})"
            ) from None
        return path.read_bytes()


def _encode_into(
    out: Any,
    frames: np.ndarray,
    rate: Fraction,
    clip: VideoClip,
    *,
    codec: str,
    crf: int,
    preset: str,
    bit_rate: int | None,
    threads: int,
    audio_codec: str,
    audio_bit_rate: int,
) -> None:
    video = out.add_stream(codec, rate=rate)
    video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    options = {"threads": str(threads)}
    if codec in ("libx264", "libx265"):
        options["preset"] = preset
        if bit_rate is None:
            options["crf"] = str(crf)
    elif codec == "libvpx-vp9":
        options |= {"deadline": "good", "cpu-used": "4", "row-mt": "0"}
        if bit_rate is None:
            options["crf"] = str(crf)
            video.bit_rate = 0  # constant quality
    elif bit_rate is None:  # codecs without a quality knob: about 0.1 bit per pixel
        bit_rate = max(100_000, int(0.1 * frames.shape[1] * frames.shape[2] * float(rate)))
    if bit_rate is not None:
        video.bit_rate = bit_rate
    video.options = options
    audio = None
    if clip.audio is not None:
        audio = out.add_stream(audio_codec, rate=clip.sample_rate, layout="mono")
        audio.bit_rate = audio_bit_rate
    tb = Fraction(1, 1) / rate
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = i, tb
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    if audio is not None and clip.audio is not None:
        samples = np.clip(np.asarray(clip.audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
        block = clip.sample_rate  # one second per frame handed to the encoder
        for start in range(0, len(samples), block):
            chunk = np.ascontiguousarray(samples[None, start : start + block])
            piece = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            piece.sample_rate = clip.sample_rate
            piece.pts, piece.time_base = start, Fraction(1, clip.sample_rate)
            out.mux(audio.encode(piece))
        out.mux(audio.encode(None))
