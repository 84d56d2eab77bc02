"""Retraining a video model: a folder of fake videos another tool made is added to its
corpus, the face model is fine-tuned from the active one, evaluated, stored and gated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from detector.media.video import VideoClip, encode_video, load_clip
from generators.corpus import read_manifest
from generators.corpus.fakes import FakesSpec
from worker import model_store
from worker.retrain import retrain
from worker.settings import Settings


def tinted_copies(real: list[Path], out: Path) -> Path:
    """The clips with a strong colour cast: a trace the tiny model never saw."""
    out.mkdir(parents=True)
    for k, path in enumerate(real):
        clip = load_clip(path)
        frames = np.clip(clip.frames * np.array([1.0, 0.6, 0.6]) + [40, 0, 0], 0, 255)
        data = encode_video(VideoClip(frames.astype(np.uint8), clip.fps), crf=20)
        (out / f"tinted-{k}.mp4").write_bytes(data)
    return out


def test_retrain_a_video_model_on_a_folder_of_fakes(
    tmp_path: Path, tiny_video_corpus: Path, tiny_video_model: Path
) -> None:
    # Copies: retraining extends the active model's corpus in place.
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_video_corpus, corpus)
    model = tmp_path / "model"
    shutil.copytree(tiny_video_model, model)
    card = json.loads((model / "card.json").read_text())
    (model / "card.json").write_text(json.dumps(card | {"corpora": [str(corpus.resolve())]}))
    real = sorted((corpus / "real").rglob("*.mp4"))
    fakes = tinted_copies(real, tmp_path / "tool-output")

    settings = Settings(data_dir=tmp_path / "data", video_model=model)
    result = retrain(
        settings,
        modality="video",
        fakes=[FakesSpec(name="tinted", path=str(fakes), family="tinted")],
        preset="tiny",
        train_overrides={"epochs": 2},
        out_dir=tmp_path / "run",
    )
    assert result.modality == "video" and result.mode == "fine-tune"
    assert result.added == {"tinted": len(real)} and result.new_generators == ["tinted"]
    rows = [r for r in read_manifest(corpus) if r.generator_name == "tinted"]
    assert len(rows) == len(real) and all(r.modality == "video" for r in rows)
    candidate = json.loads((result.candidate_path / "card.json").read_text())
    assert candidate["modality"] == "video" and "tinted" in candidate["generators"]
    face_card = json.loads((tmp_path / "run" / "model" / "face" / "card.json").read_text())
    assert face_card["init_from"]["path"]  # fine-tuned from the active face model
    assert (result.candidate_path / "voice" / "card.json").is_file()  # its voice model kept
    assert result.gate["new_generators"] == ["tinted"]
    assert result.proposed == result.gate["passed"] and not result.promoted
    row = model_store.get_model(settings, "video", result.candidate_version)
    assert row.status == "candidate"
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "done" and set(record["seconds"]) >= {"extend", "train", "gate"}
