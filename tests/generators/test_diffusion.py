from __future__ import annotations

import numpy as np
import pytest
import torch

from generators.checkpoint import load_generator, save_generator
from generators.image.diffusion import DDPM, DDPMConfig, GaussianDiffusion, Unet
from generators.image.diffusion.process import gaussian_noise
from generators.registry import create


@pytest.fixture(scope="module")
def fitted(starter) -> DDPM:
    gen = create("ddpm", preset="tiny")
    assert isinstance(gen, DDPM)
    gen.fit(starter)
    return gen


def test_registered_in_the_diffusion_family() -> None:
    from generators.registry import family, names

    assert "ddpm" in names()
    assert family("ddpm") == "diffusion"


def test_fit_reports_every_step(starter) -> None:
    calls: list[tuple[int, int, dict[str, float]]] = []
    gen = create("ddpm", preset="tiny", steps=3)
    report = gen.fit(starter, on_step=lambda s, t, m: calls.append((s, t, m)))
    assert [(s, t) for s, t, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert report is gen.fit_report
    assert report.steps == 3 and report.n_train == gen.config.n_train_crops
    assert np.isfinite(report.final["loss"])


def test_generate_gives_uint8_images_that_are_not_constant(fitted) -> None:
    out = fitted.generate(5, seed=0)
    assert out.images.shape == (5, 16, 16, 3) and out.images.dtype == np.uint8
    assert out.sources == [None] * 5 and len(out.seeds) == 5
    assert out.images.std() > 1.0
    assert len({img.tobytes() for img in out.images}) == 5


@pytest.mark.parametrize(
    "overrides", [{}, {"eta": 1.0}, {"sampler": "ddpm"}, {"objective": "eps", "offset_noise": 0.0}]
)
def test_same_seed_same_images_different_seed_different(fitted, overrides) -> None:
    gen = _with(fitted, **overrides)
    a, b = gen.generate(2, seed=7).images, gen.generate(2, seed=7).images
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, gen.generate(2, seed=8).images)


def test_items_do_not_depend_on_batching(fitted) -> None:
    small = _with(fitted, sample_batch=2)
    whole = fitted.generate(5, seed=1)
    batched = small.generate(5, seed=1)
    assert whole.seeds == batched.seeds
    # Different batch shapes may pick different conv kernels: allow a rounding step.
    assert np.abs(whole.images.astype(int) - batched.images.astype(int)).max() <= 1
    np.testing.assert_array_equal(fitted.generate(3, seed=1).images, whole.images[:3])


@pytest.mark.parametrize(
    ("sampler", "steps", "calls"), [("ddim", 3, 3), ("ddim", 7, 7), ("ddpm", 5, 50)]
)
def test_sampler_calls_the_network_once_per_step(fitted, sampler, steps, calls) -> None:
    gen = _with(fitted, sampler=sampler, sample_steps=steps)
    seen: list[int] = []
    hook = gen.nets["ema"].model.register_forward_hook(lambda *_: seen.append(1))
    try:
        gen.generate(2, seed=0)
    finally:
        hook.remove()
    assert len(seen) == calls  # ddpm ignores sample_steps: one call per timestep (T=50)


def test_checkpoint_round_trip_gives_identical_samples(fitted, tmp_path) -> None:
    save_generator(fitted, tmp_path / "ckpt")
    loaded = load_generator(tmp_path / "ckpt")
    assert isinstance(loaded, DDPM) and loaded.config == fitted.config
    assert loaded.fit_report == fitted.fit_report
    np.testing.assert_array_equal(
        loaded.generate(4, seed=3).images, fitted.generate(4, seed=3).images
    )


def test_checkpoint_carries_the_ema_weights(fitted) -> None:
    keys = fitted.nets.state_dict().keys()
    assert any(k.startswith("ema.model.") for k in keys)
    assert any(k.startswith("diffusion.model.") for k in keys)
    assert not any(k.endswith("alphas_cumprod") for k in keys)  # derived from the config


def test_bad_config_raises_value_error() -> None:
    with pytest.raises(ValueError, match="valid fields"):
        create("ddpm", preset="tiny", no_such_field=1)
    with pytest.raises(ValueError, match="'linear', 'cosine'"):
        create("ddpm", preset="tiny", beta_schedule="quadratic")
    with pytest.raises(ValueError, match="'ddim', 'ddpm'"):
        DDPMConfig.preset("tiny", sampler="euler")
    with pytest.raises(ValueError, match="'eps', 'v'"):
        DDPMConfig.preset("tiny", objective="x0")
    with pytest.raises(ValueError, match="divisible"):
        DDPMConfig.preset("tiny", image_size=15)
    with pytest.raises(ValueError, match="preset"):
        DDPMConfig.preset("huge")


def test_presets_apply_overrides() -> None:
    assert DDPMConfig.preset("default") == DDPMConfig()
    tiny = DDPMConfig.preset("tiny", dim_mults=[1, 2], lr=1)
    assert tiny.image_size == 16 and tiny.dim_mults == (1, 2) and tiny.lr == 1.0


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_noise_schedule_is_a_decreasing_signal_fraction(schedule) -> None:
    d = GaussianDiffusion(
        Unet(8, dim_mults=(1,)), image_size=8, timesteps=200, beta_schedule=schedule
    )
    abar = d.alphas_cumprod
    assert abar.shape == (200,)
    assert ((abar > 0) & (abar < 1)).all()
    assert (abar[1:] < abar[:-1]).all()
    assert abar[0] > 0.99 and abar[-1] < 0.01  # starts nearly clean, ends nearly pure noise


def test_q_sample_interpolates_between_image_and_noise() -> None:
    d = GaussianDiffusion(Unet(8, dim_mults=(1,)), image_size=8, timesteps=100)
    x0, noise = torch.ones(2, 3, 8, 8), torch.full((2, 3, 8, 8), -1.0)
    xt = d.q_sample(x0, torch.tensor([0, 99]), noise)
    assert xt[0].mean() > 0.9 and xt[1].mean() < -0.9
    # Variance preserving: unit-variance image and noise give a unit-variance x_t.
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(256, 3, 8, 8, generator=g), torch.randn(256, 3, 8, 8, generator=g)
    xt = d.q_sample(x0, torch.full((256,), 50), noise)
    assert abs(xt.std().item() - 1.0) < 0.05


@pytest.mark.parametrize("objective", ["v", "eps"])
def test_training_loss_falls(starter, objective) -> None:
    losses: list[float] = []
    gen = create("ddpm", preset="tiny", steps=40, n_train_crops=32, lr=3e-3, objective=objective)
    gen.fit(starter, on_step=lambda _s, _t, m: losses.append(m["loss"]))
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_offset_noise_spreads_the_per_image_means() -> None:
    g = torch.Generator().manual_seed(0)
    plain = gaussian_noise((256, 3, 16, 16), g)
    offset = gaussian_noise((256, 3, 16, 16), g, offset=0.5)
    # White noise means over 256 pixels spread 1/16; the offset adds 0.5 to that.
    assert plain.mean(dim=(2, 3)).std() < 0.1
    assert offset.mean(dim=(2, 3)).std() > 0.4


def test_unet_keeps_the_input_shape() -> None:
    for patch, mults in [(1, (1,)), (2, (1, 2)), (1, (1, 2, 4))]:
        net = Unet(8, dim_mults=mults, patch_size=patch)
        out = net(torch.randn(2, 3, 16, 16), torch.tensor([0, 5]))
        assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all()


def _with(gen: DDPM, **overrides) -> DDPM:
    """A generator with ``gen``'s weights and some sampling options changed."""
    other = create("ddpm", preset="tiny", **overrides)
    assert isinstance(other, DDPM)
    other.nets.load_state_dict(gen.nets.state_dict())
    return other
