"""Bad and awkward audio inputs: every one gets a media error code or decodes sensibly.

Each input is built here (soundfile, raw bytes, a sparse file); nothing is downloaded.
The decisions these tests pin down:

* a file cut short (a truncated upload) is decoded up to the cut and scored on that,
  as media players do, WAV and FLAC alike; it is ``corrupt_media`` only when nothing
  decodes (a FLAC cut inside its header);
* a header's length claim is only trusted to refuse a file early (``too_long``
  without reading it); otherwise the streamed read is the truth.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from detector.media.audio import (
    SAMPLE_RATE,
    AudioLimits,
    decode_audio,
    encode_audio,
    prepare_speech,
    probe_audio,
)
from detector.media.errors import MediaError
from tests._audio import speech_like

CLIP = speech_like(1, 3.0)


def _write(samples: np.ndarray, sr: int = SAMPLE_RATE, **kw: object) -> bytes:
    buf = io.BytesIO()
    kw = {"format": "WAV", "subtype": "PCM_16", **kw}
    sf.write(buf, samples, sr, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def _error(source: object, **kw: object) -> MediaError:
    with pytest.raises(MediaError) as info:
        decode_audio(source, **kw)  # type: ignore[arg-type]
    assert "<_io.BytesIO" not in info.value.message  # soundfile's prefix is stripped
    return info.value


def _wav_header(n_data: int, *, sr: int = 8_000, channels: int = 1, bits: int = 8) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, sr, sr * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + n_data)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", n_data)
    )


def _peak_hz(y: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[spec.argmax()])


def _rms_db(y: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(y.astype(np.float64) ** 2)))


# --- nothing there --------------------------------------------------------------------


def test_an_empty_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    for source in (b"", path):
        err = _error(source)
        assert err.code == "empty" and "0 bytes" in err.message


def test_silence_decodes_but_holds_no_speech() -> None:
    decoded = decode_audio(_write(np.zeros(SAMPLE_RATE, np.float32)))
    assert decoded.duration_s == pytest.approx(1.0)
    with pytest.raises(MediaError, match="silent") as info:
        prepare_speech(decoded.samples)
    assert info.value.code == "empty"


def test_too_short_and_header_only_files_are_empty() -> None:
    assert _error(encode_audio(CLIP[:800], SAMPLE_RATE, "wav")).code == "empty"  # 50 ms
    err = _error(encode_audio(CLIP, SAMPLE_RATE, "wav")[:44])  # header, no samples
    assert err.code == "empty" and "no audio samples" in err.message


# --- damaged files ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["wav", "flac"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_file_is_decoded_up_to_the_cut(fmt: str, keep: float) -> None:
    data = encode_audio(CLIP, SAMPLE_RATE, fmt)
    decoded = decode_audio(data[: int(len(data) * keep)])
    # WAV stops at the last whole sample; FLAC at the last whole frame (4096 samples)
    assert keep * 3.0 - 0.6 < decoded.duration_s <= keep * 3.0 + 0.01
    n = len(decoded.samples)
    np.testing.assert_allclose(decoded.samples, CLIP[:n], atol=1e-4)  # lossless, 16 bits


@pytest.mark.parametrize("cut", [8, 20, 42, 100])
def test_a_flac_cut_in_its_header_is_corrupt(cut: int) -> None:
    err = _error(encode_audio(CLIP, SAMPLE_RATE, "flac")[:cut])
    assert err.code == "corrupt_media" and "cannot decode this FLAC file" in err.message


@pytest.mark.parametrize(
    "head",
    [
        b"RIFF\0\0\0\0WAVE",
        b"RIFF\0\0\0\0WAVEfmt ",
        b"OggS",
        b"fLaC",
        b"ID3",
        b"\xff\xfb",
        b"FORM\0\0\x10\0AIFF",
        b"NIST_1A\n   1024\n",
    ],
)
def test_garbage_behind_an_audio_signature_is_corrupt(head: bytes) -> None:
    body = np.random.default_rng(0).bytes(20_000)
    err = _error(head + body)
    assert err.code == "corrupt_media" and err.message.startswith("cannot decode this")


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_float_samples_that_are_not_numbers_are_corrupt(subtype: str, bad: float) -> None:
    y = CLIP.astype(np.float64)
    y[12_345] = bad
    err = _error(_write(y, subtype=subtype))
    assert err.code == "corrupt_media" and "NaN or infinite" in err.message


def test_a_header_with_zero_channels_or_zero_rate_is_corrupt() -> None:
    wav = bytearray(encode_audio(CLIP, SAMPLE_RATE, "wav"))
    no_channels, no_rate = bytearray(wav), bytearray(wav)
    struct.pack_into("<H", no_channels, 22, 0)  # fmt chunk: channel count
    struct.pack_into("<I", no_rate, 24, 0)  # fmt chunk: sample rate
    err = _error(bytes(no_channels))
    assert err.code == "corrupt_media" and "Channel count is zero" in err.message
    assert _error(bytes(no_rate)).code == "corrupt_media"


@pytest.mark.parametrize("extra", [0x7FFF_0000, 0xFFFF_FFFF])
def test_a_header_claiming_more_data_than_the_file_holds(extra: int) -> None:
    wav = bytearray(encode_audio(CLIP, SAMPLE_RATE, "wav"))
    struct.pack_into("<I", wav, 40, extra)  # data chunk size
    struct.pack_into("<I", wav, 4, extra)  # and the RIFF size
    decoded = decode_audio(bytes(wav))
    assert decoded.duration_s == pytest.approx(3.0)
    np.testing.assert_allclose(decoded.samples, CLIP, atol=1e-4)


def test_a_header_claiming_less_data_than_the_file_holds() -> None:
    wav = bytearray(encode_audio(CLIP, SAMPLE_RATE, "wav"))
    struct.pack_into("<I", wav, 40, 2 * 8_000)  # says 0.5 s: the rest is trailing junk
    decoded = decode_audio(bytes(wav))
    assert decoded.duration_s == pytest.approx(0.5)
    np.testing.assert_allclose(decoded.samples, CLIP[:8_000], atol=1e-4)


# --- what is not audio, and what is audio under the wrong name ----------------------


def test_wrong_extensions(tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "photo.wav"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(png, format="PNG")
    err = _error(png)
    assert err.code == "unsupported_media" and "not a supported audio file" in err.message
    as_mp3 = tmp_path / "speech.mp3"
    as_mp3.write_bytes(encode_audio(CLIP, SAMPLE_RATE, "wav"))
    decoded = decode_audio(as_mp3)
    assert decoded.format == "wav" and decoded.duration_s == pytest.approx(3.0)
    as_wav = tmp_path / "speech.wav"
    as_wav.write_bytes(encode_audio(CLIP, SAMPLE_RATE, "mp3"))
    assert decode_audio(as_wav).format == "mp3"


def test_a_text_file_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is a transcript, not a recording\n" * 20)
    assert _error(path).code == "unsupported_media"


def test_missing_files_and_directories(tmp_path: Path) -> None:
    assert "no such file" in _error(tmp_path / "absent.wav").message
    assert "directory" in _error(tmp_path).message


def test_eight_channels_are_refused_six_are_mixed() -> None:
    tone = np.sin(2 * np.pi * 300 * np.arange(SAMPLE_RATE) / SAMPLE_RATE) * 0.3
    err = _error(_write(np.tile(tone[:, None], (1, 8))))
    assert err.code == "unsupported_media" and "8 channels" in err.message
    decoded = decode_audio(_write(np.tile(tone[:, None], (1, 6))))
    assert decoded.channels == 6 and decoded.samples.ndim == 1


def test_rates_that_are_not_audio_are_refused() -> None:
    err = _error(_write(np.zeros(2_000), sr=2_000))
    assert err.code == "unsupported_media" and "2000 Hz" in err.message


def test_a_clipped_square_wave_decodes_and_prepares() -> None:
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    square = np.clip(3.0 * np.sin(2 * np.pi * 150 * t), -1.0, 1.0)  # hard-clipped full scale
    decoded = decode_audio(_write(square))
    assert decoded.duration_s == pytest.approx(2.0) and np.abs(decoded.samples).max() > 0.99
    prepared = prepare_speech(decoded.samples)
    assert _rms_db(prepared.samples) == pytest.approx(-23.0, abs=0.5)
    assert np.abs(prepared.samples).max() <= 0.99


def test_a_one_second_file_is_fine() -> None:
    decoded = decode_audio(encode_audio(CLIP[:SAMPLE_RATE], SAMPLE_RATE, "flac"))
    assert decoded.duration_s == pytest.approx(1.0)
    assert len(prepare_speech(decoded.samples).samples) > 0.8 * SAMPLE_RATE


# --- length and size limits ----------------------------------------------------------


def test_a_two_hour_file_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 2 * 3600 * 8_000  # 8 kHz, 8-bit mono: 57.6 MB, sparse on disk
    path = tmp_path / "two_hours.wav"
    with path.open("wb") as f:
        f.write(_wav_header(n))
        f.truncate(44 + n)

    def no_reading(*args: object, **kw: object) -> None:
        raise AssertionError("the samples were read")

    monkeypatch.setattr(sf.SoundFile, "read", no_reading)
    err = _error(path)
    assert err.code == "too_long" and "120.0 minutes" in err.message
    info = probe_audio(path, limits=AudioLimits(max_seconds=3 * 3600))
    assert info["duration_s"] == pytest.approx(7200.0) and info["sample_rate"] == 8_000


@pytest.mark.parametrize("fmt", ["wav", "ogg"])
def test_the_streamed_read_stops_at_the_limit(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """1.5 s against a 1 s limit: the header's claim is under the early refusal (twice
    the limit), so only the streamed count of decoded samples can stop it."""
    data = encode_audio(speech_like(2, 1.5), SAMPLE_RATE, fmt)
    reads = []
    read = sf.SoundFile.read

    def counting(self: sf.SoundFile, *args: object, **kw: object) -> np.ndarray:
        reads.append(1)
        return read(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sf.SoundFile, "read", counting)
    err = _error(data, limits=AudioLimits(max_seconds=1.0))
    assert err.code == "too_long" and "limit of 1 s" in err.message and reads
    assert decode_audio(data, limits=AudioLimits(max_seconds=1.5)).duration_s == pytest.approx(1.5)


def test_a_file_over_the_byte_limit_is_too_large(tmp_path: Path) -> None:
    data = encode_audio(CLIP, SAMPLE_RATE, "wav")
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    for source in (data, path):
        assert _error(source, limits=AudioLimits(max_bytes=10_000)).code == "too_large"


# --- formats, channels and rates -------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name", "subtype"),
    [
        ("wav", "wav", "PCM_16"),
        ("flac", "flac", "PCM_16"),
        ("ogg", "ogg", "VORBIS"),
        ("opus", "ogg", "OPUS"),
        ("mp3", "mp3", "MPEG_LAYER_III"),
        ("aiff", "aiff", "PCM_16"),
    ],
)
@pytest.mark.parametrize("sr", [16_000, 48_000])
def test_round_trips_decode_to_16k_mono_of_the_same_length(
    fmt: str, name: str, subtype: str, sr: int
) -> None:
    y = speech_like(7, 2.5, sr=sr)
    if fmt == "aiff":  # encode_audio makes the codecs of augmentation; AIFF is plain PCM
        data = _write(y, sr, format="AIFF", subtype="PCM_16")
    else:
        data = encode_audio(y, sr, fmt)
    decoded = decode_audio(data)
    assert (decoded.format, decoded.subtype) == (name, subtype)
    assert decoded.sample_rate == SAMPLE_RATE and decoded.source_rate == sr
    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert decoded.duration_s == pytest.approx(2.5, abs=0.05)
    assert np.abs(decoded.samples).max() > 0.2  # sound, not silence


def test_stereo_44k_is_mixed_to_mono_and_resampled() -> None:
    sr = 44_100
    t = np.arange(2 * sr) / sr
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    data = _write(np.stack([left, np.zeros_like(left)], axis=1), sr)
    decoded = decode_audio(data)
    assert (decoded.channels, decoded.source_rate, decoded.sample_rate) == (2, sr, SAMPLE_RATE)
    assert decoded.duration_s == pytest.approx(2.0, abs=0.05)
    assert _peak_hz(decoded.samples) == pytest.approx(440.0, abs=1.0)
    middle = decoded.samples[SAMPLE_RATE // 2 : -SAMPLE_RATE // 2]
    assert np.abs(middle).max() == pytest.approx(0.2, abs=0.01)  # the mean of the channels


def test_probe_reads_the_header_only(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _write(np.zeros((44_100, 2)), 44_100)

    def no_reading(*args: object, **kw: object) -> None:
        raise AssertionError("the samples were read")

    monkeypatch.setattr(sf.SoundFile, "read", no_reading)
    info = probe_audio(data)
    assert info["format"] == "wav" and info["channels"] == 2 and info["sample_rate"] == 44_100
    assert info["duration_s"] == pytest.approx(1.0) and info["bytes"] == len(data)


def test_bytes_and_path_give_the_same_samples(tmp_path: Path) -> None:
    data = encode_audio(speech_like(3, 2.0, sr=22_050), 22_050, "ogg")
    path = tmp_path / "clip.ogg"
    path.write_bytes(data)
    from_path = decode_audio(path).samples
    for source in (data, bytearray(data), memoryview(data), str(path)):
        np.testing.assert_array_equal(decode_audio(source).samples, from_path)  # type: ignore[arg-type]


# --- the shared preparation -----------------------------------------------------------


def test_leading_and_trailing_silence_are_trimmed_alike() -> None:
    """However much silence surrounds it, a clip is cut at the same samples and given
    the same gain: neither the padding's length nor where the 8 ms frame grid fell
    may leave a trace (frame-edge cuts used to keep 15-30 ms of it)."""
    clip = speech_like(4, 2.0)
    first = prepare_speech(clip)
    assert 0 < first.offset_s < 0.02  # speech_like fades in over a few ms
    for lead, tail in ((4_800, 100), (8_000, 3_333), (12_431, 8_000)):
        padded = np.concatenate([np.zeros(lead), clip, np.zeros(tail)]).astype(np.float32)
        prepared = prepare_speech(padded)
        assert prepared.offset_s == pytest.approx(lead / SAMPLE_RATE + first.offset_s)
        np.testing.assert_array_equal(prepared.samples, first.samples)
        assert prepared.gain_db == first.gain_db
    assert first.samples[0] != 0 and first.samples[-1] != 0


def test_loud_and_quiet_copies_are_normalised_to_the_same_level() -> None:
    clip = speech_like(5, 2.0)
    loud, quiet = prepare_speech(clip * 1.9), prepare_speech(clip * 0.01)
    assert _rms_db(loud.samples) == pytest.approx(_rms_db(quiet.samples), abs=0.5)
    assert quiet.gain_db - loud.gain_db == pytest.approx(20 * np.log10(190), abs=0.1)
    assert loud.offset_s == quiet.offset_s


def test_preparing_a_long_recording_takes_little_memory() -> None:
    """The frame levels of a 20-minute upload once took 1.5 GB; now about the clip."""
    y = np.random.default_rng(0).standard_normal(10 * 60 * SAMPLE_RATE, dtype=np.float32)
    y *= 0.05
    tracemalloc.start()
    try:
        prepared = prepare_speech(y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(prepared.samples) > 0.99 * len(y)
    assert peak < 2.5 * y.nbytes
