from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector.media import decode_image
from generators.corpus import CorpusConfig, EncodingConfig, build_corpus, read_manifest
from generators.corpus.encoding import choose_encoding
from generators.corpus.splits import split_items

GENS = ("gan_tconv", "ae_nearest", "ddpm")
SIZE = 32


def tiny_config(**kw) -> CorpusConfig:
    base = dict(
        generators=GENS,
        per_generator=40,
        preset="tiny",
        encoding=EncodingConfig(size=SIZE, jpeg_fraction=0.6, jpeg_quality=(60, 95)),
        seed=3,
    )
    base.update(kw)
    return CorpusConfig(**base)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, starter) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("corpus")
    report = build_corpus(tiny_config(), out, source=starter)
    return out, report


def test_manifest_rows_have_every_field_and_match_the_files(corpus) -> None:
    out, _report = corpus
    rows = read_manifest(out)
    assert sum(r.label == "real" for r in rows) == 3 * 40
    for name in GENS:
        assert sum(r.generator_name == name for r in rows) == 40
    for r in rows[:: len(rows) // 25]:
        data = (out / r.path).read_bytes()
        img = decode_image(data)
        assert (img.width, img.height) == (r.width, r.height) == (SIZE, SIZE)
        assert img.format.lower() == r.format and len(data) == r.bytes
        assert r.modality == "image" and r.split in ("train", "val", "test")
        if r.label == "synthetic":
            assert r.generator_family in ("gan", "autoencoder", "diffusion") and r.config_hash
        else:
            assert r.generator_name is None and r.source_item
    ae = [r for r in rows if r.generator_family == "autoencoder"]
    assert all(r.source_item and r.source_item.startswith("starter:") for r in ae)
    gan = [r for r in rows if r.generator_family == "gan"]
    assert all(r.source_item is None for r in gan)
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["config"]["encoding"]["size"] == SIZE and sorted(meta["generators"]) == sorted(GENS)


def test_no_photo_lands_in_two_splits(corpus) -> None:
    out, _ = corpus
    rows = read_manifest(out)
    split_of: dict[str, set[str]] = {}
    for r in rows:
        if r.source_item:
            split_of.setdefault(r.source_item, set()).add(r.split)
    assert split_of and all(len(s) == 1 for s in split_of.values())
    for split in ("train", "val", "test"):
        assert any(r.split == split and r.label == "real" for r in rows)
        assert any(r.split == split and r.label == "synthetic" for r in rows)


def test_generators_train_on_the_train_split_only(corpus) -> None:
    out, _ = corpus
    meta = json.loads((out / "corpus.json").read_text())
    ckpt = json.loads((out / "generators" / "gan_tconv" / "config.json").read_text())
    assert ckpt["trained_on_split"] == "train"
    n_train_photos = sum(s == "train" for s in meta["photo_splits"].values())
    assert 0 < n_train_photos < len(meta["photo_splits"])


def test_encoding_parity_between_classes(corpus) -> None:
    _, report = corpus
    audit = report.audit
    assert abs(audit["auc_jpeg_quality"] - 0.5) < 0.1, audit
    assert abs(audit["auc_format"] - 0.5) < 0.1, audit
    assert audit["auc_dimensions"] == 0.5
    shares = [audit["by_class"][c]["jpeg_share"] for c in ("real", "synthetic")]
    assert abs(shares[0] - shares[1]) < 0.15


def test_encoding_choice_ignores_the_label() -> None:
    cfg = EncodingConfig()
    a = [choose_encoding(cfg, corpus_seed=1, item_id=f"x-{i}") for i in range(500)]
    assert a == [choose_encoding(cfg, corpus_seed=1, item_id=f"x-{i}") for i in range(500)]
    share = sum(e.format == "jpeg" for e in a) / len(a)
    assert abs(share - cfg.jpeg_fraction) < 0.07
    q = [e.quality for e in a if e.quality is not None]
    assert min(q) >= 70 and max(q) <= 100


def test_extend_adds_a_generator_and_keeps_the_rest(corpus, starter) -> None:
    out, _ = corpus
    before = {r.id: r.sha256 for r in read_manifest(out)}
    report = build_corpus(tiny_config(generators=(*GENS, "gan_pixelshuffle")), out, source=starter)
    assert report.added == {"gan_pixelshuffle": 40}
    assert sorted(report.skipped) == sorted(GENS)
    after = {r.id: r.sha256 for r in read_manifest(out)}
    assert {k: after[k] for k in before} == before
    assert sum(k.startswith("gan_pixelshuffle-") for k in after) == 40


def test_extend_refuses_different_settings(corpus, starter) -> None:
    out, _ = corpus
    with pytest.raises(ValueError, match=r"settings differ.*encoding"):
        build_corpus(
            tiny_config(encoding=EncodingConfig(size=SIZE, jpeg_fraction=0.1)), out, source=starter
        )


def test_same_config_gives_the_same_items(tmp_path, starter) -> None:
    cfg = tiny_config(generators=("gan_nearest",), per_generator=6)
    build_corpus(cfg, tmp_path / "a", source=starter)
    build_corpus(cfg, tmp_path / "b", source=starter)
    a = {r.id: r.sha256 for r in read_manifest(tmp_path / "a")}
    assert a == {r.id: r.sha256 for r in read_manifest(tmp_path / "b")}


def test_build_from_a_folder_with_bad_files(tmp_path) -> None:
    from tests._media import photo_like, write_bad_folder

    real = tmp_path / "real"
    write_bad_folder(real)
    for i in range(4):  # enough good photos for three splits
        Image.fromarray(photo_like(10 + i, (80, 90))).save(real / f"extra{i}.png")
    cfg = tiny_config(real=str(real), generators=("ae_tconv",), per_generator=8)
    report = build_corpus(cfg, tmp_path / "c")
    assert report.real_skipped == {
        "corrupt_media": 2,
        "empty": 1,
        "too_large": 1,
        "too_small": 1,
        "unsupported_media": 2,
    }
    assert report.added == {"real": 8, "ae_tconv": 8}


def test_bad_settings_are_errors_naming_the_valid_values() -> None:
    with pytest.raises(ValueError, match="unknown generator 'nope'; valid values"):
        tiny_config(generators=("nope",))
    with pytest.raises(ValueError, match="unknown preset"):
        tiny_config(preset="huge")
    with pytest.raises(ValueError, match="fractions"):
        tiny_config(splits=(0.5, 0.5, 0.5))


def test_split_items_is_deterministic_and_covers_all_splits() -> None:
    ids = [f"p{i}" for i in range(10)]
    a = split_items(ids, (0.7, 0.15, 0.15), seed=0)
    assert a == split_items(list(reversed(ids)), (0.7, 0.15, 0.15), seed=0)
    assert set(a.values()) == {"train", "val", "test"}
    assert np.sum([v == "train" for v in a.values()]) == 7
