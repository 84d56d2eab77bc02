"""Every registered voice generator: tiny presets on speech-like test clips.

The clip contract (count, 16 kHz float32 in [-1, 1], finite, audible, the source's
length), seeds, content kept by copy synthesis, checkpoints, splice segments, and the
clear errors of the optional dependencies (pyworld, espeak-ng).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import librosa
import numpy as np
import pytest

from generators import create, load_generator, save_generator
from generators.audio import splice as splice_mod
from generators.audio import tts, world
from generators.audio._dsp import CopySynthesis, finish, raised_cosine
from generators.audio.vocoder import MelVocoder
from generators.base import Generator, Samples
from generators.registry import family, names
from generators.sources.audio import AudioSource, audio_folder_source
from tests._audio import speech_folder

SR = 16_000
VOICE_NAMES = [n for n in names() if create(n, preset="tiny").modality == "audio"]
EXPECTED = {
    "gl_linear": "griffin_lim",
    "gl_mel": "griffin_lim",
    "world": "world",
    "world_pitch": "world",
    "lpc": "lpc",
    "melgan": "neural_vocoder",
    "tts_espeak": "tts",
    "splice": "splice",
}
# Same utterance, different seed: a different clip (random phase, noise, shift, segment,
# voice); the others are a deterministic function of their input.
STOCHASTIC = {"gl_linear", "gl_mel", "world_pitch", "lpc", "tts_espeak", "splice"}
DETERMINISTIC = {"world", "melgan"}
CONTENT_KEPT = ["gl_linear", "gl_mel", "world", "lpc"]  # copy synthesis by analysis


def _skip_unavailable(name: str) -> None:
    if family(name) == "world" and not world.available():
        pytest.skip("pyworld is not installed (pip install pyworld)")
    if family(name) == "tts" and not tts.available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> AudioSource:
    src = audio_folder_source(speech_folder(tmp_path_factory.mktemp("speech"), n=4))
    assert len(src) == 4
    return src


@pytest.fixture(scope="module")
def fitted() -> dict[str, Generator]:
    """Tiny generators, fitted on first use and shared by the module's tests."""
    return {}


def _get(fitted: dict[str, Generator], source: AudioSource, name: str) -> Generator:
    _skip_unavailable(name)
    if name not in fitted:
        gen = create(name, preset="tiny")
        gen.fit(source)
        fitted[name] = gen
    return fitted[name]


def _log_mel(y: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=512, hop_length=128, n_mels=40)
    return np.log(mel + 1e-6)


def test_voice_generators_are_registered() -> None:
    assert set(EXPECTED) <= set(VOICE_NAMES)
    for name, fam in EXPECTED.items():
        gen = create(name, preset="tiny")
        assert family(name) == fam == gen.family and gen.modality == "audio"
        assert gen.conditional == (name != "tts_espeak")


@pytest.mark.parametrize("name", VOICE_NAMES)
def test_generate_gives_valid_clips(
    name: str, source: AudioSource, fitted: dict[str, Generator]
) -> None:
    gen = _get(fitted, source, name)
    report = gen.fit_report
    assert report is not None and all(np.isfinite(v) for v in report.final.values())
    if name != "melgan" and not (name == "splice" and gen.config.inner == "melgan"):
        assert report.steps == 0  # analysis-synthesis learns nothing
    samples = gen.generate(3, seed=0, source=source)
    assert isinstance(samples, Samples) and len(samples) == 3
    assert samples.images is None and samples.sample_rate == SR
    assert len(samples.audio) == len(samples.sources) == len(samples.seeds) == 3
    assert len(samples.segments) == 3
    lengths = {it.id: len(it.load()) for it in source.items}
    for clip, src in zip(samples.audio, samples.sources, strict=True):
        assert clip.dtype == np.float32 and clip.ndim == 1
        assert np.isfinite(clip).all() and np.abs(clip).max() <= 1.0
        assert np.sqrt(np.mean(clip**2)) > 1e-3  # audible
        if gen.conditional:
            assert src in lengths and len(clip) == lengths[src]
        else:
            assert src is None and len(clip) > SR // 2
    if gen.conditional:
        picked = [u.id for u in source.pick(3, seed=0)]
        assert samples.sources == picked


@pytest.mark.parametrize("name", VOICE_NAMES)
def test_same_seed_same_clips(name: str, source: AudioSource, fitted: dict[str, Generator]) -> None:
    gen = _get(fitted, source, name)
    one = source.subset([source.items[0].id])  # both calls copy the same utterance
    a = gen.generate(2, seed=7, source=one)
    b = gen.generate(2, seed=7, source=one)
    for x, y in zip(a.audio, b.audio, strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.segments == b.segments and a.seeds == b.seeds
    c = gen.generate(2, seed=8, source=one)
    same = all(np.array_equal(x, y) for x, y in zip(a.audio, c.audio, strict=True))
    if name in STOCHASTIC:
        assert not same
    elif name in DETERMINISTIC:
        assert same


@pytest.mark.parametrize("name", CONTENT_KEPT)
def test_copy_synthesis_keeps_the_content(
    name: str, source: AudioSource, fitted: dict[str, Generator]
) -> None:
    gen = _get(fitted, source, name)
    samples = gen.generate(2, seed=0, source=source)
    real = {it.id: it.load() for it in source.items}
    for clip, src in zip(samples.audio, samples.sources, strict=True):
        assert src is not None
        corr = np.corrcoef(_log_mel(clip).ravel(), _log_mel(real[src]).ravel())[0, 1]
        assert corr > 0.8, f"{name}: log-mel correlation {corr:.3f}"
        assert not np.array_equal(clip, real[src])


def test_world_pitch_shifts_f0(source: AudioSource, fitted: dict[str, Generator]) -> None:
    gen = _get(fitted, source, "world_pitch")
    y = source.items[0].load()
    shifts = [gen.config.semitones(seed) for seed in range(40)]
    assert all(1.0 <= abs(s) <= 3.0 for s in shifts) and min(shifts) < 0 < max(shifts)
    out = gen.resynthesize(np.array(y), seed=0)
    shift = shifts[0]

    def median_f0(x: np.ndarray) -> float:
        return float(np.median(librosa.yin(x, fmin=60, fmax=500, sr=SR, frame_length=1024)))

    measured = 12 * np.log2(median_f0(out) / median_f0(y))
    assert abs(measured - shift) < 0.75


def test_generate_needs_an_audio_source() -> None:
    gen = create("gl_linear", preset="tiny")
    with pytest.raises(ValueError, match="needs `source`"):
        gen.generate(1, seed=0)
    with pytest.raises(ValueError, match="audio source"):
        gen.generate(1, seed=0, source=SimpleNamespace(modality="image"))


def test_finish_matches_length_and_level() -> None:
    ref = (0.1 * np.sin(np.arange(1000) / 5)).astype(np.float32)
    out = finish(np.r_[3 * ref, np.nan, 1.0, 2.0], ref)
    assert out.dtype == np.float32 and len(out) == len(ref)
    np.testing.assert_allclose(np.sqrt(np.mean(out**2)), np.sqrt(np.mean(ref**2)), rtol=1e-4)
    loud = finish(np.r_[np.zeros(999), 1.0], np.full(1000, 0.5, np.float32))
    assert np.abs(loud).max() <= 0.99


# --- melgan -----------------------------------------------------------------------------


def test_melgan_fit_reports_steps(source: AudioSource) -> None:
    gen = create("melgan", preset="tiny")
    calls: list[tuple[int, int, dict[str, float]]] = []
    report = gen.fit(source, on_step=lambda s, t, m: calls.append((s, t, m)))
    steps = gen.config.steps
    assert report.steps == steps and report.n_train == len(source)
    assert [(s, t) for s, t, _ in calls] == [(i, steps) for i in range(1, steps + 1)]
    assert "loss_d" in calls[-1][2]  # the discriminator joined after adv_start


def test_melgan_checkpoint_round_trip(
    tmp_path: Path, source: AudioSource, fitted: dict[str, Generator]
) -> None:
    gen = _get(fitted, source, "melgan")
    assert isinstance(gen, MelVocoder)
    keys = gen.nets.state_dict()
    assert any(k.startswith("vocoder.") for k in keys)
    assert not any(k.endswith(("basis", "window")) for k in keys)  # fixed, not saved
    save_generator(gen, tmp_path / "ckpt")
    loaded = load_generator(tmp_path / "ckpt")
    assert isinstance(loaded, MelVocoder) and loaded.config == gen.config
    assert loaded.fit_report == gen.fit_report
    a = gen.generate(2, seed=1, source=source)
    b = loaded.generate(2, seed=1, source=source)
    for x, y in zip(a.audio, b.audio, strict=True):
        np.testing.assert_array_equal(x, y)


def test_splice_with_melgan_saves_the_inner_weights(tmp_path: Path, source: AudioSource) -> None:
    gen = create("splice", preset="tiny", inner="melgan")
    report = gen.fit(source)
    assert report.steps == gen.inner.config.steps > 0
    save_generator(gen, tmp_path / "ckpt")
    loaded = load_generator(tmp_path / "ckpt")
    assert loaded.config.inner == "melgan" and loaded.config.inner_preset == "tiny"
    a = gen.generate(1, seed=2, source=source)
    b = loaded.generate(1, seed=2, source=source)
    np.testing.assert_array_equal(a.audio[0], b.audio[0])


# --- splice -----------------------------------------------------------------------------


def test_splice_replaces_one_segment_only(
    source: AudioSource, fitted: dict[str, Generator]
) -> None:
    gen = _get(fitted, source, "splice")
    cfg = gen.config
    samples = gen.generate(4, seed=3, source=source)
    real = {it.id: it.load() for it in source.items}
    for clip, src, seg in zip(samples.audio, samples.sources, samples.segments, strict=True):
        assert src is not None and seg is not None
        y = real[src]
        start_s, end_s = seg
        start, end = round(start_s * SR), round(end_s * SR)
        assert (start / SR, end / SR) == seg  # whole samples, exact
        assert 0 < start < end < len(y)
        assert start >= cfg.edge_seconds * SR and len(y) - end >= cfg.edge_seconds * SR
        assert cfg.min_seconds * SR <= end - start <= cfg.max_seconds * SR
        np.testing.assert_array_equal(clip[:start], y[:start])
        np.testing.assert_array_equal(clip[end:], y[end:])
        fade = round(cfg.crossfade_ms * SR / 1000)
        inside = slice(start + fade, end - fade)
        assert np.mean(np.abs(clip[inside] - y[inside])) > 1e-3


def test_splice_segment_choice() -> None:
    cfg = splice_mod.SpliceConfig.preset("default")
    rng = np.random.default_rng(0)
    for n in (2 * SR, 4 * SR, 20 * SR):
        for _ in range(20):
            start, end = splice_mod.choose_segment(n, cfg, rng)
            assert round(0.3 * SR) <= start < end <= n - round(0.3 * SR)
            assert round(1.0 * SR) <= end - start <= round(2.5 * SR)
    short = SR  # under min_seconds + 2 edges: the middle third
    assert splice_mod.choose_segment(short, cfg, rng) == (short // 3, short - short // 3)


def test_raised_cosine_ramps_up() -> None:
    ramp = raised_cosine(8)
    assert 0 < ramp[0] < ramp[-1] < 1 and np.all(np.diff(ramp) > 0)
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-6)


def test_splice_needs_a_copy_synthesis_inner() -> None:
    for bad in ("gan_tconv", "tts_espeak", "splice"):
        with pytest.raises(ValueError, match="inner"):
            create("splice", preset="tiny", inner=bad)
    assert isinstance(create("splice", preset="tiny", inner="lpc").inner, CopySynthesis)


# --- configs and optional dependencies --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("gl_linear", {"momentum": 1.0}),
        ("gl_mel", {"mel_inversion": "magic"}),
        ("world", {"f0_method": "yaapt"}),
        ("world_pitch", {"min_semitones": 4.0, "max_semitones": 2.0}),
        ("lpc", {"order": 0}),
        ("melgan", {"hop": 100}),
        ("melgan", {"upsample": "cubic"}),
        ("tts_espeak", {"pitch": (10, 120)}),
        ("tts_espeak", {"voices": ("en; rm -rf",)}),
        ("splice", {"min_seconds": 3.0, "max_seconds": 1.0}),
        ("gl_linear", {"no_such_field": 1}),
    ],
)
def test_bad_configs_are_refused(name: str, overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        create(name, preset="tiny", **overrides)


def test_without_pyworld_world_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, source: AudioSource
) -> None:
    def missing() -> None:
        raise ModuleNotFoundError("No module named 'pyworld'", name="pyworld")

    monkeypatch.setattr(world, "_import_pyworld", missing)
    assert not world.available()
    assert splice_mod.default_inner() == "gl_linear"
    assert create("splice", preset="tiny").config.inner == "gl_linear"
    gen = create("world", preset="tiny")  # constructing needs nothing
    with pytest.raises(RuntimeError, match="pip install pyworld"):
        gen.fit(source)
    with pytest.raises(RuntimeError, match="pip install pyworld"):
        gen.generate(1, seed=0, source=source)


def test_without_espeak_tts_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, source: AudioSource
) -> None:
    monkeypatch.setattr(tts.shutil, "which", lambda _name: None)
    assert not tts.available()
    gen = create("tts_espeak", preset="tiny")  # constructing needs nothing
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        gen.fit(source)
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        gen.generate(1, seed=0)


def test_tts_varies_voice_and_text() -> None:
    gen = create("tts_espeak")
    utts = [gen.utterance(s) for s in range(40)]
    assert len({u.voice for u in utts}) > 5 and len({u.text for u in utts}) > 30
    assert all(u.text.strip() and 35 <= u.pitch <= 65 and 140 <= u.speed <= 185 for u in utts)
    assert len(set(tts.SENTENCES)) == len(tts.SENTENCES) >= 50


def test_online_splices_change_one_new_segment_per_draw(source: AudioSource) -> None:
    from generators.audio.online_splice import MAX_SECONDS, MIN_SECONDS, OnlineSplicer

    splicer = OnlineSplicer()
    worlds = {"world", "world_pitch"} if world.available() else set()
    assert set(splicer.inners) == {"gl_linear", "gl_mel", "lpc"} | worlds
    y = source.items[0].load()
    seen = set()
    for k in range(6):
        made = splicer(y, np.random.default_rng(k))
        ((start_s, end_s),) = made.segments
        start, end = round(start_s * SR), round(end_s * SR)
        assert len(made.media) == len(y) and made.media.dtype == np.float32
        assert MIN_SECONDS * SR <= end - start <= MAX_SECONDS * SR  # the clips are 2.5 s
        np.testing.assert_array_equal(made.media[:start], y[:start])
        np.testing.assert_array_equal(made.media[end:], y[end:])
        assert np.mean(np.abs(made.media[start:end] - y[start:end])) > 1e-3
        seen.add(made.segments)
        again = splicer(y, np.random.default_rng(k))  # the draws alone decide the clip
        np.testing.assert_array_equal(again.media, made.media)
    assert len(seen) > 1


def test_online_splices_keep_held_out_families_out() -> None:
    from generators.audio.online_splice import OnlineSplicer

    assert set(OnlineSplicer(["griffin_lim", "lpc"]).inners) <= {"world", "world_pitch"}
    with pytest.raises(ValueError, match="splice is held out"):
        OnlineSplicer(["splice"])
    with pytest.raises(ValueError, match="no generator left"):
        OnlineSplicer(["griffin_lim", "lpc", "world"])
