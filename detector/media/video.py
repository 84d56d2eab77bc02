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

Identifying and opening files (``sniff_video_format``, ``VideoLimits``) lives in
``video_container``, the reader of one open file (``Reader``, ``FrameStream``,
``VideoInfo``, ``VideoFrame``) in ``video_reader``, decoding the voice track's packets
in ``video_audio``, encoding in ``video_encode`` (``encode_video`` is importable from
here too).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detector.media.errors import MediaError
from detector.media.video_audio import decode_track
from detector.media.video_container import (
    VideoLimits,
    VideoSource,
    demuxed_duration,
    open_container,
)
from detector.media.video_reader import FrameStream, Reader, VideoFrame, VideoInfo

SAMPLE_RATE = 16_000  # the voice track, as the voice detector reads it

_SEEK_GAP_S = 20.0  # without a keyframe index, seek only over gaps this long
# Samples this many frames apart or more: the decoder skips the frames no other frame
# refers to (FFmpeg's skip_frame NONREF: most B-frames, about 40% of an x264 stream's
# frames and of its decoding time). A sample is then the first frame decoded at or
# after its time, at most a few frames late; its time is its own.
_SPARSE_GAP = 4.0
_MAX_CLIP_BYTES = 2 * 1024**3  # load_clip holds its frames: refuse windows larger than this


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


# --- public reading ---------------------------------------------------------------------


def probe_video(src: VideoSource, *, limits: VideoLimits = VideoLimits()) -> VideoInfo:
    """What a video is: its header, checked against ``limits``, and its first frame
    (decoded for the rotation and to tell a damaged file). Raises :class:`MediaError`."""
    reader = Reader(src, limits)
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
    reader = Reader(src, limits)
    return FrameStream(reader, _window(reader, start_s, end_s, max_side))


def _window(
    reader: Reader, start_s: float, end_s: float | None, max_side: int | None
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
    reader = Reader(src, limits)
    return FrameStream(reader, _sample(reader, sampling))


def _sample(reader: Reader, sampling: SamplingConfig) -> Iterator[VideoFrame]:
    try:
        duration = reader.duration or demuxed_duration(reader.src, reader.limits)
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
    reader = Reader(src, limits)  # checks the file is a usable video
    reader.close()
    if not reader.has_audio:
        return None
    container, _fmt, _n = open_container(src, limits)
    with container:
        stream = next(a for a in container.streams.audio if a.codec_context is not None)
        return decode_track(container, stream, reader.origin, start_s, end_s, sample_rate, limits)


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
