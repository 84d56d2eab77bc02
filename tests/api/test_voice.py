"""Recordings through the service (embedded default): upload, the contract with segments,
repeats from the stored result, bad recordings, mixed batches, and a server with no
voice model."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from detector.media.audio import encode_audio
from tests._audio import speech_like
from tests.api._util import (
    VERDICTS,
    assert_error,
    png,
    running_app,
    voice_model,
    wait_batch,
    wait_scan,
)
from worker.runtime import get_runtime
from worker.settings import Settings


def wav(seed: int, seconds: float = 3.0, *, channels: int = 1, subtype: str = "PCM_16") -> bytes:
    y = speech_like(seed, seconds)
    buf = io.BytesIO()
    sf.write(buf, np.repeat(y[:, None], channels, axis=1), 16_000, format="WAV", subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("voice_service")
    return Settings(data_dir=root, audio_model=voice_model(root / "voice"), max_audio_seconds=30)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with running_app(settings) as c:
        yield c


def test_models_lists_the_voice_model(client: TestClient) -> None:
    models = {m["modality"]: m for m in client.get("/v1/models").json()}
    assert {"image", "audio"} <= set(models)
    assert models["audio"]["name"] == "audio_cnn" and models["audio"]["threshold"] == 0.5


def test_upload_a_recording_and_get_segments(client: TestClient, settings: Settings) -> None:
    data = wav(1, seconds=5.0)
    resp = client.post("/v1/scans?wait=30", files={"file": ("voice.wav", data, "audio/wav")})
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["status"] == "done" and view["verdict"] in VERDICTS
    media = view["media"]
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    assert media["kind"] == "audio" and media["format"] == "wav" and media["channels"] == 1
    assert media["duration_s"] == pytest.approx(5.0, abs=0.01)
    assert media["sample_rate"] == 16_000 and media["bytes"] == len(data)
    assert view["model"]["name"] == "audio_cnn"
    assert view["crops"] == [] and view["top_crop"] is None
    segments = view["segments"]
    assert len(segments) == 4  # tiny preset: 2 s chunks every 1 s over 5 s
    assert segments[0]["start_s"] < 0.1 and segments[-1]["end_s"] == pytest.approx(5.0, abs=0.05)
    assert segments[view["top_segment"]]["score"] == max(s["score"] for s in segments)
    direct = get_runtime(settings).audio.score(data)[0]  # type: ignore[union-attr]
    assert view["score"] == pytest.approx(direct.score, abs=1e-6)
    again = client.post("/v1/scans?wait=30", files={"file": ("again.wav", data, "audio/wav")})
    assert again.json()["cached"] is True and again.json()["score"] == view["score"]


def test_compressed_recordings_are_scored(client: TestClient) -> None:
    y = speech_like(2, 3.0)
    for name, data in (
        ("v.mp3", encode_audio(y, 16_000, "mp3", bitrate_kbps=64)),
        ("v.opus", encode_audio(y, 16_000, "opus", bitrate_kbps=32)),
        ("v.flac", encode_audio(y, 16_000, "flac")),
    ):
        view = client.post("/v1/scans?wait=30", files={"file": (name, data)}).json()
        assert view["status"] == "done" and view["media"]["kind"] == "audio", view


def test_bad_recordings_get_their_codes(client: TestClient) -> None:
    def post(data: bytes) -> object:
        return client.post("/v1/scans?wait=30", files={"file": ("x.wav", data, "audio/wav")})

    assert_error(post(wav(3, channels=8)), 415, "unsupported_media")  # at upload: the header
    assert "limit" in assert_error(post(wav(4, seconds=65.0)), 413, "too_long")  # header: 65 s
    # A length the header does not give away is found by the worker's streamed decode.
    assert_error(post(wav(4, seconds=31.0)), 413, "too_long")
    assert_error(post(b"RIFF\x24\x00\x00\x00WAVEfmt "), 422, "corrupt_media")
    nan = speech_like(5, 2.0)
    nan[100] = np.nan
    buf = io.BytesIO()
    sf.write(buf, nan, 16_000, format="WAV", subtype="FLOAT")
    assert_error(post(buf.getvalue()), 422, "corrupt_media")  # found by the worker's decode
    silent = io.BytesIO()
    sf.write(silent, np.zeros(32_000, np.float32), 16_000, format="WAV")
    message = assert_error(post(silent.getvalue()), 422, "empty")
    assert "silent" in message


def test_a_batch_of_images_and_recordings(client: TestClient) -> None:
    files = [
        ("files", ("a.png", png(1))),
        ("files", ("b.wav", wav(6))),
        ("files", ("c.flac", encode_audio(speech_like(7, 2.0), 16_000, "flac"))),
        ("files", ("d.wav", b"")),
    ]
    resp = client.post("/v1/batches", files=files)
    assert resp.status_code == 202, resp.text
    batch = wait_batch(client, resp.json()["id"])
    assert batch["counts"]["done"] == 3 and batch["counts"]["failed"] == 1
    rows = client.get(f"/v1/batches/{batch['id']}/results?format=jsonl").text.splitlines()
    kinds = {r["filename"]: r["media"]["kind"] for r in map(json.loads, rows)}
    assert kinds == {"a.png": "image", "b.wav": "audio", "c.flac": "audio", "d.wav": None}


def test_a_server_without_a_voice_model_refuses_recordings(tmp_path: Path, monkeypatch) -> None:
    import worker.runtime

    real_dir = worker.runtime.default_model_dir

    def no_shipped_voice(modality: str) -> Path:  # as an install without a voice model
        return tmp_path / "none" if modality == "audio" else real_dir(modality)

    monkeypatch.setattr(worker.runtime, "default_model_dir", no_shipped_voice)
    settings = Settings(data_dir=tmp_path)  # and no SYNTHGUARD_AUDIO_MODEL
    with running_app(settings) as client:
        resp = client.post("/v1/scans?wait=30", files={"file": ("v.wav", wav(8))})
        assert "voice model" in assert_error(resp, 415, "unsupported_media")
        assert "audio" not in [m["modality"] for m in client.get("/v1/models").json()]
        view = client.post("/v1/scans?wait=30", files={"file": ("a.png", png(2))}).json()
        assert wait_scan(client, view["id"])["status"] == "done"
