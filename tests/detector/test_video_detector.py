"""The video detector: face crops, training, the timeline, evaluation, bad input."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from detector.data.corpus import read_items
from detector.data.faces import FaceCropConfig, extract_face_corpus, face_label, iou
from detector.inference import Detector
from detector.inference.video import VideoDetector, aggregate_frames
from detector.inference.video_faces import whole_frame
from detector.media.video import VideoClip, encode_video, probe_video
from generators.corpus.manifest import read_manifest


def test_iou_and_labels():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0
    assert iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert face_label([0, 0, 10, 10], None, False, 0.3) == 0  # real clip: real face
    assert face_label([0, 0, 10, 10], None, True, 0.3) == 1  # --fakes: every face
    assert face_label([0, 0, 10, 10], [[1, 1, 10, 10]], True, 0.3) == 1  # the swapped face
    assert face_label([0, 0, 10, 10], [[50, 50, 10, 10]], True, 0.3) is None  # a bystander
    assert face_label([0, 0, 10, 10], [], True, 0.3) is None  # a frame left alone


def test_frame_aggregation_is_the_top_quarter_mean():
    assert aggregate_frames([1.0]) == 1.0
    assert aggregate_frames([0, 0, 0, 0, 0, 0, 0, 8.0]) == pytest.approx(4.0)  # top 2 of 8
    assert aggregate_frames([3.0, 1.0, 2.0], top_fraction=1.0) == pytest.approx(2.0)


def test_whole_frame_keeps_the_aspect():
    frame = np.zeros((90, 160, 3), np.uint8)
    assert whole_frame(frame, 64).shape == (64, 114, 3)


def test_face_corpus_labels_follow_the_changed_boxes(tiny_video_corpus):
    cfg = FaceCropConfig.preset("tiny")
    faces = extract_face_corpus(tiny_video_corpus, config=cfg)
    items = read_items([faces], modality="image")
    gens = {it.generator for it in items}
    assert "voice_swap" not in gens  # its faces are real faces: left out, not mislabeled
    assert {"real", "faceswap", "ae_swap"} <= gens
    video_split = {r.id: r.split for r in read_manifest(tiny_video_corpus)}
    for it in items:
        assert it.split == video_split[it.source_item]  # a crop stays in its video's split
    meta = json.loads((faces / "corpus.json").read_text())
    assert meta["size"] == cfg.size
    # Unchanged corpus and settings: reused as it is.
    stamp = (faces / "manifest.jsonl").stat().st_mtime_ns
    assert extract_face_corpus(tiny_video_corpus, config=cfg) == faces
    assert (faces / "manifest.jsonl").stat().st_mtime_ns == stamp


def test_model_folder_and_card(tiny_video_model):
    card = json.loads((tiny_video_model / "card.json").read_text())
    assert card["modality"] == "video"
    assert (tiny_video_model / "face" / "model.safetensors").is_file()
    assert (tiny_video_model / "voice" / "card.json").is_file()
    assert card["voice_model"]["name"]
    for key in ("visual", "voice"):
        assert card["aggregation"][key]["a"] > 0
    cal = card["calibration"]
    assert cal["uncertain_low"] <= cal["threshold"] <= cal["uncertain_high"]
    assert card["metrics"]["test"]["overall"]["n"] > 0
    assert set(card["metrics"]["test"]["per_family"]) <= {
        "face_swap",
        "autoencoder_swap",
        "voice_swap",
    }
    assert "overall" in card["metrics"]["test_frames"]


def test_scores_give_a_timeline(tiny_video_model, tiny_video_corpus):
    det = Detector.load(tiny_video_model)
    assert isinstance(det, VideoDetector) and det.modality == "video"
    rows = read_manifest(tiny_video_corpus)
    voiced = next(r for r in rows if r.label == "real" and r.has_audio)
    swapped = next(r for r in rows if r.generator_name == "faceswap")
    paths = [tiny_video_corpus / voiced.path, tiny_video_corpus / swapped.path]
    results = det.score(paths)
    for res in results:
        assert res.error is None and 0.0 <= res.score <= 1.0
        assert res.verdict in ("synthetic", "uncertain", "authentic")
        assert res.media["kind"] == "video" and res.media["width"] == 160
        times = [f["t"] for f in res.frames]
        assert len(times) == 4 and times == sorted(times)  # 2 s at 2 frames/s
        assert all(0.0 <= f["score"] <= 1.0 for f in res.frames)
        assert res.top_frame == int(np.argmax([f["score"] for f in res.frames]))
        faces = [face for f in res.frames for face in f["faces"]]
        assert faces, "the face in these clips is found"
        for face in faces:
            x, y, w, h = face["box"]
            assert x >= 0 and y >= 0 and x + w <= 160 and y + h <= 160
        assert res.parts["visual"] is not None
        assert len(res.sha256) == 64
    assert results[0].segments and results[0].parts["voice"] is not None
    # Bytes score like the file.
    again = det.score((tiny_video_corpus / voiced.path).read_bytes())[0]
    assert again.score == pytest.approx(results[0].score)
    assert again.sha256 == results[0].sha256


def test_a_frame_without_faces_is_scored_whole(tiny_video_model, tmp_path):
    from skimage import data

    from generators.sources.video import pan_zoom_clip

    frames = pan_zoom_clip(data.coffee(), seconds=1.0, fps=4.0, size=(96, 96))
    path = tmp_path / "coffee.mp4"
    path.write_bytes(encode_video(VideoClip(frames, 4.0)))
    res = Detector.load(tiny_video_model).score(path)[0]
    assert res.error is None
    assert res.frames and all(f["whole_frame"] and not f["faces"] for f in res.frames)
    assert res.parts["voice"] is None and res.segments == []


def test_bad_inputs_get_codes(tiny_video_model, tiny_video_corpus, tmp_path):
    import av

    det = Detector.load(tiny_video_model)
    good = next(p for p in sorted((tiny_video_corpus / "real").rglob("*.mp4")))
    data = good.read_bytes()
    audio_only = io.BytesIO()
    with av.open(audio_only, "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp",
                                           layout="mono")  # fmt: skip
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    cases = {
        "empty": b"",
        "text": b"just some text, not a video at all" * 10,
        "png": _png(),
        "audio_only": audio_only.getvalue(),
        "cut_header": data[:200],
    }
    results = dict(zip(cases, det.score(list(cases.values())), strict=True))
    assert results["empty"].error["code"] == "empty"
    assert results["text"].error["code"] == "unsupported_media"
    assert results["png"].error["code"] == "unsupported_media"
    assert results["audio_only"].error["code"] == "unsupported_media"
    assert "video" in results["audio_only"].error["message"]
    assert results["cut_header"].error["code"] in ("corrupt_media", "empty")
    missing = det.score(tmp_path / "nope.mp4")[0]
    assert missing.error["code"] == "corrupt_media"
    assert probe_video(good).has_audio in (True, False)


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return buf.getvalue()


def test_evaluate_reports_video_and_frame_metrics(tiny_video_model, tiny_video_corpus, tmp_path):
    from detector.eval.evaluate import evaluate

    report = evaluate(
        tiny_video_model,
        [tiny_video_corpus],
        tmp_path / "report",
        robustness=True,
        leave_one_out=True,
        loo_preset="tiny",
        loo_overrides={"epochs": 1, "p_online_fake": 0.3},
    )
    assert report["modality"] == "video"
    assert report["overall"]["n"] == len(
        [r for r in read_manifest(tiny_video_corpus) if r.split == "test"]
    )
    assert {"h264_crf35", "h264_crf40", "downscale_0.5"} <= set(report["robustness"])
    loo = report["leave_one_out"]
    assert set(loo["held_out_auc"]) == set(report["per_family"])
    for fam in loo["held_out_auc"]:  # no online self-blends where self-blends are held out
        card = json.loads((tmp_path / "report" / "leave_one_out" / fam / "card.json").read_text())
        assert (card["face"]["train_config"]["p_online_fake"] > 0) == (fam != "self_blend")
    assert "overall" in report["frames"]
    assert set(report["shortcut_audit"]) == {"file_size_auc", "duration_auc"}
    for name in ("metrics.json", "summary.md", "roc.png", "leave_one_out.png"):
        assert (tmp_path / "report" / name).is_file()
    assert not (tmp_path / "report" / "perturbed").exists()


def test_voice_track_is_scored_in_windows(tiny_video_model, tiny_video_corpus, monkeypatch):
    """A long track is read window by window; segments stay in the video's time."""
    import detector.inference.video as video

    rows = read_manifest(tiny_video_corpus)
    voiced = tiny_video_corpus / next(r for r in rows if r.label == "real" and r.has_audio).path
    det = Detector.load(tiny_video_model)
    whole = det.evidence(voiced)
    monkeypatch.setattr(video, "VOICE_WINDOW_S", 1.0)  # 2 s clip: two windows
    windowed = det.evidence(voiced)
    assert windowed.voice is not None and whole.voice is not None
    starts = [s["start_s"] for s in windowed.voice_segments]
    assert starts == sorted(starts) and max(s["end_s"] for s in windowed.voice_segments) <= 2.01
    assert any(s["start_s"] >= 1.0 for s in windowed.voice_segments)


def test_gate_compares_video_models(tiny_video_model, tiny_video_corpus):
    from detector.eval.gate import evaluation_gate

    gate = evaluation_gate(tiny_video_model, tiny_video_model, [tiny_video_corpus])
    assert gate["passed"], gate["summary"]  # a model against itself: nothing forgotten
    assert gate["test_items"]["real"] > 0 and gate["test_items"]["synthetic"] > 0
