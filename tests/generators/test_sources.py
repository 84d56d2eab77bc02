from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generators.sources import folder_source, open_source
from generators.sources.starter import EXCLUDED
from tests._media import write_bad_folder


def test_starter_holds_real_photos_only(starter) -> None:
    assert len(starter) >= 15, starter.skipped
    ids = {it.id for it in starter.items}
    for excluded in EXCLUDED:
        stem = Path(excluded).stem
        assert f"starter:{stem}" not in ids
    assert all(Path(it.origin).is_file() and it.license for it in starter.items)


def test_crops_are_deterministic_sized_and_spread_over_photos(starter) -> None:
    a = list(starter.crops(60, size=32, seed=7))
    b = list(starter.crops(60, size=32, seed=7))
    c = list(starter.crops(60, size=32, seed=8))
    assert all(x.image.shape == (32, 32, 3) and x.image.dtype == np.uint8 for x in a)
    assert [x.id for x in a] == [x.id for x in b]
    assert np.array_equal(np.stack([x.image for x in a]), np.stack([x.image for x in b]))
    assert [x.id for x in a] != [x.id for x in c]
    assert len({x.parent for x in a}) == len(starter)  # round-robin over every photo
    assert len({x.scale for x in a}) > 1  # several scales


def test_subset_keeps_only_the_named_items(starter) -> None:
    keep = [starter.items[0].id, starter.items[3].id]
    sub = starter.subset(keep)
    assert [it.id for it in sub.items] == keep
    assert {c.parent for c in sub.crops(10, size=16, seed=0)} == set(keep)


def test_folder_source_finds_images_by_content_and_explains_skips(tmp_path: Path) -> None:
    expected = write_bad_folder(tmp_path / "real")
    source = folder_source(tmp_path / "real")
    found = {it.id for it in source.items}
    assert found == {rel for rel, code in expected.items() if code is None}
    skipped = {s.path: s.code for s in source.skipped}
    assert skipped == {rel: code for rel, code in expected.items() if code is not None}
    assert all(s.message for s in source.skipped)
    summary = source.skipped_summary()
    assert summary["unsupported_media"] == 2 and sum(summary.values()) == len(skipped)
    crops = source.crop_array(12, size=32, seed=0)  # the good ones are usable
    assert crops.shape == (12, 32, 32, 3)


def test_folder_source_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        open_source(str(tmp_path / "nope"))


def test_small_photos_are_upscaled_to_hold_a_crop(tmp_path: Path) -> None:
    from PIL import Image

    from tests._media import photo_like

    Image.fromarray(photo_like(0, (40, 50))).save(tmp_path / "small.png")
    crops = folder_source(tmp_path).crop_array(3, size=64, seed=0)
    assert crops.shape == (3, 64, 64, 3)
