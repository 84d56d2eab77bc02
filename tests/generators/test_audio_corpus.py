"""Voice corpora: real utterances and their resyntheses, one preparation and encoding for all."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from detector.media.audio import decode_audio
from generators.audio import tts
from generators.corpus import CorpusConfig, build_corpus, read_manifest
from generators.sources.audio import audio_folder_source
from tests._audio import speech_folder

GENS = ("gl_linear", "lpc", "splice")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    return speech_folder(tmp_path_factory.mktemp("speech"), n=8, seconds=3.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, speech) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("voice_corpus")
    config = CorpusConfig(
        modality="audio", real=str(speech), generators=GENS, per_generator=8, preset="tiny"
    )
    return out, build_corpus(config, out)


def test_rows_describe_the_clips_and_match_the_files(corpus) -> None:
    out, report = corpus
    rows = read_manifest(out)
    assert report.added == {"real": 8, "gl_linear": 8, "lpc": 8, "splice": 8}
    for r in rows:
        data = (out / r.path).read_bytes()
        assert r.modality == "audio" and r.sample_rate == 16_000
        assert hashlib.sha256(data).hexdigest() == r.sha256 and len(data) == r.bytes
        assert Path(r.path).suffix == {"flac": ".flac", "mp3": ".mp3", "opus": ".opus"}[r.format]
        decoded = decode_audio(out / r.path)
        assert decoded.format == ("ogg" if r.format == "opus" else r.format)
        assert abs(decoded.duration_s - r.duration_s) < 0.1  # codecs pad a little
    real = {r.source_item: r for r in rows if r.label == "real"}
    assert len(real) == 8  # each utterance once
    for r in rows:
        if r.label == "synthetic":
            source = real[r.source_item]
            assert r.split == source.split  # splits by source utterance: no leak
            # copy-synthesis keeps the real clip's length: duration says nothing
            assert r.duration_s == pytest.approx(source.duration_s, abs=1e-3)


def test_spliced_clips_carry_their_segment(corpus) -> None:
    out, _ = corpus
    spliced = [r for r in read_manifest(out) if r.generator_name == "splice"]
    assert spliced and all(r.generator_family == "splice" for r in spliced)
    for r in spliced:
        ((a, b),) = r.segments
        assert 0.0 <= a < b <= r.duration_s


def test_encoding_is_label_blind_and_audited(corpus) -> None:
    out, report = corpus
    audit = report.audit
    assert {"auc_format", "auc_bitrate", "auc_duration", "auc_file_bytes"} <= set(audit)
    assert audit["auc_duration"] == pytest.approx(0.5, abs=0.2)
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["sample_rate"] == 16_000 and "audio" in meta["config"]


def test_rebuilding_extends_and_keeps_what_is_there(tmp_path, corpus, speech) -> None:
    out, _ = corpus
    before = {r.id: r.sha256 for r in read_manifest(out)}
    config = CorpusConfig(
        modality="audio",
        real=str(speech),
        generators=(*GENS, "gl_mel"),
        per_generator=8,
        preset="tiny",
    )
    report = build_corpus(config, out)
    assert report.added == {"gl_mel": 8} and sorted(report.skipped) == sorted(GENS)
    after = {r.id: r.sha256 for r in read_manifest(out)}
    assert all(after[k] == v for k, v in before.items())


def test_a_generator_of_another_modality_is_refused(speech) -> None:
    with pytest.raises(ValueError, match="makes image; this corpus is audio"):
        CorpusConfig(modality="audio", real=str(speech), generators=("gan_tconv",))


@pytest.mark.skipif(not tts.available(), reason="espeak-ng is not installed")
def test_text_to_speech_items_are_prepared_like_real_ones(tmp_path, speech) -> None:
    config = CorpusConfig(
        modality="audio", real=str(speech), generators=("tts_espeak",), per_generator=4,
        preset="tiny",
    )  # fmt: skip
    build_corpus(config, tmp_path)
    rows = [r for r in read_manifest(tmp_path) if r.label == "synthetic"]
    assert len(rows) == 4 and all(r.source_item is None for r in rows)
    assert {r.split for r in rows} <= {"train", "val", "test"}


def test_cli_builds_a_voice_corpus(tmp_path: Path, speech) -> None:
    source = audio_folder_source(speech)
    assert len(source) == 8
    result = CliRunner().invoke(
        app,
        [
            "corpus", "build", "--modality", "audio", "--real", str(speech),
            "--generators", "gl_linear", "--per-generator", "4", "--preset", "tiny",
            "--out", str(tmp_path / "c"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "8 recordings" in result.output and "duration" in result.output
    result = CliRunner().invoke(
        app,
        [
            "corpus", "build", "--modality", "audio", "--real", str(speech),
            "--generators", "gan_tconv", "--out", str(tmp_path / "d"),
        ],
    )  # fmt: skip
    assert result.exit_code != 0 and "makes image" in result.output


def test_cli_trains_and_samples_a_voice_generator(tmp_path: Path, speech) -> None:
    ckpt = tmp_path / "ckpt"
    result = CliRunner().invoke(
        app,
        [
            "generators", "train", "melgan", "--real", str(speech), "--preset", "tiny",
            "--out", str(ckpt),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        app,
        [
            "generators", "sample", "--checkpoint", str(ckpt), "-n", "2",
            "--out", str(tmp_path / "s"), "--real", str(speech),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    clips = sorted((tmp_path / "s").glob("*.flac"))
    assert len(clips) == 2 and all(decode_audio(c).duration_s > 1.0 for c in clips)
