"""``starter``: real photographs that installed packages already carry.

A fresh install has no data; these photos come with scikit-image, scikit-learn
and matplotlib. Only real photographs (and real scientific imaging) are listed;
drawings, renders, test patterns and synthetic images among those packages are
left out, with the reason below.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from generators.sources.base import RealItem, RealSource, Skipped

# (package, path inside the package, id, license)
_PHOTOS: tuple[tuple[str, str, str, str], ...] = (
    ("skimage", "data/astronaut.png", "astronaut", "public domain (NASA)"),
    ("skimage", "data/brick.png", "brick", "CC0"),
    ("skimage", "data/camera.png", "camera", "CC0 (S. van der Walt)"),
    ("skimage", "data/cell.png", "cell", "CC0 (microscopy)"),
    ("skimage", "data/chelsea.png", "chelsea", "CC0 (S. van der Walt)"),
    ("skimage", "data/clock_motion.png", "clock_motion", "CC0"),
    ("skimage", "data/coffee.png", "coffee", "CC0 (R. Gaiser)"),
    ("skimage", "data/coins.png", "coins", "public domain (Walters Art Museum)"),
    ("skimage", "data/grass.png", "grass", "CC0"),
    ("skimage", "data/gravel.png", "gravel", "CC0"),
    ("skimage", "data/hubble_deep_field.jpg", "hubble_deep_field", "public domain (NASA)"),
    ("skimage", "data/ihc.png", "ihc", "public domain (immunohistochemistry)"),
    ("skimage", "data/moon.png", "moon", "public domain"),
    ("skimage", "data/motorcycle_left.png", "motorcycle", "CC0 (Middlebury stereo)"),
    ("skimage", "data/retina.jpg", "retina", "CC-BY (Häggström)"),
    ("skimage", "data/rocket.jpg", "rocket", "public domain (SpaceX)"),
    ("sklearn", "datasets/images/china.jpg", "china", "CC-BY (scikit-learn sample)"),
    ("sklearn", "datasets/images/flower.jpg", "flower", "CC-BY (scikit-learn sample)"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "grace_hopper", "public domain"),
)

# Shipped by the same packages but not real photographs (or not usable as separate items).
EXCLUDED: dict[str, str] = {
    "skimage/data/chessboard_GRAY.png": "test pattern",
    "skimage/data/chessboard_RGB.png": "test pattern",
    "skimage/data/color.png": "synthetic colour wheel",
    "skimage/data/horse.png": "silhouette drawing",
    "skimage/data/logo.png": "drawing",
    "skimage/data/phantom.png": "synthetic phantom",
    "skimage/data/page.png": "scanned text page, not a photograph",
    "skimage/data/text.png": "text on a plain background",
    "skimage/data/microaneurysms.png": "102x102: too small to crop",
    "skimage/data/motorcycle_right.png": "stereo twin of motorcycle_left: would leak across splits",
    "matplotlib/mpl-data/sample_data/Minduka_Present_Blue_Pack.png": "rendered clip art",
    "matplotlib/mpl-data/sample_data/logo2.png": "drawing",
}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def starter_source() -> RealSource:
    """The bundled real photographs that are present in this installation."""
    items: list[RealItem] = []
    skipped: list[Skipped] = []
    for package, rel, item_id, license_ in _PHOTOS:
        base = _package_dir(package)
        path = base / rel if base is not None else None
        if path is None or not path.is_file():
            skipped.append(Skipped(f"{package}/{rel}", "missing", "not in this installation"))
            continue
        items.append(RealItem(id=f"starter:{item_id}", origin=str(path), license=license_))
    return RealSource(spec="starter", items=items, skipped=skipped)
