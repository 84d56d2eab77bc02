"""The voice detector: chunks, training, calibration, scoring with a timeline, evaluation,
and ``synthguard scan`` on recordings next to images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from detector.data.audio import chunk_windows, random_chunk, tile_to
from detector.eval.evaluate import evaluate
from detector.inference import Detector
from detector.inference.clips import aggregate
from detector.inference.voice import VoiceDetector
from detector.media.audio import encode_audio
from tests._audio import speech_like, write_speech
from tests._media import encode, photo_like
from tests.detector.conftest import random_phase


def test_chunk_windows_cover_the_clip_with_the_last_one_at_the_end() -> None:
    assert chunk_windows(100, 40, 20) == [(0, 40), (20, 60), (40, 80), (60, 100)]
    assert chunk_windows(90, 40, 20) == [(0, 40), (20, 60), (40, 80), (50, 90)]
    assert chunk_windows(30, 40, 20) == [(0, 30)]  # short: one window over all of it
    y = np.arange(5, dtype=np.float32)
    assert tile_to(y, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]  # no silence pad


def test_a_training_chunk_of_a_spliced_clip_holds_its_segment() -> None:
    y = np.arange(16_000 * 10, dtype=np.float32)
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = random_chunk(y, 16_000 * 4, rng, segments=[(5.0, 6.5)])
        assert c[0] <= 5.0 * 16_000 and c[-1] >= 6.5 * 16_000 - 1
    for _ in range(20):  # a segment longer than the chunk: the chunk stays inside it
        c = random_chunk(y, 16_000 * 2, rng, segments=[(2.0, 7.0)])
        assert c[0] >= 2.0 * 16_000 and c[-1] < 7.0 * 16_000


def test_the_clip_logit_is_the_mean_of_the_top_quarter() -> None:
    assert aggregate(np.array([1.0])) == 1.0
    assert aggregate(np.array([0.0, 3.0, 1.0, 2.0])) == 3.0
    assert aggregate(np.arange(8.0)) == pytest.approx(6.5)


def test_training_lowers_the_loss_and_writes_an_audio_card(tiny_voice_model: Path) -> None:
    card = json.loads((tiny_voice_model / "card.json").read_text())
    assert card["modality"] == "audio" and card["architecture"] == "audio_cnn"
    hist = card["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert card["generators"] == ["fam_mulaw", "fam_phase"]
    cal = card["calibration"]
    assert cal["temperature"] > 0
    assert cal["uncertain_low"] <= cal["threshold"] <= cal["uncertain_high"]
    assert card["metrics"]["test"]["overall"]["auc"] >= 0.8
    assert (tiny_voice_model / "model.safetensors").stat().st_size < 10 * 2**20


def test_a_one_class_model_trains_calibrates_and_scores(
    tmp_path: Path, tiny_voice_corpus: Path
) -> None:
    from tests.detector.conftest import train_tiny_voice_model

    out = train_tiny_voice_model(tiny_voice_corpus, tmp_path / "oc", output="oneclass")
    card = json.loads((out / "card.json").read_text())
    assert card["model_config"]["output"] == "oneclass"
    assert card["history"][-1]["train_loss"] < card["history"][0]["train_loss"]
    assert card["metrics"]["test"]["overall"]["auc"] >= 0.8
    det = Detector.load(out)
    r = det.score([encode_audio(speech_like(3, 3.0), 16_000, "wav")])[0]
    assert 0.0 <= r.score <= 1.0 and r.segments


def test_online_splices_are_made_from_lossless_real_clips_only(
    tmp_path: Path, tiny_voice_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detector.train.tasks import AudioTask
    from detector.train.trainer import train_detector

    seen: list[tuple[int, str, object, str]] = []
    example = AudioTask.example

    def spy(self, media, item, rng):  # type: ignore[no-untyped-def]
        seen.append((item.label, item.family, item.segments, item.path.suffix))
        return example(self, media, item, rng)

    monkeypatch.setattr(AudioTask, "example", spy)
    overrides = {"epochs": 1, "batch_size": 8, "p_online_fake": 0.6}
    kw = {"modality": "audio", "preset": "tiny"}
    made = train_detector([tiny_voice_corpus], tmp_path / "on", train_overrides=overrides, **kw)
    assert made.card["train_config"]["p_online_fake"] == 0.6
    online = [s for s in seen if s[1] == "online"]
    assert online and all(s[0] == 1 and s[3] == ".flac" and len(s[2]) == 1 for s in online)  # type: ignore[arg-type]
    assert any(s[1] == "real" and s[3] == ".flac" for s in seen)  # not every draw
    assert all(s[1] != "real" or s[0] == 0 for s in seen)
    # Holding out splices holds out the online ones too, and the card says so.
    seen.clear()
    held = {**overrides, "exclude_families": ["splice"]}
    kept = train_detector([tiny_voice_corpus], tmp_path / "off", train_overrides=held, **kw)
    assert kept.card["train_config"]["p_online_fake"] == 0.0
    assert seen and not any(s[1] == "online" for s in seen)


def test_scores_files_bytes_and_arrays_with_segments(tmp_path: Path, tiny_voice_model) -> None:
    det = Detector.load(tiny_voice_model)
    assert isinstance(det, VoiceDetector) and det.modality == "audio"
    wav = write_speech(tmp_path / "a.wav", seed=500, seconds=5.0)
    y = speech_like(500, 5.0)
    mp3 = encode_audio(y, 16_000, "mp3", bitrate_kbps=64)
    results = det.score([wav, mp3, y, b"", b"not audio at all", np.zeros(16_000, np.float32)])
    good, from_mp3, from_array, empty, text, silent = results
    for res in (good, from_mp3, from_array):
        assert res.error is None and 0.0 <= res.score <= 1.0
        assert res.verdict in ("synthetic", "uncertain", "authentic")
        assert res.media["kind"] == "audio"
        # 5 s at 2 s chunks every 1 s: windows start at 0, 1, 2, 3 s (the last ends at 5 s)
        assert len(res.segments) == 4
        assert res.segments[-1]["end_s"] == pytest.approx(5.0, abs=0.05)
        assert res.top_segment is not None
        assert res.segments[res.top_segment]["score"] == max(s["score"] for s in res.segments)
    assert good.sha256 and good.media["format"] == "wav" and good.media["sample_rate"] == 16_000
    assert from_mp3.media["format"] == "mp3"
    assert abs(good.score - from_array.score) < 0.01  # the same clip (16-bit in the WAV)
    assert empty.error["code"] == "empty"
    assert text.error["code"] == "unsupported_media"
    assert silent.error["code"] == "empty" and "silent" in silent.error["message"]


def test_the_timeline_localises_a_spliced_segment(tiny_voice_model: Path) -> None:
    """8 s of real-like speech with 4.0-6.0 s replaced by its random-phase resynthesis."""
    det = Detector.load(tiny_voice_model)
    real = speech_like(900, 8.0)
    spliced = real.copy()
    a, b = 4 * 16_000, 6 * 16_000
    spliced[a:b] = random_phase(real, seed=1)[a:b] * (np.abs(real[a:b]).max() / 0.5)
    res_real, res_spliced = det.score([real, spliced])
    top = res_spliced.segments[res_spliced.top_segment]
    assert top["start_s"] < 6.0 and top["end_s"] > 4.0  # the top chunk overlaps the splice
    assert res_spliced.score > res_real.score


def test_evaluate_an_audio_model(tmp_path: Path, tiny_voice_corpus, tiny_voice_model) -> None:
    report = evaluate(
        tiny_voice_model,
        [tiny_voice_corpus],
        tmp_path,
        robustness=True,
        leave_one_out=True,
        loo_preset="tiny",
        loo_overrides={"epochs": 1, "batch_size": 8},
    )
    assert report["modality"] == "audio"
    assert set(report["per_generator"]) == {"fam_mulaw", "fam_phase"}
    assert {"mp3_64k", "noise_20db", "telephone_8k"} <= set(report["robustness"])
    audit = report["shortcut_audit"]
    assert set(audit) == {"duration_auc", "leading_silence_auc", "loudness_auc", "file_size_auc"}
    # Both classes went through the same trimming and loudness normalisation.
    assert audit["loudness_auc"] < 0.8 and audit["leading_silence_auc"] < 0.8
    assert set(report["leave_one_out"]["held_out_auc"]) == {"fam_mulaw", "fam_phase"}
    assert "localisation" not in report  # no partially synthetic clips in this corpus
    summary = (tmp_path / "summary.md").read_text()
    assert "leading silence" in summary and "mp3_64k" in summary


def test_scan_cli_scores_recordings_and_images_together(
    tmp_path: Path, tiny_model, tiny_voice_model
) -> None:
    write_speech(tmp_path / "voice.flac", seed=7, seconds=3.0, format="FLAC")
    write_speech(tmp_path / "voice_named.png", seed=8, seconds=3.0, format="WAV")
    (tmp_path / "photo.png").write_bytes(encode(photo_like(1), "PNG"))
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    result = CliRunner().invoke(
        app,
        [
            "scan",
            str(tmp_path),
            "--model",
            str(tiny_model),
            "--audio-model",
            str(tiny_voice_model),
            "--jsonl",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {
        Path(r["path"]).name: r
        for r in (json.loads(line) for line in result.stdout.splitlines() if line.startswith("{"))
    }
    for name in ("voice.flac", "voice_named.png"):  # by content, not by extension
        assert rows[name]["media"]["kind"] == "audio" and rows[name]["verdict"]
        assert rows[name]["segments"] and rows[name]["top_segment"]["end_s"] > 0
    assert rows["photo.png"]["media"]["kind"] == "image" and rows["photo.png"]["top_crop"]
    assert rows["broken.wav"]["error"]["code"] == "corrupt_media"
