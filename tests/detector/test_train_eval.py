from __future__ import annotations

import json

import numpy as np
import pytest

from detector.eval.evaluate import evaluate
from detector.train.image import train_image_detector


def test_training_lowers_the_loss_and_writes_a_card(tiny_model) -> None:
    card = json.loads((tiny_model / "card.json").read_text())
    hist = card["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert card["generators"] == ["fam_bilinear", "fam_nearest"]
    cal = card["calibration"]
    assert (
        cal["temperature"] > 0 and cal["uncertain_low"] <= cal["threshold"] <= cal["uncertain_high"]
    )
    assert set(card["split_sizes"]) == {"train", "val", "test"}
    assert card["metrics"]["test"]["overall"]["auc"] is not None
    assert (tiny_model / "model.safetensors").stat().st_size < 10 * 2**20


def test_training_resumes_from_its_last_epoch(tmp_path, tiny_corpus) -> None:
    train_image_detector([tiny_corpus], tmp_path, preset="tiny", train_overrides={"epochs": 1})
    first = json.loads((tmp_path / "card.json").read_text())["history"]
    result = train_image_detector(
        [tiny_corpus], tmp_path, preset="tiny", train_overrides={"epochs": 1}
    )
    assert result.history == first  # nothing left to do: the saved state is complete
    with pytest.raises(ValueError, match="real and synthetic"):
        train_image_detector(
            [tiny_corpus],
            tmp_path / "x",
            preset="tiny",
            train_overrides={"exclude_families": ["fam_nearest", "fam_bilinear"]},
        )


class _Stop(Exception):
    pass


def _stop_at_epoch_2(stage: str, *_: object) -> None:
    if stage.startswith("epoch 2/"):
        raise _Stop


def test_weight_average_is_what_is_kept_and_resumes_exactly(tmp_path, tiny_corpus) -> None:
    from safetensors.numpy import load_file

    def run(out, on_progress=None, **extra):
        overrides = {"epochs": 2, "patience": 5, "ema_decay": 0.9, **extra}
        return train_image_detector(
            [tiny_corpus], out, preset="tiny", train_overrides=overrides, on_progress=on_progress
        )

    whole = run(tmp_path / "whole")
    with pytest.raises(_Stop):  # a run killed during its second epoch ...
        run(tmp_path / "cut", on_progress=_stop_at_epoch_2)
    resumed = run(tmp_path / "cut")  # ... and started again: the same average comes out

    def same(a: dict, b: dict) -> bool:
        return {**a, "elapsed_s": 0} == {**b, "elapsed_s": 0}

    assert len(resumed.history) == 2
    assert all(same(r, w) for r, w in zip(resumed.history, whole.history, strict=True))
    a = load_file(tmp_path / "whole" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    plain = load_file(run(tmp_path / "plain", ema_decay=0.0).out_dir / "model.safetensors")
    assert any(not np.allclose(a[k], plain[k]) for k in a)
    assert whole.card["train_config"]["ema_decay"] == 0.9
    with pytest.raises(ValueError, match="ema_decay"):
        run(tmp_path / "bad", ema_decay=1.0)


def test_weight_average_spans_at_most_a_few_epochs() -> None:
    from detector.train.config import AudioTrainConfig, TrainConfig
    from detector.train.trainer import ema_decay

    assert ema_decay(0.99, 24) == 0.99  # the default corpus: 24 steps an epoch
    assert ema_decay(0.99, 2) == pytest.approx(0.9)  # a small one: 5 epochs of 2 steps
    assert ema_decay(0.0, 24) == 0.0
    assert TrainConfig.preset("default").ema_decay == 0.99
    assert TrainConfig.preset("tiny").ema_decay == AudioTrainConfig().ema_decay == 0.0


def test_evaluate_writes_metrics_plots_and_summary(tmp_path, tiny_corpus, tiny_model) -> None:
    report = evaluate(
        tiny_model,
        [tiny_corpus],
        tmp_path,
        robustness=True,
        leave_one_out=True,
        loo_preset="tiny",
        loo_overrides={"epochs": 1},
    )
    for f in ("metrics.json", "roc.png", "scores.png", "leave_one_out.png", "summary.md"):
        assert (tmp_path / f).stat().st_size > 0
    assert set(report["per_generator"]) == {"fam_bilinear", "fam_nearest"}
    assert {"jpeg_q50", "resize_0.5", "blur_2", "noise_5", "resize_0.5+jpeg_q60"} <= set(
        report["robustness"]
    )
    loo = report["leave_one_out"]
    assert set(loo["held_out_auc"]) == {"fam_bilinear", "fam_nearest"}
    assert loo["mean_auc"] == pytest.approx(np.mean(list(loo["held_out_auc"].values())))
    # each leave-one-out model repeats the evaluated one's training, the overrides on top
    own = json.loads((tiny_model / "card.json").read_text())["train_config"]
    assert own["augment"]["crop_align"] == 2
    for fam in ("fam_bilinear", "fam_nearest"):
        card = json.loads((tmp_path / "leave_one_out" / fam / "card.json").read_text())
        assert card["train_config"] == {**own, "epochs": 1, "exclude_families": [fam]}
    audit = report["shortcut_audit"]
    assert 0.0 <= audit["file_size_auc"] <= 1.0 and 0.0 <= audit["image_stats_auc"] <= 1.0
    assert "Shortcut audit" in (tmp_path / "summary.md").read_text()


def test_online_fakes_are_made_from_real_items_only(tmp_path, tiny_corpus) -> None:
    from detector.train.trainer import train_detector

    made: list[int] = []

    def fake(media: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        made.append(int(media.sum()))
        return np.ascontiguousarray(media[::-1])

    overrides = {"epochs": 1, "p_online_fake": 0.5}
    result = train_detector(
        [tiny_corpus], tmp_path / "yes", preset="tiny", train_overrides=overrides, online_fake=fake
    )
    assert result.card["train_config"]["p_online_fake"] == 0.5
    from detector.data.corpus import load_pixels, read_items, select

    train = select(read_items([tiny_corpus], modality="image"), split="train")
    real = {int(px.sum()) for px, it in zip(load_pixels(train), train, strict=True) if not it.label}
    n_real = sum(1 for it in train if not it.label)
    assert 0 < len(made) < n_real and set(made) <= real


def test_untrained_decoders_make_image_fakes() -> None:
    from generators.image.random_decoder import random_decoded

    img = np.random.default_rng(0).integers(0, 256, (64, 70, 3), dtype=np.uint8)
    a = random_decoded(img, np.random.default_rng(1))
    assert a.dtype == np.uint8 and a.shape[2] == 3 and a.shape[0] % 2 == 0
    assert a.shape[0] > 56 and a.shape[1] in (64, 70, 68)  # cut to a multiple of 2**k
    assert np.array_equal(a, random_decoded(img, np.random.default_rng(1)))  # from rng alone
    kinds = {random_decoded(img, np.random.default_rng(s)).shape for s in range(12)}
    assert len(kinds) > 1  # the depth is drawn
    assert abs(float(a.mean()) - float(img[: a.shape[0], : a.shape[1]].mean())) < 8
    for s in range(8):  # a small image gets fewer levels
        assert random_decoded(img[:3, :5], np.random.default_rng(s)).shape == (2, 4, 3)
    with pytest.raises(ValueError, match="too small"):
        random_decoded(img[:1, :1], np.random.default_rng(0))


def test_a_tempered_validation_loss_judges_the_ranking_not_the_scale() -> None:
    from detector.train.trainer import _val_loss

    rng = np.random.default_rng(0)
    y = np.repeat([0.0, 1.0], 50)
    z = rng.normal(size=100) + 2 * (y - 0.5)
    raw = [_val_loss(z * k, y, balanced=True) for k in (1, 20)]
    tempered = [_val_loss(z * k, y, balanced=True, tempered=True) for k in (1, 20)]
    assert raw[1] > 3 * raw[0]  # the same ranking, overconfident: a much larger raw loss
    assert tempered[0] == pytest.approx(tempered[1], rel=1e-3) and tempered[0] <= raw[0]
    worse = _val_loss(rng.normal(size=100) * 20, y, balanced=True, tempered=True)
    assert worse > tempered[0] + 0.1  # a worse ranking still loses
