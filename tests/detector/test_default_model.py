"""The image model shipped inside the package: present, small, loadable, usable."""

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
