"""Every registered autoencoder: tiny fit on the starter photos, reconstructions, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from generators import create, load_generator, save_generator
from generators.image._upsample import UPSAMPLE_KINDS
from generators.image.autoencoder import AEConfig, Autoencoder
from generators.registry import family, names
from generators.sources import RealSource

AE_NAMES = [n for n in names() if family(n) == "autoencoder"]

StepCalls = list[tuple[int, int]]


@pytest.fixture(scope="module", params=AE_NAMES)
def fitted(request: pytest.FixtureRequest, starter: RealSource) -> tuple[Autoencoder, StepCalls]:
    """Each registered autoencoder, tiny, fitted once for this module, and its on_step calls."""
    gen = create(request.param, preset="tiny")
    assert isinstance(gen, Autoencoder)
    calls: StepCalls = []
    gen.fit(starter, on_step=lambda step, total, metrics: calls.append((step, total)))
    return gen, calls


def test_every_upsample_kind_is_registered() -> None:
    assert sorted(AE_NAMES) == sorted(f"ae_{kind}" for kind in UPSAMPLE_KINDS)


def test_fit_reports_every_step(fitted: tuple[Autoencoder, StepCalls]) -> None:
    gen, calls = fitted
    cfg = gen.config
    assert gen.family == "autoencoder" and gen.conditional
    assert cfg.upsample == gen.name.removeprefix("ae_")
    assert calls == [(i, cfg.steps) for i in range(1, cfg.steps + 1)]
    report = gen.fit_report
    assert report is not None and report.n_train == cfg.n_train_crops
    assert all(np.isfinite(v) for v in report.final.values())


def test_generate_reconstructs_real_crops(
    fitted: tuple[Autoencoder, StepCalls], starter: RealSource
) -> None:
    gen, _ = fitted
    size = gen.config.image_size
    samples = gen.generate(5, seed=1, source=starter)
    assert samples.images.shape == (5, size, size, 3)
    assert samples.images.dtype == np.uint8
    assert samples.images.std() > 1.0
    item_ids = {item.id for item in starter.items}
    assert len(samples.sources) == 5 and set(samples.sources) <= item_ids
    assert samples.seeds == [1] * 5
    with torch.inference_mode():
        raw = gen.nets["autoencoder"](torch.rand(2, 3, size, size) * 2 - 1)
    assert torch.isfinite(raw).all()


def test_same_seed_same_images_different_seed_different(
    fitted: tuple[Autoencoder, StepCalls], starter: RealSource
) -> None:
    gen, _ = fitted
    a = gen.generate(4, seed=7, source=starter)
    b = gen.generate(4, seed=7, source=starter)
    assert np.array_equal(a.images, b.images) and a.sources == b.sources
    assert not np.array_equal(a.images, gen.generate(4, seed=8, source=starter).images)


def test_generate_is_the_reconstruction_of_its_seeds_crops(
    fitted: tuple[Autoencoder, StepCalls], starter: RealSource
) -> None:
    gen, _ = fitted
    cfg = gen.config
    crops = list(starter.crops(70, size=cfg.image_size, seed=5, scales=cfg.scales))
    samples = gen.generate(70, seed=5, source=starter)  # crosses one GENERATE_BATCH boundary
    assert samples.sources == [c.parent for c in crops]
    assert np.array_equal(samples.images, gen.reconstruct(np.stack([c.image for c in crops])))


def test_checkpoint_round_trip(
    fitted: tuple[Autoencoder, StepCalls], starter: RealSource, tmp_path: Path
) -> None:
    gen, _ = fitted
    save_generator(gen, tmp_path, real_source=starter.spec)
    loaded = load_generator(tmp_path)
    assert isinstance(loaded, Autoencoder) and loaded.name == gen.name
    assert loaded.config == gen.config and loaded.fit_report == gen.fit_report
    assert np.array_equal(
        loaded.generate(6, seed=2, source=starter).images,
        gen.generate(6, seed=2, source=starter).images,
    )


def test_generate_needs_a_source(fitted: tuple[Autoencoder, StepCalls]) -> None:
    gen, _ = fitted
    with pytest.raises(ValueError, match="needs `source`"):
        gen.generate(2, seed=0)


def test_training_reduces_reconstruction_error(starter: RealSource) -> None:
    gen = create("ae_tconv", preset="tiny", steps=20, lr=3e-3)
    assert isinstance(gen, Autoencoder)
    cfg = gen.config
    crops = starter.crop_array(32, size=cfg.image_size, seed=99, scales=cfg.scales)

    def l1() -> float:
        return float(np.abs(gen.reconstruct(crops).astype(np.float64) - crops).mean())

    before = l1()
    gen.fit(starter)
    after = l1()
    assert after < 0.8 * before, (before, after)


def test_bad_options_raise() -> None:
    with pytest.raises(ValueError, match="valid values"):
        create("ae_tconv", preset="tiny", upsample="bicubic")
    with pytest.raises(ValueError, match="unknown AEConfig field"):
        create("ae_pixelshuffle", preset="tiny", latent_dim=8)
    with pytest.raises(ValueError, match="valid presets"):
        AEConfig.preset("large")
    with pytest.raises(ValueError, match="power of two"):
        AEConfig.preset("tiny", image_size=24)
    with pytest.raises(ValueError, match="bottleneck_factor"):
        AEConfig.preset("tiny", bottleneck_factor=4)
    with pytest.raises(ValueError, match="too small"):
        AEConfig.preset("tiny", image_size=16, bottleneck_factor=16)


def test_builder_fixes_upsample_kind_and_accepts_it_again() -> None:
    assert create("ae_nearest", preset="tiny").config.upsample == "nearest"
    assert create("ae_nearest", preset="tiny", upsample="nearest").config.upsample == "nearest"
