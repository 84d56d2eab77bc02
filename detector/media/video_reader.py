"""Reading one video file: the header checked against the limits, frames decoded one
at a time with every check (damage, rotation, a header that lies about the length),
FFmpeg's errors turned into :class:`MediaError` codes. ``detector.media.video`` builds
probing, sampling and clip loading on :class:`Reader`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from detector.media.errors import MediaError
from detector.media.video_container import (
    VideoLimits,
    VideoSource,
    boxes_complete,
    duration_text,
    error_reason,
    is_picture,
    open_container,
    seconds_at,
)

_MAX_ERRORS_FIRST = 32  # undecodable packets before any frame: the file is damaged


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


class Reader:
    """An open video: header checked, the first frame decoded (rotation, damage), then
    frames from the current position, with FFmpeg's errors turned into outcomes."""

    def __init__(self, src: VideoSource, limits: VideoLimits) -> None:
        self.src, self.limits = src, limits
        self.container, self.fmt, self.n_bytes = open_container(src, limits)
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
        videos = [s for s in c.streams.video if not is_picture(s)]
        audios = list(c.streams.audio)
        if not videos:
            if audios:
                name = audios[0].codec_context.name if audios[0].codec_context else "unknown"
                raise MediaError(
                    "unsupported_media", f"the file has no video track (audio only: {name})"
                )
            if self.fmt in ("mp4", "mov", "m4v", "3gp") and boxes_complete(self.src):
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
        self.origin = seconds_at(s.start_time, tb) or 0.0
        rate = s.average_rate or s.guessed_rate or s.base_rate
        self.fps = float(rate) if rate else 0.0
        duration = seconds_at(s.duration, tb)
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
                f"the video is {duration_text(self.duration)} long; the limit is "
                f"{duration_text(self.limits.max_seconds)}",
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
        why = f" ({error_reason(self.last_error)})" if self.last_error is not None else ""
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
                f"the video is longer than the limit of {duration_text(self.limits.max_seconds)}",
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
                "corrupt_media", f"a frame cannot be converted to RGB ({error_reason(exc)})"
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

    def __init__(self, reader: Reader, frames: Iterator[VideoFrame]) -> None:
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
