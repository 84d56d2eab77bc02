"""The one place that decodes, validates and prepares audio.

Accepts WAV (and RF64/W64), FLAC, OGG (Vorbis, Opus), MP3, AIFF and NIST SPHERE,
identified by content rather than file extension. Decoding is streamed in blocks: a
file longer than the duration limit is refused after reading at most that much (a
2-hour upload is never held in memory), and a header that lies about its length
cannot make us allocate it. A file cut short (a truncated upload) is decoded up to
the cut, as media players do, and refused (``corrupt_media``) only when nothing
decodes.

Every clip, real or synthetic, at training and at scan time, goes through the same
two steps:

* :func:`decode_audio`: mono (mean of the channels), resampled to 16 kHz (soxr,
  streamed), float32;
* :func:`prepare_speech`: identical silence trimming and loudness normalisation,
  so that neither leading silence nor level can tell the classes apart.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from detector.media.errors import MediaError
from detector.media.files import size_and_head

SAMPLE_RATE = 16_000
AUDIO_FORMATS = ("WAV", "FLAC", "OGG", "MP3", "AIFF", "NIST")
BLOCK_SECONDS = 10.0  # decoded per read; bounds memory while streaming


@dataclass(frozen=True)
class AudioLimits:
    max_bytes: int = 200 * 1024 * 1024  # 200 MiB per file
    max_seconds: float = 20 * 60.0  # longer recordings are refused (too_long)
    max_channels: int = 6  # up to 5.1 surround; more is not a voice recording
    min_seconds: float = 0.1  # shorter holds no speech to judge (empty)


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # (N,) float32 mono at ``sample_rate``
    sample_rate: int
    format: str  # "wav" | "flac" | "ogg" | "mp3" | "aiff" | "nist"
    subtype: str  # libsndfile's subtype, e.g. "PCM_16", "VORBIS"
    channels: int  # in the file, before the mono mix
    source_rate: int  # in the file, before resampling
    n_bytes: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def sniff_audio_format(head: bytes) -> str | None:
    """The container named by the first bytes, or ``None`` when they are not audio."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"riff" and head[8:16] == b"\xf3\x11\xcf\x11\xa5\xd6\xcf\x11"[:8]:
        return "WAV"  # Sony Wave64 ('riff' GUID)
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if head[:7] == b"NIST_1A":
        return "NIST"  # NIST SPHERE, as in TIMIT and older speech corpora
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:3] == b"ID3":
        return "MP3"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06):
        return "MP3"  # an MPEG audio frame sync (layer bits non-zero)
    return None


def _open(source: bytes | str | Path, limits: AudioLimits) -> tuple[sf.SoundFile, str, int]:
    n_bytes, head = size_and_head(source, 16, limits.max_bytes)
    file: io.BytesIO | str = (
        io.BytesIO(bytes(source))
        if isinstance(source, bytes | bytearray | memoryview)
        else str(source)
    )
    fmt = sniff_audio_format(head)
    if fmt is None:
        raise MediaError(
            "unsupported_media",
            f"not a supported audio file (supported: {', '.join(AUDIO_FORMATS)}, by content)",
        )
    try:
        snd = sf.SoundFile(file)
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
        raise MediaError(
            "corrupt_media", f"cannot decode this {fmt} file ({_reason(exc)})"
        ) from None
    return snd, fmt, n_bytes


def _reason(exc: Exception) -> str:
    """libsndfile's own words, without soundfile's ``Error opening <_io.BytesIO ...>:``."""
    reason = exc.error_string if isinstance(exc, sf.LibsndfileError) else str(exc)
    return reason.strip().rstrip(".")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 60 else f"{seconds:g} s"


def probe_audio(source: bytes | str | Path, *, limits: AudioLimits | None = None) -> dict:
    """Format, channels, rate and the duration the header claims, without decoding.

    Raises the same errors :func:`decode_audio` would for the header alone.
    """
    limits = limits or AudioLimits()
    snd, fmt, n_bytes = _open(source, limits)
    with snd:
        _check_header(snd, fmt, limits)
        claimed = snd.frames / snd.samplerate if snd.frames > 0 else None
        return {
            "kind": "audio",
            "format": fmt.lower(),
            "subtype": snd.subtype,
            "channels": snd.channels,
            "sample_rate": snd.samplerate,
            "duration_s": claimed,
            "bytes": n_bytes,
        }


def _check_header(snd: sf.SoundFile, fmt: str, limits: AudioLimits) -> None:
    if snd.channels < 1 or snd.samplerate < 1:
        raise MediaError(
            "corrupt_media",
            f"the {fmt} header declares {snd.channels} channels at {snd.samplerate} Hz",
        )
    if snd.channels > limits.max_channels:
        raise MediaError(
            "unsupported_media",
            f"{snd.channels} channels; voice recordings have at most {limits.max_channels}",
        )
    if snd.samplerate < 4000 or snd.samplerate > 384_000:
        raise MediaError("unsupported_media", f"sample rate {snd.samplerate} Hz is not audio")
    # A header may lie (too long or too short); the streamed read below is the truth.
    # Only a claim far beyond the limit is refused up front, saving the read.
    if snd.frames > 0 and snd.frames / snd.samplerate > 2 * limits.max_seconds:
        raise MediaError(
            "too_long",
            f"the recording is {snd.frames / snd.samplerate / 60:.1f} minutes long; "
            f"the limit is {_minutes(limits.max_seconds)}",
        )


def _frames_done(snd: sf.SoundFile, before: int, block: int) -> int:
    """How many frames of the failed read reached the buffer: the file position moved
    past them (0 when the position cannot be told)."""
    try:
        return min(max(snd.tell() - before, 0), block)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return 0


def decode_audio(
    source: bytes | str | Path,
    *,
    limits: AudioLimits | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> DecodedAudio:
    """Decode to mono float32 at ``sample_rate``, streamed in blocks, with every check."""
    limits = limits or AudioLimits()
    snd, fmt, n_bytes = _open(source, limits)
    with snd:
        _check_header(snd, fmt, limits)
        rate, channels = snd.samplerate, snd.channels
        max_frames = int(limits.max_seconds * rate)
        resampler = (
            soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
            if rate != sample_rate
            else None
        )
        parts: list[np.ndarray] = []
        read = 0
        block = max(1, int(BLOCK_SECONDS * rate))
        buf = np.zeros((block, channels), np.float32)
        while True:
            failure: Exception | None = None
            try:
                data = snd.read(block, dtype="float32", always_2d=True, out=buf)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                # libsndfile stops at a damaged or missing frame (a FLAC cut short) after
                # filling ``buf`` up to it: keep those samples too, not only earlier blocks.
                failure = exc
                data = buf[: _frames_done(snd, read, block)]
            if len(data):
                read += len(data)
                if read > max_frames:
                    raise MediaError(
                        "too_long",
                        f"the recording is longer than the limit of {_minutes(limits.max_seconds)}",
                    )
                if not np.isfinite(data).all():
                    raise MediaError("corrupt_media", "the samples contain NaN or infinite values")
                mono = data.mean(axis=1, dtype=np.float32)
                parts.append(resampler.resample_chunk(mono) if resampler else mono)
            if failure is not None:
                if read:  # a truncated tail: keep what decoded (like every media player)
                    break
                raise MediaError(
                    "corrupt_media", f"cannot decode this {fmt} file ({_reason(failure)})"
                ) from None
            if len(data) < block:
                break
        if resampler is not None:
            parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    if read == 0:
        raise MediaError("empty", f"the {fmt} file holds no audio samples")
    samples = np.concatenate(parts).astype(np.float32, copy=False)
    if read / rate < limits.min_seconds:
        raise MediaError(
            "empty",
            f"the recording is {read / rate * 1000:.0f} ms long; at least "
            f"{limits.min_seconds * 1000:.0f} ms is needed",
        )
    # Float files may exceed full scale; integer ones cannot. Clip to the PCM range.
    np.clip(samples, -1.0, 1.0, out=samples)
    return DecodedAudio(
        samples=samples,
        sample_rate=sample_rate,
        format=fmt.lower(),
        subtype=snd.subtype,
        channels=channels,
        source_rate=rate,
        n_bytes=n_bytes,
    )


# --- the shared preparation of speech -------------------------------------------------

TARGET_DBFS = -23.0  # RMS level of the active (non-silent) part after normalisation
TRIM_TOP_DB = 40.0  # frames this far below the loudest one count as silence
SILENT_DBFS = -70.0  # a clip whose loudest frame is below this has no sound at all
_FRAME, _HOP = 512, 128


@dataclass(frozen=True)
class PreparedSpeech:
    samples: np.ndarray  # (N,) float32, trimmed and loudness-normalised
    sample_rate: int
    offset_s: float  # where ``samples`` start in the decoded recording
    gain_db: float  # the gain applied by the normalisation


def _frame_rms_db(y: np.ndarray) -> np.ndarray:
    """RMS level (dBFS) of ``_FRAME``-sample frames every ``_HOP`` samples.

    Summed from per-hop energies (a frame is 4 hops), in a few bytes per sample: a
    matrix of the frames' samples took 80 per sample, 1.5 GB for a 20-minute upload.
    """
    y = np.asarray(y, dtype=np.float32)
    if len(y) < _FRAME:
        y = np.pad(y, (0, _FRAME - len(y)))
    n = 1 + (len(y) - _FRAME) // _HOP
    per_frame = _FRAME // _HOP
    hops = y[: (n + per_frame - 1) * _HOP].reshape(-1, _HOP)
    energy = np.einsum("ij,ij->i", hops, hops, dtype=np.float64)
    frames = sum(energy[k : k + n] for k in range(per_frame))
    rms = np.sqrt(frames / _FRAME)
    return 20 * np.log10(np.maximum(rms, 1e-10))


def prepare_speech(
    samples: np.ndarray, sample_rate: int = SAMPLE_RATE, *, trim: bool = True
) -> PreparedSpeech:
    """Trim leading and trailing silence, then normalise the level, the same way for all.

    ``trim=False`` only normalises: for a resynthesis of an already prepared real clip,
    which must keep that clip's exact length and framing.

    Raises ``MediaError("empty")`` when the clip is silent.
    """
    y = np.asarray(samples, dtype=np.float32)
    db = _frame_rms_db(y)
    peak_db = float(db.max())
    if peak_db < SILENT_DBFS:
        raise MediaError("empty", f"the recording is silent (loudest frame {peak_db:.0f} dBFS)")
    if not trim:
        return _normalise(y, sample_rate, offset_s=0.0)
    active = np.flatnonzero(db > peak_db - TRIM_TOP_DB)
    # The frames find the sound; the cut is made at its first and last sample as loud as
    # the threshold (an active frame holds one, its RMS being above it), searched from a
    # frame before the first active frame to a frame after the last. Cutting at frame
    # edges kept 15-30 ms of the silence, more or less depending on where the 8 ms frame
    # grid fell: a trace of the original padding.
    floor = 10 ** ((peak_db - TRIM_TOP_DB) / 20)
    first, last = int(active[0]) * _HOP, int(active[-1]) * _HOP
    lo = max(0, first - _FRAME)
    start = lo + int(np.argmax(np.abs(y[lo : first + _FRAME]) >= floor))
    tail = np.abs(y[last : last + 2 * _FRAME])[::-1] >= floor
    end = last + len(tail) - int(np.argmax(tail))
    return _normalise(y[start:end], sample_rate, offset_s=start / sample_rate)


def _normalise(y: np.ndarray, sample_rate: int, *, offset_s: float) -> PreparedSpeech:
    # The level is measured on the cut clip's own frames, so that it too is the same
    # wherever the clip sat in the recording.
    db = _frame_rms_db(y)
    active_db = db[db > db.max() - TRIM_TOP_DB]
    level = float(10 * np.log10(np.mean(10 ** (active_db / 10))))  # mean power, active frames
    gain_db = TARGET_DBFS - level
    y = y * np.float32(10 ** (gain_db / 20))
    peak = max(float(y.max()), -float(y.min()))
    if peak > 0.99:  # keep the normalised clip inside full scale
        y *= np.float32(0.99 / peak)
        gain_db += 20 * np.log10(0.99 / peak)
    return PreparedSpeech(
        samples=np.ascontiguousarray(y, dtype=np.float32),
        sample_rate=sample_rate,
        offset_s=offset_s,
        gain_db=float(gain_db),
    )


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str, **options: object) -> bytes:
    """Encode mono float samples with libsndfile: ``wav`` (PCM 16), ``flac``, ``ogg``
    (Vorbis, ``quality`` 0-1), ``opus`` (Ogg Opus), ``mp3`` (``bitrate_kbps``)."""
    buf = io.BytesIO()
    y = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    kwargs: dict[str, object] = {}
    if fmt == "wav":
        kwargs = {"format": "WAV", "subtype": "PCM_16"}
    elif fmt == "flac":
        kwargs = {"format": "FLAC", "subtype": "PCM_16"}
    elif fmt == "ogg":
        kwargs = {"format": "OGG", "subtype": "VORBIS"}
        if "quality" in options:
            kwargs["compression_level"] = 1.0 - float(options["quality"])  # type: ignore[arg-type]
    elif fmt == "opus":
        kwargs = {"format": "OGG", "subtype": "OPUS"}
        if "bitrate_kbps" in options:
            kwargs["compression_level"] = _bitrate_level(float(options["bitrate_kbps"]), 6, 256)  # type: ignore[arg-type]
    elif fmt == "mp3":
        kwargs = {"format": "MP3", "subtype": "MPEG_LAYER_III", "bitrate_mode": "CONSTANT"}
        if "bitrate_kbps" in options:
            lo, hi = _mp3_bitrates(sample_rate)
            kwargs["compression_level"] = _bitrate_level(float(options["bitrate_kbps"]), lo, hi)
    else:
        raise ValueError(f"unknown audio encoding {fmt!r}; valid: wav, flac, ogg, opus, mp3")
    sf.write(buf, y, sample_rate, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue()


def _mp3_bitrates(sample_rate: int) -> tuple[float, float]:
    """The bitrate range LAME maps libsndfile's compression level onto: MPEG-1 above
    24 kHz, MPEG-2 down to 16 kHz, MPEG-2.5 below."""
    if sample_rate >= 32_000:
        return 32.0, 320.0
    if sample_rate >= 16_000:
        return 8.0, 160.0
    return 8.0, 64.0


def _bitrate_level(kbps: float, lo: float, hi: float) -> float:
    """libsndfile's compression level (0 = best quality, 1 = smallest) for a bitrate."""
    kbps = min(max(kbps, lo), hi)
    return float(1.0 - (kbps - lo) / (hi - lo))
