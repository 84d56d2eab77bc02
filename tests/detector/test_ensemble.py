"""Ensembles: trained models side by side, calibrated logits averaged, calibrated again;
scored, evaluated and held out like any model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from api.cli import app
from detector.data.corpus import read_items, select
from detector.eval.calibration import fit_temperature
from detector.eval.evaluate import evaluate
from detector.inference import Detector
from detector.inference.voice import VoiceDetector
from detector.media.audio import encode_audio
from detector.models import load_model
from detector.train.ensemble import build_ensemble, finetune_ensemble, unpack_ensemble
from detector.train.tasks import AudioTask
from tests._audio import speech_like
from tests._media import encode, photo_like
from tests.detector.conftest import train_tiny_voice_model


@pytest.fixture(scope="module")
def oneclass_voice_model(tmp_path_factory, tiny_voice_corpus) -> Path:
    out = tmp_path_factory.mktemp("oc")
    return train_tiny_voice_model(tiny_voice_corpus, out, epochs=4, output="oneclass")


def _temperature(folder: Path) -> float:
    return json.loads((folder / "card.json").read_text())["calibration"]["temperature"]


def test_a_voice_ensemble_averages_calibrated_logits_and_calibrates_on_validation(
    tmp_path: Path, tiny_voice_corpus: Path, tiny_voice_model: Path, oneclass_voice_model: Path
) -> None:
    out = tmp_path / "ens"
    args = ["ensemble", "--model", str(tiny_voice_model), "--model"]
    args += [str(oneclass_voice_model), "--corpus", str(tiny_voice_corpus), "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "ensemble" in res.output and "val AUC" in res.output
    card = json.loads((out / "card.json").read_text())
    assert card["architecture"] == "ensemble" and card["modality"] == "audio"
    assert [m["model_config"]["output"] for m in card["model_config"]["members"]] == [
        "linear",
        "oneclass",
    ]
    assert len(card["members"]) == 2
    for part in card["members"]:  # each member measured on the same items
        assert part["val"]["n"] == card["metrics"]["val"]["n"]
        assert part["test"]["overall"]["n"] == card["metrics"]["test"]["overall"]["n"]

    # The network: each member's logit over its temperature, averaged.
    ens, _ = load_model(out)
    m0, _ = load_model(tiny_voice_model)
    m1, _ = load_model(oneclass_voice_model)
    x = torch.from_numpy(np.stack([speech_like(k, 4.0) for k in range(3)]))
    calls: list[int] = []
    for member in ens.members:  # the members' front-end (no weights) runs once
        member.frontend.register_forward_hook(lambda *_a: calls.append(1))
    with torch.inference_mode():
        want = 0.5 * (
            m0(x) / _temperature(tiny_voice_model) + m1(x) / _temperature(oneclass_voice_model)
        )
        calls.clear()
        assert torch.allclose(ens(x), want, atol=1e-5)
        assert len(calls) == 1

    # Calibrated on the validation split: its temperature is the one those logits fit.
    items = select(read_items([tiny_voice_corpus], modality="audio"), split="val")
    det = Detector.load(out)
    assert isinstance(det, VoiceDetector)
    logits = det.logits(AudioTask.load(items))
    y = np.array([it.label for it in items])
    assert det.calibration.temperature == pytest.approx(fit_temperature(logits, y), rel=1e-6)

    # It scores recordings like any voice model: a score, a verdict, the chunk timeline.
    r = det.score([encode_audio(speech_like(3, 9.0), 16_000, "wav")])[0]
    assert r.error is None and 0.0 <= r.score <= 1.0 and r.verdict
    assert len(r.segments) >= 3 and r.top_segment is not None


def test_an_image_ensemble_scores_crops(tmp_path: Path, tiny_corpus: Path, tiny_model: Path):
    from detector.train.image import train_image_detector

    other = tmp_path / "other"
    train_image_detector([tiny_corpus], other, preset="tiny",
                         train_overrides={"epochs": 1, "seed": 1})  # fmt: skip
    made = build_ensemble([tiny_model, other], [tiny_corpus], tmp_path / "ens", weights=[2, 1])
    assert [m["weight"] for m in made.card["members"]] == [2.0, 1.0]
    det = Detector.load(tmp_path / "ens")
    assert type(det) is Detector and det.input_size == 32
    [r] = det.score([encode(photo_like(0, (80, 96)), "png")])
    assert r.error is None and 0.0 <= r.score <= 1.0 and len(r.crops) > 1


def test_models_that_cannot_be_combined_get_a_clear_error(
    tmp_path: Path,
    tiny_corpus: Path,
    tiny_model: Path,
    tiny_voice_corpus: Path,
    tiny_voice_model: Path,
    oneclass_voice_model: Path,
) -> None:
    from detector.train.trainer import train_detector

    with pytest.raises(ValueError, match="different media"):
        build_ensemble([tiny_model, tiny_voice_model], [tiny_corpus], tmp_path / "a")
    with pytest.raises(ValueError, match="at least two"):
        build_ensemble([tiny_voice_model], [tiny_voice_corpus], tmp_path / "b")
    with pytest.raises(ValueError, match="one per model"):
        build_ensemble([tiny_voice_model, oneclass_voice_model], [tiny_voice_corpus],
                       tmp_path / "c", weights=[1.0])  # fmt: skip
    longer = train_tiny_voice_model(tiny_voice_corpus, tmp_path / "long", epochs=1,
                                    chunk_seconds=3.0)  # fmt: skip
    with pytest.raises(ValueError, match="chunk_seconds"):
        build_ensemble([tiny_voice_model, longer], [tiny_voice_corpus], tmp_path / "d")
    ens = tmp_path / "e"
    build_ensemble([tiny_voice_model, oneclass_voice_model], [tiny_voice_corpus], ens)
    with pytest.raises(ValueError, match="is an ensemble: give its members"):
        build_ensemble([ens, tiny_voice_model], [tiny_voice_corpus], tmp_path / "f")
    with pytest.raises(ValueError, match="fine-tune its members"):
        train_detector([tiny_voice_corpus], tmp_path / "g", modality="audio", init_from=ens)
    assert not (tmp_path / "a").exists() and not (tmp_path / "d" / "card.json").exists()


def test_leave_one_out_of_an_ensemble_holds_the_family_out_of_every_member(
    tmp_path: Path, tiny_voice_corpus: Path, tiny_voice_model: Path, oneclass_voice_model: Path
) -> None:
    ens = tmp_path / "ens"
    build_ensemble([tiny_voice_model, oneclass_voice_model], [tiny_voice_corpus], ens)
    report = evaluate(
        ens,
        [tiny_voice_corpus],
        tmp_path / "report",
        leave_one_out=True,
        loo_preset="tiny",
        loo_overrides={"epochs": 1, "batch_size": 8},
    )
    loo = report["leave_one_out"]
    assert set(loo["held_out_auc"]) == {"fam_mulaw", "fam_phase"}
    for fam in ("fam_mulaw", "fam_phase"):
        run = tmp_path / "report" / "leave_one_out" / fam
        card = json.loads((run / "card.json").read_text())
        assert card["architecture"] == "ensemble"
        assert fam not in card["split_sizes"]["val"]  # calibrated without it
        outputs = []
        for k in (0, 1):
            member = json.loads((run / "members" / str(k) / "card.json").read_text())
            assert member["train_config"]["exclude_families"] == [fam]
            assert member["train_config"]["epochs"] == 1 and fam not in member["families"]
            outputs.append(member["model_config"]["output"])
        assert outputs == ["linear", "oneclass"]  # each member's own design


def test_an_ensemble_is_fine_tuned_member_by_member(
    tmp_path: Path, tiny_corpus: Path, tiny_model: Path
) -> None:
    from detector.data.corpus import load_pixels
    from detector.train.image import train_image_detector

    plain = tmp_path / "plain"
    train_image_detector([tiny_corpus], plain, preset="tiny",
                         train_overrides={"epochs": 1, "p_online_fake": 0.0})  # fmt: skip
    ens = tmp_path / "ens"
    build_ensemble([tiny_model, plain], [tiny_corpus], ens)
    # Unpacked, each member is the model it was: same weights, design, calibration.
    starts = unpack_ensemble(ens, tmp_path / "unpacked")
    items = select(read_items([tiny_corpus]), split="test")[:20]
    px = load_pixels(items)
    for start, original in zip(starts, (tiny_model, plain), strict=True):
        a, b = Detector.load(start), Detector.load(original)
        assert a.calibration == b.calibration
        assert np.allclose(a.logits(px), b.logits(px), atol=1e-5)
    with pytest.raises(ValueError, match="not an ensemble"):
        unpack_ensemble(plain, tmp_path / "no")

    made = finetune_ensemble(ens, [tiny_corpus], tmp_path / "ft", work_dir=tmp_path / "work",
                             preset="tiny", train_overrides={"epochs": 1})  # fmt: skip
    assert made.card["architecture"] == "ensemble" and len(made.history) == 1
    for k in (0, 1):
        member = json.loads((tmp_path / "work" / str(k) / "card.json").read_text())
        assert member["init_from"]["path"] == str((tmp_path / "work" / "start" / str(k)).resolve())
        assert member["train_config"]["epochs"] == 1
    # each member keeps its own training settings under the fine-tune's
    kept = [json.loads((tmp_path / "work" / str(k) / "card.json").read_text()) for k in (0, 1)]
    assert [m["train_config"]["p_online_fake"] for m in kept] == [
        json.loads((tiny_model / "card.json").read_text())["train_config"]["p_online_fake"],
        0.0,
    ]
    assert Detector.load(tmp_path / "ft").score([encode(photo_like(1), "png")])[0].error is None
