"""The models shipped inside the package: present, small, loadable, usable."""

from __future__ import annotations

from detector.identity import WEIGHTS_DIR
from detector.inference import Detector
from tests._media import encode, photo_like


def test_shipped_image_model_loads_and_scores() -> None:
    folder = WEIGHTS_DIR / "image"
    assert (folder / "model.safetensors").stat().st_size < 10 * 2**20
    det = Detector.load()  # no path: the shipped model
    card = det.card
    assert card["modality"] == "image" and card["generators"]
    assert card["metrics"]["test"]["overall"]["auc"] is not None
    res = det.score([encode(photo_like(0, (200, 300)), "JPEG", quality=90), b""])
    assert res[0].verdict in ("synthetic", "uncertain", "authentic") and 0 <= res[0].score <= 1
    assert res[1].error == {"code": "empty", "message": "the file is empty (0 bytes)"}


def test_shipped_voice_model_loads_and_scores() -> None:
    from detector.inference.voice import VoiceDetector
    from detector.media.audio import encode_audio
    from tests._audio import speech_like

    folder = WEIGHTS_DIR / "audio"
    assert (folder / "model.safetensors").stat().st_size < 10 * 2**20
    det = Detector.load(modality="audio")  # no path: the shipped voice model
    assert isinstance(det, VoiceDetector)
    card = det.card
    assert card["modality"] == "audio" and len(card["families"]) >= 5
    assert card["metrics"]["test"]["overall"]["auc"] is not None
    clip = encode_audio(speech_like(3, 9.0), 16_000, "mp3", bitrate_kbps=64)
    res = det.score([clip, b""])
    assert res[0].verdict in ("synthetic", "uncertain", "authentic") and 0 <= res[0].score <= 1
    assert len(res[0].segments) == 4  # 9 s: 4 s chunks every 2 s, the last at the end
    assert res[1].error is not None and res[1].error["code"] == "empty"


def test_shipped_video_model_loads_and_scores(tmp_path) -> None:
    from detector.inference.video import VideoDetector
    from tests._video import write_face_videos

    folder = WEIGHTS_DIR / "video"
    weights = sum(p.stat().st_size for p in folder.rglob("*.safetensors"))
    assert weights < 10 * 2**20  # face model and voice model together
    det = Detector.load(modality="video")  # no path: the shipped video model
    assert isinstance(det, VideoDetector) and det.voice is not None
    card = det.card
    assert card["modality"] == "video"
    assert {"face_swap", "autoencoder_swap", "voice_swap"} <= set(card["families"])
    assert card["metrics"]["test"]["overall"]["auc"] is not None
    clip = write_face_videos(tmp_path, per_photo=1, seconds=1.0, fps=8.0)[0]  # with a voice
    res = det.score([clip, b""])
    assert res[0].error is None and 0 <= res[0].score <= 1
    assert len(res[0].frames) == 2 and any(f["faces"] for f in res[0].frames)
    assert res[0].parts["voice"] is not None and res[0].segments
    assert res[1].error is not None and res[1].error["code"] == "empty"
