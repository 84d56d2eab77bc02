"""Generators from outside the package: plugins (entry points) and folders of fakes."""

from __future__ import annotations

import copy
import json
import logging
import shutil
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from detector.media import decode_image
from detector.media.audio import decode_audio, prepare_speech
from generators import plugins as plugin_state
from generators.corpus import (
    CorpusConfig,
    EncodingConfig,
    FakesSpec,
    build_corpus,
    parse_fakes,
    read_manifest,
)
from generators.corpus.encoding import choose_audio_encoding, choose_encoding
from generators.corpus.fakes import folder_hash
from generators.corpus.splits import split_items
from generators.registry import GENERATORS, create, family, names, origin
from generators.sources import folder_source
from tests._audio import speech_folder, write_speech
from tests._media import encode, photo_like

SIZE = 32
ENC = EncodingConfig(size=SIZE, jpeg_fraction=0.5, jpeg_quality=(60, 95))
runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # rich tables: no wrapping of long paths in the output

# --- plugins ---------------------------------------------------------------------------

DIST = "synthguard-test-plugins"
OK_PLUGIN = """
from dataclasses import dataclass

import numpy as np

from generators.base import FitReport, Generator, Samples
from generators.registry import register


@dataclass(frozen=True)
class NoiseConfig:
    image_size: int = 64


class ColouredNoise(Generator):
    family = "noise"

    def fit(self, source, *, on_step=None):
        self.fit_report = FitReport(steps=0, seconds=0.0, n_train=len(source), final={})
        return self.fit_report

    def generate(self, n, *, seed, source=None):
        rng = np.random.default_rng(seed)
        s = self.config.image_size
        colour = rng.integers(0, 256, (n, 1, 1, 3))
        images = np.clip(colour + rng.normal(0, 20, (n, s, s, 3)), 0, 255).astype(np.uint8)
        return Samples(images=images, sources=[None] * n, seeds=[seed] * n)


def setup():
    @register("plugin_noise", family="noise")
    def plugin_noise(*, preset="default", **overrides):
        return ColouredNoise("plugin_noise", NoiseConfig(**overrides))
"""
BROKEN_PLUGIN = "import sgt_a_dependency_nobody_installed  # noqa\n"
DUP_PLUGIN = """
from generators.registry import register


@register("plugin_dup_first", family="noise")
def first(*, preset="default", **overrides):
    raise NotImplementedError


@register("gan_tconv", family="gan")  # taken by a built-in: the plugin fails here
def second(*, preset="default", **overrides):
    raise NotImplementedError
"""


@pytest.fixture(scope="module")
def plugin_dist(tmp_path_factory):
    """A distribution on ``sys.path`` (a dist-info folder, no install) with three entry
    points: a callable that registers ``plugin_noise``, a module that fails to import, and
    a module that registers a name a built-in has. The registry is restored afterwards."""
    root = tmp_path_factory.mktemp("plugins")
    tag = uuid.uuid4().hex[:8]
    modules = {f"sgt_ok_{tag}": OK_PLUGIN, f"sgt_broken_{tag}": BROKEN_PLUGIN}
    modules[f"sgt_dup_{tag}"] = DUP_PLUGIN
    for mod, src in modules.items():
        (root / f"{mod}.py").write_text(textwrap.dedent(src))
    info = root / "synthguard_test_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[synthguard.generators]\n"
        f"noise = sgt_ok_{tag}:setup\n"
        f"broken = sgt_broken_{tag}\n"
        f"dup = sgt_dup_{tag}\n"
    )
    names()  # the built-ins (and any installed plugins) are loaded before ours appear
    saved = (dict(GENERATORS._builders), dict(GENERATORS._meta), copy.deepcopy(plugin_state._STATE))
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("generators.plugins").addHandler(handler)
    sys.path.insert(0, str(root))
    try:
        names()  # sys.path changed: the entry points are scanned again
        yield {"root": root, "warnings": records, "tag": tag}
    finally:
        logging.getLogger("generators.plugins").removeHandler(handler)
        sys.path.remove(str(root))
        GENERATORS._builders, GENERATORS._meta, plugin_state._STATE = saved
        for mod in modules:
            sys.modules.pop(mod, None)


def test_plugin_generators_register_with_their_origin(plugin_dist) -> None:
    assert "plugin_noise" in names() and family("plugin_noise") == "noise"
    assert origin("plugin_noise") == f"plugin:{DIST}"
    assert GENERATORS.meta("plugin_noise")["origin"] == f"plugin:{DIST}"
    assert origin("gan_tconv") == "builtin"  # the built-in kept its name
    gen = create("plugin_noise", preset="tiny", image_size=16)
    assert gen.generate(3, seed=1).images.shape == (3, 16, 16, 3)
    ok = [p for p in plugin_state.plugins() if p.entry_point == "noise"]
    assert len(ok) == 1 and ok[0].generators == ("plugin_noise",) and ok[0].error is None


def test_broken_and_duplicate_plugins_are_reported_not_fatal(plugin_dist) -> None:
    failed = {p.entry_point: p for p in plugin_state.failures() if p.dist == DIST}
    assert set(failed) == {"broken", "dup"}
    assert "ModuleNotFoundError" in failed["broken"].error
    assert "sgt_a_dependency_nobody_installed" in failed["broken"].error
    assert "'gan_tconv' is already registered" in failed["dup"].error
    # What the failing plugin registered before failing stays, with its origin.
    assert failed["dup"].generators == ("plugin_dup_first",)
    assert origin("plugin_dup_first") == f"plugin:{DIST}"
    logged = [r.getMessage() for r in plugin_dist["warnings"] if r.levelno == logging.WARNING]
    assert any("'broken'" in m for m in logged) and any("'dup'" in m for m in logged)
    # A second scan tries nothing again.
    from generators.registry import reload_plugins

    assert reload_plugins() == []


def test_a_corpus_builds_with_a_plugin_generator(plugin_dist, real_photos, tmp_path) -> None:
    config = CorpusConfig(
        real=str(real_photos), generators=("plugin_noise",), per_generator=8, encoding=ENC
    )
    report = build_corpus(config, tmp_path)
    assert report.added == {"real": 8, "plugin_noise": 8}
    rows = [r for r in read_manifest(tmp_path) if r.generator_name == "plugin_noise"]
    assert all(r.generator_family == "noise" and r.config_hash for r in rows)
    assert all((r.width, r.height) == (SIZE, SIZE) for r in rows)
    assert (tmp_path / "generators" / "plugin_noise" / "config.json").is_file()


def test_generators_list_shows_origins_and_plugin_failures(plugin_dist) -> None:
    result = runner.invoke(app, ["generators", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    (noise,) = [ln for ln in lines if "plugin_noise" in ln]
    assert f"plugin:{DIST}" in noise and "image_size=64" in noise
    assert any("gan_tconv" in ln and "builtin" in ln for ln in lines)
    assert "2 generator plugin(s) failed to load" in result.output
    assert f"broken = sgt_broken_{plugin_dist['tag']} ({DIST}): ModuleNotFoundError" in (
        result.output
    )


# --- folders of fakes: images -------------------------------------------------------------

# (height, width, format): different sizes, both formats, one in a subfolder.
FAKE_IMAGES = {
    "a.png": (40, 50, "PNG"),
    "b.jpg": (64, 64, "JPEG"),
    "c.png": (100, 80, "PNG"),
    "d.jpg": (150, 200, "JPEG"),
    "sub/e.png": (33, 90, "PNG"),
    "sub/f.jpg": (48, 300, "JPEG"),
}


def write_fakes(root: Path, files: dict[str, tuple[int, int, str]], seed: int = 10) -> Path:
    for i, (rel, (h, w, fmt)) in enumerate(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(photo_like(seed + i, (h, w)), fmt))
    return root


@pytest.fixture(scope="module")
def real_photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("real")
    for i in range(4):
        (root / f"photo{i}.png").write_bytes(encode(photo_like(i), "PNG"))
    return root


@pytest.fixture(scope="module")
def fakes_dir(tmp_path_factory) -> Path:
    root = write_fakes(tmp_path_factory.mktemp("fakes"), FAKE_IMAGES)
    (root / "broken.png").write_bytes(encode(photo_like(99), "PNG")[:80])  # truncated
    (root / "notes.txt").write_text("made with SomeNewTool v2\n")
    return root


def fakes_config(real: Path, *specs: FakesSpec, **kw) -> CorpusConfig:
    base = dict(real=str(real), generators=(), fakes=specs, per_generator=14, encoding=ENC, seed=3)
    base.update(kw)
    return CorpusConfig(**base)


@pytest.fixture(scope="module")
def fakes_corpus(tmp_path_factory, real_photos, fakes_dir):
    out = tmp_path_factory.mktemp("fakes_corpus")
    config = fakes_config(real_photos, FakesSpec("byo", str(fakes_dir)))
    return out, config, build_corpus(config, out)


def test_fake_images_become_items_like_real_ones(fakes_corpus, fakes_dir) -> None:
    out, config, report = fakes_corpus
    assert report.added == {"real": 14, "byo": 14}
    rows = read_manifest(out)
    fakes = [r for r in rows if r.generator_name == "byo"]
    assert len(fakes) == 14 and {r.source_item for r in fakes} == set(FAKE_IMAGES)
    for r in fakes:
        assert r.label == "synthetic" and r.generator_family == "byo"  # family: the name
        assert r.config_hash == folder_hash(fakes_dir)
        data = (out / r.path).read_bytes()
        img = decode_image(data)
        assert (img.width, img.height) == (r.width, r.height) == (SIZE, SIZE)
        assert img.format.lower() == r.format and len(data) == r.bytes
        # The same label-blind encoding as every other item of the corpus.
        enc = choose_encoding(ENC, corpus_seed=config.seed, item_id=r.id)
        assert r.encoding == enc.to_dict()
    assert {r.format for r in fakes} == {"png", "jpeg"}
    # Cut by the real-photo crop machinery: the PNG items are exactly its crops.
    crops = list(folder_source(fakes_dir).crops(14, size=SIZE, seed=fakes[0].seed))
    for r, crop in zip(fakes, crops, strict=True):
        assert r.source_item == crop.parent
        if r.format == "png":
            assert np.array_equal(decode_image(out / r.path).pixels, crop.image)


def test_fakes_are_split_by_file(fakes_corpus) -> None:
    out, config, _report = fakes_corpus
    fakes = [r for r in read_manifest(out) if r.generator_name == "byo"]
    expected = split_items(sorted(FAKE_IMAGES), config.splits, seed=config.seed)
    for r in fakes:
        assert r.split == expected[r.source_item]
        assert r.path.startswith(f"synthetic/byo/{r.split}/")
    assert {r.split for r in fakes} == {"train", "val", "test"}


def test_skipped_fakes_are_reported_and_recorded(fakes_corpus, fakes_dir) -> None:
    out, _config, report = fakes_corpus
    skipped = {path: code for path, code, _msg in report.fakes["byo"]["skipped_files"]}
    assert skipped == {"broken.png": "corrupt_media", "notes.txt": "unsupported_media"}
    meta = json.loads((out / "corpus.json").read_text())
    rec = meta["fakes"]["byo"]
    assert rec["path"] == str(fakes_dir) and rec["files"] == 6 and rec["items"] == 14
    assert rec["skipped"] == {"corrupt_media": 1, "unsupported_media": 1}
    assert rec["family"] == "byo" and rec["modality"] == "image"
    assert "byo" in meta["generators"]


def test_extending_adds_only_the_new_fakes_folder(tmp_path, real_photos, fakes_dir) -> None:
    out = tmp_path / "corpus"
    build_corpus(fakes_config(real_photos, FakesSpec("byo", str(fakes_dir))), out)
    before = {r.id: r.sha256 for r in read_manifest(out)}
    more = write_fakes(tmp_path / "more", {"x.png": (64, 96, "PNG"), "y.jpg": (80, 80, "JPEG")})
    specs = (FakesSpec("byo", str(fakes_dir)), FakesSpec("tool2", str(more), family="diffusion"))
    report = build_corpus(fakes_config(real_photos, *specs), out)
    assert report.added == {"tool2": 14} and report.skipped == ["byo"]
    assert report.fakes["byo"]["changed"] is False
    rows = read_manifest(out)
    assert {r.id: r.sha256 for r in rows if r.id in before} == before
    assert {r.generator_family for r in rows if r.generator_name == "tool2"} == {"diffusion"}
    assert set(json.loads((out / "corpus.json").read_text())["fakes"]) == {"byo", "tool2"}
    # A folder changed since it was added is noticed (its items are kept).
    write_fakes(more, {"z.png": (64, 64, "PNG")}, seed=50)
    report = build_corpus(fakes_config(real_photos, *specs), out)
    assert report.added == {} and report.fakes["tool2"]["changed"] is True


def test_fakes_names_and_folders_are_checked(tmp_path, real_photos, fakes_dir) -> None:
    with pytest.raises(ValueError, match="'gan_tconv' is already a registered generator"):
        fakes_config(real_photos, FakesSpec("gan_tconv", str(fakes_dir)))
    with pytest.raises(ValueError, match="listed twice"):
        fakes_config(real_photos, FakesSpec("a", str(fakes_dir)), FakesSpec("a", "/x"))
    with pytest.raises(ValueError, match="not 'real'"):
        FakesSpec("real", str(fakes_dir))
    with pytest.raises(ValueError, match="NAME=DIR"):
        parse_fakes(str(fakes_dir))
    assert parse_fakes(f"t={fakes_dir}") == FakesSpec("t", str(fakes_dir), "t")
    assert parse_fakes(f"t={fakes_dir}:gan").family == "gan"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing here")
    config = fakes_config(real_photos, FakesSpec("nothing", str(empty)))
    with pytest.raises(ValueError, match=r"no usable images \(skipped: 1 unsupported_media\)"):
        build_corpus(config, tmp_path / "c1")
    assert not (tmp_path / "c1" / "manifest.jsonl").exists()  # it failed before any work
    config = fakes_config(real_photos, FakesSpec("gone", str(tmp_path / "gone")))
    with pytest.raises(ValueError, match="does not exist"):
        build_corpus(config, tmp_path / "c2")


# --- folders of fakes: audio --------------------------------------------------------------


def test_fake_recordings_are_prepared_and_encoded_like_real_ones(tmp_path) -> None:
    real = speech_folder(tmp_path / "real", n=3, seconds=1.5)
    fakes = tmp_path / "fakes"
    write_speech(fakes / "one.wav", seed=200, seconds=1.2)
    write_speech(fakes / "deep/two.flac", seed=201, seconds=2.0, format="FLAC")
    write_speech(fakes / "three.wav", seed=202, seconds=1.6)
    (fakes / "notes.txt").write_text("not audio")
    config = CorpusConfig(
        modality="audio",
        real=str(real),
        generators=(),
        fakes=(FakesSpec("byo_voice", str(fakes), family="tts"),),
        per_generator=5,
    )
    report = build_corpus(config, tmp_path / "corpus")
    assert report.added == {"real": 3, "byo_voice": 5}
    assert report.fakes["byo_voice"]["skipped"] == {"unsupported_media": 1}
    rows = [r for r in read_manifest(tmp_path / "corpus") if r.generator_name == "byo_voice"]
    files = ["deep/two.flac", "one.wav", "three.wav"]
    assert {r.source_item for r in rows} == set(files)  # cycling through the files
    split_of = split_items(files, config.splits, seed=config.seed)
    for r in rows:
        assert r.modality == "audio" and r.generator_family == "tts"
        assert r.sample_rate == 16_000 and r.split == split_of[r.source_item]
        enc = choose_audio_encoding(config.audio, corpus_seed=config.seed, item_id=r.id)
        assert r.encoding == enc.to_dict()
        # Trimmed and normalised exactly like real speech.
        prepared = prepare_speech(decode_audio(fakes / r.source_item).samples).samples
        assert r.duration_s == pytest.approx(len(prepared) / 16_000, abs=1e-3)
        decoded = decode_audio(tmp_path / "corpus" / r.path)
        assert abs(decoded.duration_s - r.duration_s) < 0.1  # codecs pad a little


# --- the command line ---------------------------------------------------------------------


def test_cli_corpus_build_with_fakes_and_generators_list(tmp_path, real_photos, fakes_dir) -> None:
    out = tmp_path / "corpus"
    args = ["corpus", "build", "--real", str(real_photos), "--per-generator", "6"]
    args += ["--size", str(SIZE), "--out", str(out), "--fakes", f"byo={fakes_dir}:newtool"]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert "6 files used, family newtool; skipped: 1 corrupt_media, 1 unsupported_media" in (
        result.output
    )
    assert "broken.png" in result.output and "notes.txt" in result.output
    info = json.loads(runner.invoke(app, ["corpus", "info", str(out)]).output)
    assert info["per_generator"] == {"byo": 6, "real": 6}  # --fakes alone: no built-ins
    result = runner.invoke(app, ["generators", "list", "--corpus", str(out)], env=WIDE)
    assert result.exit_code == 0, result.output
    (row,) = [ln for ln in result.output.splitlines() if ln.strip("│ ").startswith("byo ")]
    assert "newtool" in row and f"folder:{fakes_dir}" in row and "6 items in" in row
    assert "6 files, 2 skipped" in row


def test_cli_refuses_a_fakes_name_that_is_taken(tmp_path, fakes_dir) -> None:
    out = tmp_path / "c"
    args = ["corpus", "build", "--fakes", f"ddpm={fakes_dir}", "--out", str(out)]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 2
    assert "'ddpm' is already a registered generator (builtin)" in result.output
    result = runner.invoke(app, ["generators", "list", "--corpus", str(tmp_path)], env=WIDE)
    assert result.exit_code == 2 and "not a corpus" in result.output


def test_a_copied_fakes_folder_keeps_its_hash(tmp_path, fakes_dir) -> None:
    shutil.copytree(fakes_dir, tmp_path / "copy")
    assert folder_hash(tmp_path / "copy") == folder_hash(fakes_dir)
    (tmp_path / "copy" / "notes.txt").write_text("changed")
    assert folder_hash(tmp_path / "copy") != folder_hash(fakes_dir)
