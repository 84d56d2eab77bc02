"""Decoding a video's voice track: packets to 16 kHz mono float32, in sync with the frames."""

from __future__ import annotations

import contextlib
from typing import Any

import av
import numpy as np

from detector.media.errors import MediaError
from detector.media.video_container import VideoLimits, duration_text


def decode_track(
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
                limit_text = duration_text(limits.max_seconds)
                raise MediaError(
                    "too_long", f"the audio track is longer than the limit of {limit_text}"
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
