"""Every registered GAN: tiny fit on the starter photos, sampling, seeds, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from generators import create, load_generator, save_generator
from generators.image._upsample import UPSAMPLE_KINDS, Upsample2x
from generators.image.gan import GAN, GANConfig
from generators.registry import family, names
from generators.sources import RealSource

GAN_NAMES = [n for n in names() if family(n) == "gan"]

StepCalls = list[tuple[int, int]]


@pytest.fixture(scope="module", params=GAN_NAMES)
def fitted(request: pytest.FixtureRequest, starter: RealSource) -> tuple[GAN, StepCalls]:
    """Each registered GAN, tiny, fitted once for this module, and its on_step calls."""
    gen = create(request.param, preset="tiny")
    assert isinstance(gen, GAN)
    calls: StepCalls = []
    gen.fit(starter, on_step=lambda step, total, metrics: calls.append((step, total)))
    return gen, calls


def test_every_upsample_kind_is_registered() -> None:
    assert sorted(GAN_NAMES) == sorted(f"gan_{kind}" for kind in UPSAMPLE_KINDS)


@pytest.mark.parametrize("kind", UPSAMPLE_KINDS)
def test_upsample2x_doubles_resolution(kind: str) -> None:
    up = Upsample2x(6, 5, kind=kind)
    assert up(torch.randn(2, 6, 7, 9)).shape == (2, 5, 14, 18)


def test_fit_reports_every_step(fitted: tuple[GAN, StepCalls]) -> None:
    gen, calls = fitted
    cfg = gen.config
    assert gen.family == "gan" and cfg.upsample == gen.name.removeprefix("gan_")
    assert calls == [(i, cfg.steps) for i in range(1, cfg.steps + 1)]
    report = gen.fit_report
    assert report is not None
    assert report.steps == cfg.steps and report.n_train == cfg.n_train_crops
    assert all(np.isfinite(v) for v in report.final.values())


def test_generate_gives_uint8_images_that_vary(fitted: tuple[GAN, StepCalls]) -> None:
    gen, _ = fitted
    size = gen.config.image_size
    samples = gen.generate(5, seed=1)
    assert samples.images.shape == (5, size, size, 3)
    assert samples.images.dtype == np.uint8
    assert samples.images.std() > 1.0
    assert samples.sources == [None] * 5 and len(samples.seeds) == 5
    with torch.inference_mode():
        raw = gen.nets["generator"](torch.randn(3, gen.config.z_dim))
    assert torch.isfinite(raw).all()


def test_same_seed_same_images_different_seed_different(fitted: tuple[GAN, StepCalls]) -> None:
    gen, _ = fitted
    a = gen.generate(4, seed=7).images
    assert np.array_equal(a, gen.generate(4, seed=7).images)
    assert not np.array_equal(a, gen.generate(4, seed=8).images)
    assert not np.array_equal(a[0], a[1])


def test_items_do_not_depend_on_batching(fitted: tuple[GAN, StepCalls]) -> None:
    gen, _ = fitted
    many = gen.generate(70, seed=3)  # crosses one GENERATE_BATCH boundary
    few = gen.generate(4, seed=3)
    assert many.images.shape[0] == 70 and many.seeds[:4] == few.seeds
    # Different batch shapes may pick different conv kernels: allow a rounding step.
    assert np.abs(many.images[:4].astype(int) - few.images.astype(int)).max() <= 1
    assert gen.generate(0, seed=3).images.shape == (0, *many.images.shape[1:])


def test_checkpoint_round_trip(fitted: tuple[GAN, StepCalls], tmp_path: Path) -> None:
    gen, _ = fitted
    save_generator(gen, tmp_path)
    loaded = load_generator(tmp_path)
    assert isinstance(loaded, GAN) and loaded.name == gen.name and loaded.config == gen.config
    assert loaded.fit_report == gen.fit_report
    assert np.array_equal(loaded.generate(6, seed=2).images, gen.generate(6, seed=2).images)


def test_fit_is_reproducible(starter: RealSource) -> None:
    a, b = create("gan_tconv", preset="tiny"), create("gan_tconv", preset="tiny")
    a.fit(starter)
    b.fit(starter)
    assert np.array_equal(a.generate(3, seed=0).images, b.generate(3, seed=0).images)


def test_bad_options_raise() -> None:
    with pytest.raises(ValueError, match="valid values"):
        create("gan_tconv", preset="tiny", upsample="deconv")
    with pytest.raises(ValueError, match="valid values"):
        Upsample2x(4, 4, kind="lanczos")
    with pytest.raises(ValueError, match="unknown GANConfig field"):
        create("gan_nearest", preset="tiny", ngf=64)
    with pytest.raises(ValueError, match="valid presets"):
        GANConfig.preset("huge")
    with pytest.raises(ValueError, match="power of two"):
        GANConfig.preset("tiny", image_size=48)
    with pytest.raises(ValueError, match="power of two"):
        GANConfig.preset("tiny", image_size=8)


def test_builder_fixes_upsample_kind_and_accepts_it_again() -> None:
    assert create("gan_bilinear", preset="tiny").config.upsample == "bilinear"
    assert create("gan_bilinear", preset="tiny", upsample="bilinear").config.upsample == "bilinear"
    assert GANConfig.preset("default").image_size == 64
