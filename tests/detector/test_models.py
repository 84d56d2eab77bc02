from __future__ import annotations

import numpy as np
import pytest
import torch

from detector.data.augment import AugmentConfig, random_crop
from detector.inference.crops import grid_boxes, grid_crops
from detector.models import (
    DETECTORS,
    RESIDUAL_KINDS,
    ResidualInput,
    create,
    load_model,
    names,
    save_model,
)


def test_every_detector_is_registered_with_its_modality() -> None:
    assert names() == ["audio_cnn", "ensemble", "image_cnn"]
    assert DETECTORS.meta("audio_cnn")["modality"] == "audio"
    assert DETECTORS.meta("ensemble")["modality"] == "any"  # its members' (the card says)


@pytest.mark.parametrize("residual", RESIDUAL_KINDS)
def test_image_detectors_give_finite_logits(residual: str) -> None:
    model = create("image_cnn", preset="tiny", residual=residual)
    for size in (32, 48):
        out = model(torch.rand(3, 3, size, size))
        assert out.shape == (3,) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("frontend", "pool"),
    [("stft", "avg"), ("lfcc", "avg"), ("logmel", "avg"), ("cqt", "max"), ("lfcc+pulse", "avgmax")],
)
def test_voice_detectors_give_finite_logits_and_round_trip(
    tmp_path, frontend: str, pool: str
) -> None:
    model = create("audio_cnn", preset="tiny", frontend=frontend, global_pool=pool).eval()
    for seconds in (1.0, 2.0, 4.5):  # any length; the detector is given fixed chunks
        out = model(torch.randn(2, int(seconds * 16_000)) * 0.1)
        assert out.shape == (2,) and torch.isfinite(out).all()
    card = {
        "architecture": "audio_cnn",
        "model_config": {"frontend": frontend, "global_pool": pool},
    }
    card["model_config"] |= {"channels": [8, 16, 32, 64], "stem_width": 8, "dropout": 0.0}
    save_model(model, card, tmp_path)
    loaded, _ = load_model(tmp_path)
    x = torch.randn(1, 32_000) * 0.1
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))


def test_the_one_class_output_is_the_one_class_softmax(tmp_path) -> None:
    from detector.models.audio import oneclass_margin

    model = create("audio_cnn", preset="tiny", output="oneclass").eval()
    x = torch.randn(4, 32_000) * 0.1
    with torch.inference_mode():
        feats = model.backbone.forward_head(
            model.backbone.forward_features(model.norm(model.frontend(x)))
        )
        cos = torch.nn.functional.cosine_similarity(feats, model.oneclass.direction[None], dim=1)
        logits = model(x)
    assert torch.allclose(logits, 20 * (0.55 - cos), atol=1e-5)
    assert logits.abs().max() <= 20 * 1.55 + 1e-4  # bounded: a cosine, scaled
    # Cross-entropy on the margin logits is the paper's loss for each class.
    y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        oneclass_margin(logits, y), y, reduction="none"
    )
    paper = torch.where(
        y == 0,
        torch.nn.functional.softplus(20 * (0.9 - cos)),
        torch.nn.functional.softplus(20 * (cos - 0.2)),
    )
    assert torch.allclose(bce, paper, atol=1e-4)
    card = {"architecture": "audio_cnn", "model_config": {"output": "oneclass"}}
    card["model_config"] |= {"channels": [8, 16, 32, 64], "stem_width": 8, "dropout": 0.0}
    card["model_config"] |= {"chunk_seconds": 2.0, "hop_seconds": 1.0}
    save_model(model, card, tmp_path)
    loaded, _ = load_model(tmp_path)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))


def test_bad_voice_configs_name_the_valid_values() -> None:
    with pytest.raises(ValueError, match=r"global_pool.*'avgmax'"):
        create("audio_cnn", preset="tiny", global_pool="attention")
    with pytest.raises(ValueError, match=r"unknown front-end 'mfcc'"):
        create("audio_cnn", preset="tiny", frontend="lfcc+mfcc")
    with pytest.raises(ValueError, match=r"output.*'oneclass'"):
        create("audio_cnn", preset="tiny", output="softmax")
    with pytest.raises(ValueError, match=r'needs head="clip"'):
        create("audio_cnn", preset="tiny", output="oneclass", head="frames")


def test_npr_residual_is_zero_on_nearest_upsampled_images() -> None:
    small = torch.rand(1, 3, 8, 8)
    up = torch.nn.functional.interpolate(small, scale_factor=2, mode="nearest")
    assert ResidualInput("npr")(up).abs().max() < 1e-6
    assert ResidualInput("npr")(torch.rand(1, 3, 16, 16)).abs().max() > 0.1
    assert ResidualInput("highpass")(torch.full((1, 3, 9, 9), 0.3)).abs().max() < 1e-6


def test_bad_residual_kind_lists_valid_values() -> None:
    with pytest.raises(ValueError, match="valid values"):
        create("image_cnn", preset="tiny", residual="fft")


def test_save_load_round_trip(tmp_path) -> None:
    model = create("image_cnn", preset="tiny").eval()
    card = {
        "architecture": "image_cnn",
        "model_config": {"channels": [8, 16, 32, 64], "dropout": 0.0},
    }
    save_model(model, card, tmp_path)
    loaded, _ = load_model(tmp_path)
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))


def test_grid_covers_large_images_and_caps_the_count() -> None:
    assert grid_boxes(64, 64, 32) == [(x, y, 32, 32) for y in (0, 16, 32) for x in (0, 16, 32)]
    assert grid_boxes(32, 32, 32) == [(0, 0, 32, 32)]
    boxes = grid_boxes(1000, 3000, 32, max_crops=16)
    assert len(boxes) <= 16 and len({b[0] for b in boxes}) > 1 and len({b[1] for b in boxes}) > 1
    assert max(x + w for x, _, w, _ in boxes) == 3000 and max(y + h for _, y, _, h in boxes) == 1000
    crops, boxes = grid_crops(np.zeros((20, 50, 3), np.uint8), 32)
    assert crops.shape[1:] == (32, 32, 3) and len(crops) == len(boxes) == 3


def test_crops_keep_the_two_by_two_pixel_grid_in_phase() -> None:
    # Grid offsets are even for any size; the last crop stops at most one pixel short.
    for h, w in [(65, 67), (99, 101), (1001, 3001), (45, 33)]:
        boxes = grid_boxes(h, w, 32)
        assert all(x % 2 == 0 and y % 2 == 0 for x, y, _, _ in boxes)
        assert max(x + bw for x, _, bw, _ in boxes) >= w - 1
    # Training crops: any offset by default, only even ones with align=2.
    ramp = np.broadcast_to(np.arange(67, dtype=np.uint8)[None, :, None], (65, 67, 3))
    rng = np.random.default_rng(0)
    offsets = {int(random_crop(ramp, 32, rng)[0, 0, 0]) for _ in range(200)}
    assert any(o % 2 for o in offsets)
    even = {int(random_crop(ramp, 32, rng, align=2)[0, 0, 0]) for _ in range(200)}
    assert all(o % 2 == 0 for o in even) and max(even) == 34
    with pytest.raises(ValueError, match="crop_align"):
        AugmentConfig(crop_align=0)


def test_degrade_draws_a_downscale_and_a_jpeg_together() -> None:
    from detector.data.augment import augment, jpeg

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cfg = AugmentConfig(p_degrade=1.0, p_flip=0.0, degrade_scale=(0.5, 0.5))
    out = augment(photo, cfg, np.random.default_rng(1))
    assert out.shape == (32, 32, 3)
    # A JPEG round trip is (nearly) idempotent: the output has already been through one.
    assert (
        np.abs(jpeg(out, 95).astype(int) - out.astype(int)).mean()
        < np.abs(jpeg(photo[::2, ::2], 95).astype(int) - photo[::2, ::2].astype(int)).mean()
    )
    assert np.array_equal(out, augment(photo, cfg, np.random.default_rng(1)))  # same seed
    with pytest.raises(ValueError, match="p_degrade"):
        AugmentConfig(p_degrade=1.5)
    with pytest.raises(ValueError, match="degrade_scale"):
        AugmentConfig(degrade_scale=(0.5, 1.2))
