"""The one place that decodes, validates and encodes video (PyAV).

Accepts MP4/MOV/M4V/3GP, Matroska/WebM, AVI, MPEG-TS, FLV, ASF and MPEG-PS, identified
by content rather than file extension; the demuxer FFmpeg uses is the one the content
names, so a file cannot steer FFmpeg into a playlist or another protocol.

Everything is streamed: frames are decoded one at a time and turned into RGB only when
they are kept; sparse sampling of a long file seeks from keyframe to keyframe instead
of decoding everything. Limits are checked on the header before any frame is decoded
(a 10-hour file is refused at once) and again on what is decoded (a header that lies
is caught when the decoded time passes the limit).

A file cut short (a truncated download) yields the frames before the cut, as media
players do; a file of which nothing decodes is ``corrupt_media``. Rotation metadata
(the display matrix phones write) is applied: frames come out upright.

:class:`VideoClip` is what sources and generators exchange: a short clip in memory.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from detector.media.errors import MediaError

SAMPLE_RATE = 16_000  # the voice track, as the voice detector reads it

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
_MAX_ERRORS_FIRST = 32  # undecodable packets before any frame: the file is damaged
_SEEK_GAP_S = 20.0  # without a keyframe index, seek only over gaps this long
# Samples this many frames apart or more: the decoder skips the frames no other frame
# refers to (FFmpeg's skip_frame NONREF: most B-frames, about 40% of an x264 stream's
# frames and of its decoding time). A sample is then the first frame decoded at or
# after its time, at most a few frames late; its time is its own.
_SPARSE_GAP = 4.0
_MAX_CLIP_BYTES = 2 * 1024**3  # load_clip holds its frames: refuse windows larger than this


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 2 * 1024**3  # too_large
    max_seconds: float = 3 * 3600.0  # too_long: a 2-hour file is fine (streamed), 10 hours not
    max_pixels: int = 3840 * 2160  # per frame: 4K; 8K frames are too_large
    max_frames: int = 1_000_000  # too_long


@dataclass(frozen=True)
class VideoInfo:
    container: str  # short name: "mp4" | "mov" | "mkv" | "webm" | "avi" | ...
    codec: str  # video codec, e.g. "h264"
    width: int  # as displayed: after rotation
    height: int
    rotation: int  # 0/90/180/270, clockwise, as the ``rotate`` tag phones write
    fps: float  # average frame rate
    duration_s: float
    n_frames: int | None  # from the header, else estimated from duration * fps
    bit_rate: int | None
    has_audio: bool
    audio_codec: str | None
    audio_rate: int | None
    n_bytes: int


@dataclass(frozen=True)
class VideoFrame:
    index: int  # position in the file (0-based); estimated as round(t * fps) after a seek
    t: float  # presentation time in seconds from the stream start (true for variable rate)
    pixels: np.ndarray  # (H, W, 3) uint8 RGB, upright, downscaled if max_side was asked


@dataclass(frozen=True)
class SamplingConfig:
    """Which frames of a video are looked at."""

    mode: str = "fps"  # "fps": `fps` frames per second of video; "uniform": `n` spread evenly
    fps: float = 1.0
    n: int = 16
    max_frames: int = 600  # never more sampled frames than this (spread evenly)
    max_side: int | None = None  # downscale frames so the longer side is at most this

    def __post_init__(self) -> None:
        if self.mode not in ("fps", "uniform"):
            raise ValueError(
                f"unknown sampling mode {self.mode!r}; valid values: ['fps', 'uniform']"
            )
        if not self.fps > 0 or not math.isfinite(self.fps):
            raise ValueError(f"sampling fps must be a positive number, not {self.fps}")
        if self.n < 1:
            raise ValueError(f"sampling n must be at least 1, not {self.n}")
        if self.max_frames < 1:
            raise ValueError(f"sampling max_frames must be at least 1, not {self.max_frames}")
        if self.max_side is not None and self.max_side < 2:
            raise ValueError(f"sampling max_side must be at least 2 (or None), not {self.max_side}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SamplingConfig:
        """``default`` (1 frame a second, full size), or ``tiny``: 4 small frames."""
        from detector.config import check_preset, from_dict

        check_preset(name)
        base = cls() if name == "default" else cls(mode="uniform", n=4, max_frames=4, max_side=128)
        return from_dict(cls, dict(overrides), base=base)


@dataclass
class VideoClip:
    """Decoded video held in memory (short clips only: corpus items, generator output).

    ``frames`` is ``(T, H, W, 3)`` uint8 RGB, upright (rotation metadata applied);
    ``audio`` the voice track as ``(n,)`` float32 mono at ``sample_rate`` or ``None``;
    ``boxes`` holds, per frame, the ``[x, y, w, h]`` boxes of the faces a generator
    changed (empty for real clips and for frames it left alone).
    """

    frames: np.ndarray
    fps: float
    audio: np.ndarray | None = None
    sample_rate: int = SAMPLE_RATE
    boxes: list[list[list[int]]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.fps

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


# --- identifying and opening ------------------------------------------------------------


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


def _too_large(n_bytes: int, limits: VideoLimits) -> MediaError:
    return MediaError("too_large", f"file is {n_bytes:,} bytes; the limit is {limits.max_bytes:,}")


def _open_container(src: VideoSource, limits: VideoLimits) -> tuple[Any, str, int]:
    """Check size and signature, then open with the demuxer the content names."""
    if isinstance(src, bytes | bytearray | memoryview):
        data = bytes(src)
        n_bytes, head = len(data), data[:_HEAD]
        if n_bytes > limits.max_bytes:
            raise _too_large(n_bytes, limits)
        file: Any = io.BytesIO(data)
    else:
        path = Path(src)
        try:
            if path.is_dir():
                raise MediaError("corrupt_media", f"{path} is a directory, not a file")
            n_bytes = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(_HEAD)
        except FileNotFoundError:
            raise MediaError("corrupt_media", f"{path}: no such file") from None
        except PermissionError:
            raise MediaError("corrupt_media", f"{path}: permission denied") from None
        if n_bytes > limits.max_bytes:
            raise _too_large(n_bytes, limits)
        file = "file:" + str(path.resolve())  # the file protocol, whatever the name says
    if n_bytes == 0:
        raise MediaError("empty", "the file is empty (0 bytes)")
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
            f"the file starts like {fmt.upper()} video but cannot be read ({_reason(exc)})",
        ) from None
    return container, fmt, n_bytes


def _binary(src: VideoSource) -> Any:
    if isinstance(src, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(src))
    return Path(src).open("rb")


def _boxes_complete(src: VideoSource) -> bool:
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


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().rstrip(".")


def _is_picture(stream: Any) -> bool:
    """A cover picture attached to an audio file is a video stream, not video."""
    return bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.1f} s"


# --- the reader: one open file, its header checked, frames decoded with every check -----


class _Reader:
    """An open video: header checked, the first frame decoded (rotation, damage), then
    frames from the current position, with FFmpeg's errors turned into outcomes."""

    def __init__(self, src: VideoSource, limits: VideoLimits) -> None:
        self.src, self.limits = src, limits
        self.container, self.fmt, self.n_bytes = _open_container(src, limits)
        try:
            self._check_header()
            self._first: Any | None = None
            self._frames = self._decode()
            self._first = next(self._frames, None)
            self._finish_first()
        except BaseException:
            self.container.close()
            raise

    def close(self) -> None:
        self.container.close()

    # header ------------------------------------------------------------------------------

    def _check_header(self) -> None:
        c = self.container
        videos = [s for s in c.streams.video if not _is_picture(s)]
        audios = list(c.streams.audio)
        if not videos:
            if audios:
                name = audios[0].codec_context.name if audios[0].codec_context else "unknown"
                raise MediaError(
                    "unsupported_media", f"the file has no video track (audio only: {name})"
                )
            if self.fmt in ("mp4", "mov", "m4v", "3gp") and _boxes_complete(self.src):
                raise MediaError("empty", f"the {self.fmt.upper()} file holds no tracks")
            raise MediaError(
                "corrupt_media",
                f"the {self.fmt.upper()} file holds no streams (damaged or cut short)",
            )
        s = self.stream = videos[0]
        if s.codec_context is None:
            raise MediaError("unsupported_media", "the video codec cannot be decoded here")
        s.thread_type = "AUTO"
        self.codec = s.codec_context.name
        self.coded_w, self.coded_h = int(s.codec_context.width), int(s.codec_context.height)
        if self.coded_w * self.coded_h > self.limits.max_pixels:
            raise MediaError(
                "too_large",
                f"frames are {self.coded_w}x{self.coded_h} = {self.coded_w * self.coded_h:,} "
                f"pixels; the limit is {self.limits.max_pixels:,}",
            )
        tb = s.time_base
        self.origin = _seconds(s.start_time, tb) or 0.0
        rate = s.average_rate or s.guessed_rate or s.base_rate
        self.fps = float(rate) if rate else 0.0
        duration = _seconds(s.duration, tb)
        if not duration and c.duration:
            duration = c.duration / av.time_base - max(
                0.0, self.origin - (c.start_time or 0) / av.time_base
            )
        self.duration = max(0.0, duration or 0.0)
        self.header_frames = int(s.frames) if s.frames else None
        n_frames = self.header_frames or (round(self.duration * self.fps) if self.fps else None)
        self.n_frames = n_frames
        if self.duration > self.limits.max_seconds:
            raise MediaError(
                "too_long",
                f"the video is {_hours(self.duration)} long; the limit is "
                f"{_hours(self.limits.max_seconds)}",
            )
        if n_frames is not None and n_frames > self.limits.max_frames:
            raise MediaError(
                "too_long",
                f"the video has {n_frames:,} frames; the limit is {self.limits.max_frames:,}",
            )
        audio = next((a for a in audios if a.codec_context is not None), None)
        self.audio_codec = audio.codec_context.name if audio is not None else None
        self.audio_rate = int(audio.codec_context.sample_rate) if audio is not None else None
        self.has_audio = audio is not None
        self.bit_rate = int(s.bit_rate or c.bit_rate or 0) or None
        self.rotation_ccw = 0  # quarter turns counter-clockwise, from the first frame
        # state of decoding
        self.decoded = 0  # frames out of the decoder (including those not kept)
        self.packets = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self.next_index: int | None = 0
        self.seeks = 0

    def _finish_first(self) -> None:
        first = self._first
        if first is None:
            raise self.nothing_decoded()
        self.rotation_ccw = _quarter_turns(first)
        # The decoded size is the truth (some headers leave it 0).
        self.coded_w, self.coded_h = int(first.width), int(first.height)
        self.check(first, 0.0, 0)

    def nothing_decoded(self) -> MediaError:
        if self.packets == 0 and self.last_error is None:
            return MediaError("empty", "the video track holds no frames")
        why = f" ({_reason(self.last_error)})" if self.last_error is not None else ""
        return MediaError(
            "corrupt_media",
            f"none of the video's {self.packets} packets decodes to a frame{why}",
        )

    @property
    def info(self) -> VideoInfo:
        w, h = (
            (self.coded_h, self.coded_w) if self.rotation_ccw % 2 else (self.coded_w, self.coded_h)
        )
        return VideoInfo(
            container=self.fmt,
            codec=self.codec,
            width=w,
            height=h,
            rotation=(-90 * self.rotation_ccw) % 360,
            fps=self.fps,
            duration_s=self.duration,
            n_frames=self.n_frames,
            bit_rate=self.bit_rate,
            has_audio=self.has_audio,
            audio_codec=self.audio_codec,
            audio_rate=self.audio_rate,
            n_bytes=self.n_bytes,
        )

    # decoding ----------------------------------------------------------------------------

    def _decode(self) -> Iterator[Any]:
        """Raw frames from the current position. A damaged or missing part of the file
        (a truncated download) ends the stream; an undecodable packet is skipped, as
        players do, unless nothing has decoded yet and many failed (then it ends)."""
        demux = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except Exception as exc:  # the container is damaged from here on
                self.last_error = exc
                return
            if packet.size:
                self.packets += 1
            try:
                frames = packet.decode()
            except Exception as exc:
                self.errors += 1
                self.last_error = exc
                if self.decoded == 0 and self.errors >= _MAX_ERRORS_FIRST:
                    return
                continue
            for frame in frames:
                self.decoded += 1
                yield frame

    def frames(self) -> Iterator[Any]:
        """Raw frames from here on (the first frame, decoded at open, comes first)."""
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._frames

    def time(self, frame: Any) -> float:
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None or frame.time_base is None:
            return (self.next_index or 0) / self.fps if self.fps else 0.0
        return float(pts * frame.time_base) - self.origin

    def index(self, t: float) -> int:
        """The frame's index: counted from the start, estimated from ``t`` after a seek."""
        if self.next_index is None:
            self.next_index = round(t * self.fps) if self.fps else 0
        index = self.next_index
        self.next_index += 1
        return index

    def check(self, frame: Any, t: float, index: int) -> None:
        """Limits on what decoded, for a header that lied."""
        if frame.width * frame.height > self.limits.max_pixels:
            raise MediaError(
                "too_large",
                f"a frame is {frame.width}x{frame.height} pixels; the limit is "
                f"{self.limits.max_pixels:,}",
            )
        if t > self.limits.max_seconds:
            raise MediaError(
                "too_long",
                f"the video is longer than the limit of {_hours(self.limits.max_seconds)}",
            )
        if index >= self.limits.max_frames:
            raise MediaError(
                "too_long", f"the video has more than {self.limits.max_frames:,} frames"
            )

    def seek(self, t: float) -> None:
        """Jump to the keyframe at or before ``t`` (seconds from the stream start)."""
        tb = self.stream.time_base
        try:
            self.container.seek(int((t + self.origin) / tb), stream=self.stream, backward=True)
        except Exception:  # not seekable here: go on decoding from where we are
            return
        self._first = None
        self._frames = self._decode()
        self.seeks += 1
        self.next_index = None

    def skip_nonref(self) -> None:
        """Decode only the frames that other frames refer to (and keyframes) from here."""
        with contextlib.suppress(Exception):  # without the option: everything is decoded
            self.stream.codec_context.skip_frame = "NONREF"

    def keyframe_times(self) -> list[float] | None:
        """Keyframe times (seconds from the start) from the container's index, if any."""
        entries = self.stream.index_entries
        if len(entries) < 2:
            return None
        tb = self.stream.time_base
        return sorted(float(e.timestamp * tb) - self.origin for e in entries if e.is_keyframe)

    def pixels(self, frame: Any, max_side: int | None) -> np.ndarray:
        try:
            w, h = frame.width, frame.height
            if max_side is not None and max(w, h) > max_side:
                scale = max_side / max(w, h)
                size = max(1, round(w * scale)), max(1, round(h * scale))
                rgb = frame.reformat(
                    width=size[0], height=size[1], format="rgb24", interpolation="AREA"
                ).to_ndarray()
            else:
                rgb = frame.to_ndarray(format="rgb24")
        except Exception as exc:
            raise MediaError(
                "corrupt_media", f"a frame cannot be converted to RGB ({_reason(exc)})"
            ) from None
        turns = _quarter_turns(frame) or self.rotation_ccw
        if turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
        return rgb


def _quarter_turns(frame: Any) -> int:
    """Counter-clockwise quarter turns the display matrix asks for (0-3)."""
    try:
        degrees = frame.rotation
    except Exception:
        return 0
    return round((degrees or 0) / 90) % 4


class FrameStream(Iterator[VideoFrame]):
    """Frames of one open video, decoded as they are asked for. ``info`` is the file's
    :class:`VideoInfo`; ``decoded`` counts the frames the decoder produced so far (kept
    or not) and ``seeks`` the jumps made: what sampling a long file cost. Closes the file
    when exhausted, on :meth:`close`, or at the end of a ``with`` block."""

    def __init__(self, reader: _Reader, frames: Iterator[VideoFrame]) -> None:
        self._reader = reader
        self._frames = frames
        self.info = reader.info

    @property
    def decoded(self) -> int:
        return self._reader.decoded

    @property
    def seeks(self) -> int:
        return self._reader.seeks

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> VideoFrame:
        try:
            return next(self._frames)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._frames.close()  # type: ignore[attr-defined]
        self._reader.close()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- public reading ---------------------------------------------------------------------


def probe_video(src: VideoSource, *, limits: VideoLimits = VideoLimits()) -> VideoInfo:
    """What a video is: its header, checked against ``limits``, and its first frame
    (decoded for the rotation and to tell a damaged file). Raises :class:`MediaError`."""
    reader = _Reader(src, limits)
    reader.close()
    return reader.info


def _check_window(start_s: float, end_s: float | None) -> None:
    if not start_s >= 0 or not math.isfinite(start_s):
        raise ValueError(f"start_s must be a finite number >= 0, not {start_s}")
    if end_s is not None and not end_s > start_s:
        raise ValueError(f"end_s ({end_s}) must be after start_s ({start_s})")


def read_frames(
    src: VideoSource,
    *,
    limits: VideoLimits = VideoLimits(),
    max_side: int | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
) -> FrameStream:
    """Every frame whose time is in ``[start_s, end_s)``, streamed (seeking to ``start_s``).

    The file is opened and checked at the call (bad input raises :class:`MediaError`
    here); frames are decoded as the iterator is advanced.
    """
    _check_window(start_s, end_s)
    reader = _Reader(src, limits)
    return FrameStream(reader, _window(reader, start_s, end_s, max_side))


def _window(
    reader: _Reader, start_s: float, end_s: float | None, max_side: int | None
) -> Iterator[VideoFrame]:
    try:
        tol = 0.25 / reader.fps if reader.fps else 0.0  # pts rounding
        if start_s > 0:
            reader.seek(start_s)
        for raw in reader.frames():
            t = reader.time(raw)
            index = reader.index(t)
            reader.check(raw, t, index)
            if t < start_s - tol:
                continue
            if end_s is not None and t >= end_s - tol:
                break
            yield VideoFrame(index=index, t=t, pixels=reader.pixels(raw, max_side))
    finally:
        reader.close()


def _targets(sampling: SamplingConfig, duration: float) -> list[float]:
    """The times to sample, in seconds, at most ``max_frames`` of them spread evenly."""
    if sampling.mode == "fps":
        count = max(1, math.ceil(duration * sampling.fps - 1e-9))
        times = (
            [k / sampling.fps for k in range(count)] if count <= 10 * sampling.max_frames else []
        )
        if not times:  # too many to list: the cap spreads them over the whole duration
            times = [duration * k / sampling.max_frames for k in range(sampling.max_frames)]
    else:
        times = [(k + 0.5) * duration / sampling.n for k in range(sampling.n)]
    if len(times) > sampling.max_frames:
        keep = np.linspace(0, len(times) - 1, sampling.max_frames).round().astype(int)
        times = [times[i] for i in keep]
    return times


def sample_frames(
    src: VideoSource,
    sampling: SamplingConfig = SamplingConfig(),
    *,
    limits: VideoLimits = VideoLimits(),
) -> FrameStream:
    """The frames ``sampling`` asks for, streamed: never more than one decoded frame held
    besides the one yielded. Between far-apart samples the file is seeked (to the
    keyframe before the next sample) rather than decoded. Each frame is yielded at most
    once, so a video with fewer frames than asked yields fewer."""
    reader = _Reader(src, limits)
    return FrameStream(reader, _sample(reader, sampling))


def _sample(reader: _Reader, sampling: SamplingConfig) -> Iterator[VideoFrame]:
    try:
        duration = reader.duration or _demuxed_duration(reader.src, reader.limits)
        targets = _targets(sampling, duration)
        tol = 0.5 / reader.fps if reader.fps else 0.0
        keyframes = reader.keyframe_times()
        sparse = _sparse(targets, reader.fps)
        if sparse:
            reader.skip_nonref()
        pos = 0.0  # time of the last decoded frame
        frames = reader.frames()
        i = 0
        while i < len(targets):
            target = targets[i]
            if _worth_seeking(pos, target, keyframes, tol):
                reader.seek(target)
                frames = reader.frames()
            for raw in frames:
                t = pos = reader.time(raw)
                if sparse:
                    reader.next_index = None  # frames were skipped: the index from the time
                index = reader.index(t)
                reader.check(raw, t, index)
                if t < target - tol:
                    continue
                yield VideoFrame(index=index, t=t, pixels=reader.pixels(raw, sampling.max_side))
                while i < len(targets) and targets[i] - tol <= t:
                    i += 1
                break
            else:
                return  # the end of the file (or of what decodes)
    finally:
        reader.close()


def _sparse(targets: list[float], fps: float) -> bool:
    """Whether the samples are far enough apart (``_SPARSE_GAP`` frames on average) that
    the frames no other frame refers to need not be decoded."""
    if not fps or not targets:
        return False
    if len(targets) == 1:
        return True
    return (targets[-1] - targets[0]) / (len(targets) - 1) * fps >= _SPARSE_GAP


def _worth_seeking(pos: float, target: float, keyframes: list[float] | None, tol: float) -> bool:
    """Seek when a keyframe lies between here and the target (decoding from it skips
    everything before); without an index, only over long gaps."""
    if keyframes is None:
        return target - pos > _SEEK_GAP_S
    k = bisect.bisect_right(keyframes, target + tol) - 1
    return k >= 0 and keyframes[k] > pos + tol


def _demuxed_duration(src: VideoSource, limits: VideoLimits) -> float:
    """The duration from the packets' timestamps, for a header without one (no decoding)."""
    container, _fmt, _n = _open_container(src, limits)
    with container:
        stream = next((s for s in container.streams.video if not _is_picture(s)), None)
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


# --- the voice track --------------------------------------------------------------------


def decode_audio_track(
    src: VideoSource,
    *,
    limits: VideoLimits = VideoLimits(),
    start_s: float = 0.0,
    end_s: float | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray | None:
    """The first audio track of ``[start_s, end_s)`` as ``(n,)`` float32 mono at
    ``sample_rate``, streamed; ``None`` when the video has no audio. Times are those of
    the video frames (from the video stream's start), so the two stay in sync; audio
    that starts after ``start_s`` is preceded by silence."""
    _check_window(start_s, end_s)
    reader = _Reader(src, limits)  # checks the file is a usable video
    reader.close()
    if not reader.has_audio:
        return None
    container, _fmt, _n = _open_container(src, limits)
    with container:
        stream = next(a for a in container.streams.audio if a.codec_context is not None)
        return _decode_audio(container, stream, reader.origin, start_s, end_s, sample_rate, limits)


def _decode_audio(
    container: Any,
    stream: Any,
    origin: float,
    start_s: float,
    end_s: float | None,
    sample_rate: int,
    limits: VideoLimits,
) -> np.ndarray:
    tb = stream.time_base
    if start_s > 0:
        # Where seeking fails, decoding starts at the beginning and drops what is before.
        with contextlib.suppress(Exception):
            container.seek(int((start_s + origin) / tb), stream=stream, backward=True)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    parts: list[np.ndarray] = []
    first_t: float | None = None
    n = 0
    limit = int(limits.max_seconds * sample_rate)
    demux = container.demux(stream)
    done = False
    while not done:
        try:
            packet = next(demux)
        except StopIteration:
            break
        except Exception:
            break  # truncated: keep what decoded
        try:
            frames = packet.decode()
        except Exception:
            continue
        for frame in frames:
            t = float(frame.pts * tb) - origin if frame.pts is not None else None
            if first_t is None:
                first_t = t if t is not None else start_s
            if end_s is not None and t is not None and t >= end_s:
                done = True
                break
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
                n += out.samples
            if n > limit:
                raise MediaError(
                    "too_long",
                    f"the audio track is longer than the limit of {_hours(limits.max_seconds)}",
                )
    for out in resampler.resample(None):
        parts.append(out.to_ndarray().reshape(-1))
    y = np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
    if first_t is None:
        return y
    offset = round((first_t - start_s) * sample_rate)  # where the decoded audio starts
    if offset > 0:
        y = np.concatenate([np.zeros(offset, np.float32), y])
    elif offset < 0:
        y = y[-offset:]
    if end_s is None and stream.duration:  # the encoder's padding after the declared end
        end_s = float((stream.duration + (stream.start_time or 0)) * tb) - origin
    if end_s is not None:
        y = y[: max(0, round((end_s - start_s) * sample_rate))]
    np.clip(y, -1.0, 1.0, out=y)
    return np.ascontiguousarray(y)


def load_clip(
    src: VideoSource,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    max_side: int | None = None,
    limits: VideoLimits = VideoLimits(),
) -> VideoClip:
    """Frames and voice track of ``[start_s, end_s)`` in memory (for short clips).

    The audio covers exactly the frames' span (``len(frames) / fps``), padded with
    silence where the track ends early; ``None`` without an audio track.
    """
    _check_window(start_s, end_s)
    stream = read_frames(src, limits=limits, max_side=max_side, start_s=start_s, end_s=end_s)
    with stream:
        info = stream.info
        span = (end_s if end_s is not None else info.duration_s) - start_s
        w, h = info.width, info.height
        if max_side is not None and max(w, h) > max_side:
            w, h = round(w * max_side / max(w, h)), round(h * max_side / max(w, h))
        if span * max(info.fps, 1.0) * w * h * 3 > _MAX_CLIP_BYTES:
            raise MediaError(
                "too_long",
                f"{span:.0f} s of {w}x{h} video is too much to hold in memory; "
                "read it as a stream (read_frames) or ask for a shorter window",
            )
        frames = [f.pixels for f in stream]
    if not frames:
        end = f"{end_s:g} s" if end_s is not None else "the end"
        raise MediaError(
            "empty",
            f"no video frames between {start_s:g} s and {end} "
            f"(the video is {info.duration_s:.2f} s long)",
        )
    fps = info.fps or 25.0
    audio = None
    if info.has_audio:
        audio = decode_audio_track(
            src, limits=limits, start_s=start_s, end_s=start_s + len(frames) / fps
        )
        if audio is not None:
            want = round(len(frames) / fps * SAMPLE_RATE)
            audio = np.pad(audio[:want], (0, max(0, want - len(audio))))
    return VideoClip(frames=np.stack(frames), fps=fps, audio=audio)


def video_facts(info: VideoInfo) -> dict[str, Any]:
    """A small JSON-ready summary for results and reports."""
    return {
        "kind": "video",
        "format": info.container,
        "codec": info.codec,
        "width": info.width,
        "height": info.height,
        "fps": round(info.fps, 3),
        "duration_s": round(info.duration_s, 3),
        "rotation": info.rotation,
        "has_audio": info.has_audio,
        "bytes": info.n_bytes,
    }


# Encoding lives in detector.media.video_encode; its one public function is part of this
# module's API too.
from detector.media.video_encode import encode_video as encode_video  # noqa: E402
