"""Videos through the service (embedded default) and ``synthguard scan``: upload, the
contract with its frame timeline, voice segments and parts, repeats from the stored
result, every kind of bad video with its code, mixed batches, a server with no video
model, and a video model added to the model store and promoted."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from detector.media.audio import encode_audio
from detector.media.video import VideoClip, encode_video
from tests._audio import speech_like
from tests.api._util import VERDICTS, assert_error, png, running_app, wait_batch
from worker.runtime import get_runtime
from worker.settings import Settings

MAX_SECONDS = 10.0  # the server's video duration limit in these tests


def corpus_clip(corpus: Path, *, label: str, has_audio: bool | None = None) -> bytes:
    """The first clip of the corpus with that label (and sound track, if asked)."""
    for line in (corpus / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["label"] == label and has_audio in (None, row["has_audio"]):
            return (corpus / row["path"]).read_bytes()
    raise AssertionError(f"no {label} clip with has_audio={has_audio} in {corpus}")


def audio_only_mp4() -> bytes:
    """An MP4 holding a sound track and no video (an .m4a by another name)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(speech_like(1, 1.0)[None], format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16_000, 0
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return buf.getvalue()


def frameless_mkv(tmp_path: Path) -> bytes:
    """A Matroska file whose video track holds no frame (its sound track has some)."""
    path = tmp_path / "none.mkv"
    with av.open(str(path), "w", format="matroska") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        s = c.add_stream("aac", rate=16_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(speech_like(2, 0.5)[None], format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16_000, 0
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path.read_bytes()


def index_last_mp4(seconds: float = 2.0) -> bytes:
    """An MP4 with its index (moov) after the media data, as a camera writes it."""
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for _ in range(round(seconds * 10)):
            pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        c.mux(s.encode(None))
    data = buf.getvalue()
    assert data.find(b"moov") > data.find(b"mdat")
    return data


def long_clip(seconds: float) -> bytes:
    frames = np.random.default_rng(1).integers(0, 256, (round(seconds * 5), 32, 32, 3), np.uint8)
    return encode_video(VideoClip(frames, 5.0), crf=40, preset="ultrafast")


def wav(seed: int, seconds: float = 2.0) -> bytes:
    return encode_audio(speech_like(seed, seconds), 16_000, "wav")


def check_timeline(view: dict[str, Any]) -> None:
    """The video parts of the contract: frames, top_frame, segments, parts."""
    frames = view["frames"]
    assert frames, view
    times = [f["t"] for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times) and times[0] >= 0
    assert times[-1] <= view["media"]["duration_s"]
    for f in frames:
        assert 0.0 <= f["score"] <= 1.0 and isinstance(f["whole_frame"], bool)
        assert f["whole_frame"] == (not f["faces"])
        for face in f["faces"]:
            assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
            assert face["box"][2] > 0 and face["box"][3] > 0 and 0.0 <= face["score"] <= 1.0
        if f["faces"]:  # a frame is as synthetic as its most synthetic face
            assert f["score"] == pytest.approx(max(x["score"] for x in f["faces"]))
    assert frames[view["top_frame"]]["score"] == max(f["score"] for f in frames)
    parts = view["parts"]
    assert set(parts) == {"visual", "voice"} and 0.0 <= parts["visual"] <= 1.0
    # The video's score is its most synthetic kind of evidence.
    assert view["score"] == pytest.approx(max(p for p in parts.values() if p is not None))
    assert view["crops"] == [] and view["top_crop"] is None


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, tiny_video_model: Path) -> Settings:
    root = tmp_path_factory.mktemp("video_service")
    return Settings(data_dir=root, video_model=tiny_video_model, max_video_seconds=MAX_SECONDS)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with running_app(settings) as c:
        yield c


def test_models_lists_the_video_model(client: TestClient) -> None:
    models = {m["modality"]: m for m in client.get("/v1/models").json()}
    assert {"image", "video"} <= set(models)
    assert models["video"]["name"] == "video_faces" and models["video"]["threshold"] is not None


def test_upload_a_face_clip_with_a_voice(
    client: TestClient, settings: Settings, tiny_video_corpus: Path
) -> None:
    data = corpus_clip(tiny_video_corpus, label="real", has_audio=True)
    resp = client.post("/v1/scans?wait=60", files={"file": ("clip.mp4", data, "video/mp4")})
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["status"] == "done" and view["verdict"] in VERDICTS, view
    media = view["media"]
    assert media["sha256"] == hashlib.sha256(data).hexdigest() and media["bytes"] == len(data)
    assert media["kind"] == "video" and media["format"] == "mp4" and media["codec"] == "h264"
    assert (media["width"], media["height"], media["rotation"]) == (160, 160, 0)
    assert media["fps"] == 10.0 and media["duration_s"] == pytest.approx(2.0, abs=0.05)
    assert media["has_audio"] is True
    assert view["model"]["name"] == "video_faces"
    check_timeline(view)
    assert any(f["faces"] for f in view["frames"])  # a face clip: its face is found
    assert view["parts"]["voice"] is not None
    segments = view["segments"]
    assert segments and segments[view["top_segment"]]["score"] == max(s["score"] for s in segments)
    assert segments[-1]["end_s"] <= media["duration_s"] + 0.05
    video = get_runtime(settings).video
    assert video is not None
    assert view["score"] == pytest.approx(video.score(data)[0].score, abs=1e-6)
    again = client.post("/v1/scans?wait=60", files={"file": ("again.mp4", data)})
    assert again.status_code == 200 and again.json()["cached"] is True
    assert again.json()["frames"] == view["frames"] and again.json()["parts"] == view["parts"]


def test_a_silent_clip_and_a_fake(client: TestClient, tiny_video_corpus: Path) -> None:
    silent = corpus_clip(tiny_video_corpus, label="real", has_audio=False)
    view = client.post("/v1/scans?wait=60", files={"file": ("silent.mp4", silent)}).json()
    assert view["status"] == "done" and view["media"]["has_audio"] is False, view
    check_timeline(view)
    assert view["parts"]["voice"] is None and view["segments"] == []
    assert view["top_segment"] is None
    fake = corpus_clip(tiny_video_corpus, label="synthetic")
    view = client.post("/v1/scans?wait=60", files={"file": ("fake.mp4", fake)}).json()
    assert view["status"] == "done" and view["verdict"] in VERDICTS, view
    check_timeline(view)


def test_other_kinds_have_empty_video_fields(client: TestClient) -> None:
    view = client.post("/v1/scans?wait=30", files={"file": ("a.png", png(11))}).json()
    assert view["media"]["kind"] == "image" and view["crops"]
    assert (view["frames"], view["top_frame"], view["parts"]) == ([], None, None)


def test_bad_videos_get_their_codes(
    client: TestClient, tmp_path: Path, tiny_video_corpus: Path
) -> None:
    def post(data: bytes, name: str = "x.mp4") -> Any:
        return client.post("/v1/scans?wait=60", files={"file": (name, data, "video/mp4")})

    assert_error(post(b""), 422, "empty")
    assert_error(post(b"this is a text file, not a video\n" * 8), 415, "unsupported_media")
    message = assert_error(post(audio_only_mp4()), 415, "unsupported_media")
    assert "no video track" in message
    assert_error(post(frameless_mkv(tmp_path), "none.mkv"), 422, "empty")
    # Cut in half, an MP4 whose index comes last has lost it: nothing can be read.
    assert_error(post(index_last_mp4()[:-2000]), 422, "corrupt_media")
    # One whose index comes first is scored on the frames before the cut, as players do.
    whole = corpus_clip(tiny_video_corpus, label="real", has_audio=False)
    half = post(whole[: len(whole) // 2])
    assert half.status_code == 200, half.text
    assert half.json()["status"] == "done" and half.json()["frames"]
    # Its first hundred bytes: the header is there, the index is not.
    assert_error(post(whole[:100]), 422, "corrupt_media")
    message = assert_error(post(long_clip(MAX_SECONDS + 2)), 413, "too_long")
    assert "limit" in message


def test_a_batch_of_images_recordings_and_videos(
    client: TestClient, tiny_video_corpus: Path
) -> None:
    files = [
        ("files", ("a.png", png(12))),
        ("files", ("b.wav", wav(13))),
        ("files", ("c.mp4", corpus_clip(tiny_video_corpus, label="synthetic", has_audio=True))),
        ("files", ("d.mp4", audio_only_mp4())),
    ]
    resp = client.post("/v1/batches", files=files)
    assert resp.status_code == 202, resp.text
    batch = wait_batch(client, resp.json()["id"], timeout=60)
    assert batch["counts"]["done"] == 3 and batch["counts"]["failed"] == 1, batch
    rows = client.get(f"/v1/batches/{batch['id']}/results?format=jsonl").text.splitlines()
    by_name = {r["filename"]: r for r in map(json.loads, rows)}
    assert {k: r["media"]["kind"] for k, r in by_name.items()} == {
        "a.png": "image", "b.wav": "audio", "c.mp4": "video", "d.mp4": None
    }  # fmt: skip
    assert by_name["d.mp4"]["error"]["code"] == "unsupported_media"
    check_timeline(by_name["c.mp4"])


def _no_shipped_video(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: Any) -> None:
    real_dir = module.default_model_dir

    def no_video(modality: str) -> Path:  # as an install that ships no video model
        return tmp_path / "none" if modality == "video" else real_dir(modality)

    monkeypatch.setattr(module, "default_model_dir", no_video)


def test_a_server_without_a_video_model_refuses_videos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_video_corpus: Path
) -> None:
    import worker.runtime

    _no_shipped_video(monkeypatch, tmp_path, worker.runtime)
    settings = Settings(data_dir=tmp_path)  # and no SYNTHGUARD_VIDEO_MODEL
    data = corpus_clip(tiny_video_corpus, label="real")
    with running_app(settings) as client:
        resp = client.post("/v1/scans?wait=30", files={"file": ("v.mp4", data)})
        message = assert_error(resp, 415, "unsupported_media")
        assert "video model" in message and "SYNTHGUARD_VIDEO_MODEL" in message
        assert "video" not in {m["modality"] for m in client.get("/v1/models").json()}
        view = client.post("/v1/scans?wait=30", files={"file": ("a.png", png(14))}).json()
        assert view["status"] == "done"


def test_videos_have_their_own_byte_limit_and_stream_to_disk(
    tmp_path: Path, tiny_video_model: Path, tiny_video_corpus: Path
) -> None:
    clip = corpus_clip(tiny_video_corpus, label="real", has_audio=True)
    image = png(15)
    settings = Settings(
        data_dir=tmp_path,
        video_model=tiny_video_model,
        max_upload_bytes=len(image) - 1,  # under the image, far under the video
        max_video_upload_bytes=len(clip) + 100,
    )
    blobs = settings.blob_dir

    def stored() -> list[str]:
        return sorted(p.name for p in blobs.rglob("*") if p.is_file()) if blobs.is_dir() else []

    with running_app(settings) as client:
        view = client.post("/v1/scans?wait=60", files={"file": ("v.mp4", clip)}).json()
        assert view["status"] == "done" and view["media"]["bytes"] == len(clip), view
        assert stored() == [hashlib.sha256(clip).hexdigest()]  # kept once, by content
        assert_error(client.post("/v1/scans", files={"file": ("a.png", image)}), 413, "too_large")
        # Over the video limit: refused while streaming, nothing left behind.
        padded = clip + b"\0" * 200
        message = assert_error(
            client.post("/v1/scans", files={"file": ("big.mp4", padded)}), 413, "too_large"
        )
        assert f"{len(clip) + 100:,}" in message
        # A damaged video is probed on disk and refused; nothing is kept either.
        assert_error(client.post("/v1/scans", files={"file": ("cut.mp4", clip[:100])}), 422,
                     "corrupt_media")  # fmt: skip
        assert stored() == [hashlib.sha256(clip).hexdigest()]
        again = client.post("/v1/scans?wait=60", files={"file": ("again.mp4", clip)}).json()
        assert again["cached"] is True and stored() == [hashlib.sha256(clip).hexdigest()]


def test_a_video_model_in_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_video_model: Path, tiny_video_corpus: Path
) -> None:
    """Added (with its face and voice sub-models), promoted, scored with, and a second
    version scored in shadow."""
    from api.cli import app

    monkeypatch.setenv("SYNTHGUARD_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    for args in (
        ["models", "add", str(tiny_video_model)],
        ["models", "add", str(tiny_video_model)],
        ["models", "promote", "v1", "--modality", "video", "--force", "--reason", "first one"],
        ["models", "shadow", "v2", "--modality", "video"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    stored = tmp_path / "models" / "video" / "v1"
    assert sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file()) == [
        "card.json", "face/card.json", "face/model.safetensors", "model.safetensors",
        "voice/card.json", "voice/model.safetensors",
    ]  # fmt: skip
    data = corpus_clip(tiny_video_corpus, label="synthetic", has_audio=False)
    with running_app(Settings(data_dir=tmp_path)) as client:
        models = {m["modality"]: m for m in client.get("/v1/models").json()}
        assert models["video"]["version"] == "v1"
        view = client.post("/v1/scans?wait=60", files={"file": ("v.mp4", data)}).json()
        assert view["status"] == "done" and view["model"]["version"] == "v1", view
        check_timeline(view)
        report = client.get("/v1/models/video/versions/v2/shadow").json()
        assert report["compared"] == 1 and report["disagreements"] == 0, report


# --- synthguard scan --------------------------------------------------------------------


def _scan_folder(tmp_path: Path, corpus: Path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "photo.png").write_bytes(png(15))
    (folder / "voice.wav").write_bytes(wav(16))
    (folder / "clip.mp4").write_bytes(corpus_clip(corpus, label="real", has_audio=True))
    (folder / "named.png").write_bytes(corpus_clip(corpus, label="synthetic"))  # by content
    (folder / "cut.mp4").write_bytes(index_last_mp4()[:-2000])
    return folder


def _rows(output: str) -> dict[str, dict[str, Any]]:
    rows = (json.loads(line) for line in output.splitlines() if line.startswith("{"))
    return {Path(r["path"]).name: r for r in rows}


def test_scan_cli_scores_videos_with_the_rest(tmp_path: Path, tiny_video_model: Path,
                                              tiny_video_corpus: Path) -> None:  # fmt: skip
    from api.cli import app

    folder = _scan_folder(tmp_path, tiny_video_corpus)
    args = ["scan", str(folder), "--video-model", str(tiny_video_model)]
    result = CliRunner().invoke(app, [*args, "--jsonl"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert {n: r["kind"] for n, r in rows.items()} == {
        "clip.mp4": "video", "cut.mp4": "video", "named.png": "video",
        "photo.png": "image", "voice.wav": "audio",
    }  # fmt: skip
    for name in ("clip.mp4", "named.png"):
        row = rows[name]
        assert row["verdict"] in VERDICTS and row["media"]["kind"] == "video", row
        times = [f["t"] for f in row["frames"]]
        assert times == sorted(times) and row["top_frame"] in row["frames"]
        assert set(row["parts"]) == {"visual", "voice"}
    assert rows["clip.mp4"]["segments"] and rows["clip.mp4"]["top_segment"]
    assert rows["photo.png"]["top_crop"] and rows["voice.wav"]["segments"]
    assert rows["cut.mp4"]["error"]["code"] == "corrupt_media"
    assert rows["cut.mp4"]["verdict"] is None
    # The table: the top frame's time and its face.
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})  # rows on one line
    assert result.exit_code == 0, result.output
    assert "frame at" in result.output and "face [" in result.output
    assert "corrupt_media" in result.output


def test_scan_cli_without_a_video_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        tiny_video_corpus: Path) -> None:  # fmt: skip
    import api.cli_scan
    from api.cli import app

    _no_shipped_video(monkeypatch, tmp_path, api.cli_scan)
    folder = _scan_folder(tmp_path, tiny_video_corpus)
    result = CliRunner().invoke(app, ["scan", str(folder), "--jsonl"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    for name in ("clip.mp4", "cut.mp4", "named.png"):
        assert rows[name]["error"]["code"] == "unsupported_media", rows[name]
        assert "no video model" in rows[name]["error"]["message"]
    assert rows["photo.png"]["verdict"] in VERDICTS and rows["voice.wav"]["verdict"] in VERDICTS
    wrong = CliRunner().invoke(
        app, ["scan", str(folder), "--video-model", str(tmp_path / "x")], env={"COLUMNS": "300"}
    )
    assert wrong.exit_code == 2 and "not a model folder" in wrong.output
