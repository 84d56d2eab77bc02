"""``--real DIR``: every image under a folder, found by content, not by extension."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from detector.media import ImageLimits, MediaError, decode_image
from generators.sources.base import RealItem, RealSource, Skipped

MIN_SIDE = 32  # smaller photos hold no useful crop


def folder_source(
    root: str | Path,
    *,
    limits: ImageLimits | None = None,
    min_side: int = MIN_SIDE,
    on_file: Callable[[int, Path], None] | None = None,
) -> RealSource:
    """Scan ``root`` recursively; keep every decodable image, record why the rest were skipped.

    Each file is fully decoded once here, so a truncated or bomb file is caught at
    scan time rather than in the middle of training.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"real-data folder {root} does not exist or is not a directory")
    items: list[RealItem] = []
    skipped: list[Skipped] = []
    paths = sorted(
        Path(dirpath) / name
        for dirpath, _dirs, files in os.walk(root, followlinks=False)
        for name in files
    )
    for i, path in enumerate(paths):
        if on_file is not None:
            on_file(i, path)
        rel = path.relative_to(root).as_posix()
        try:
            img = decode_image(path, limits=limits)
        except MediaError as exc:
            skipped.append(Skipped(rel, exc.code, exc.message))
            continue
        except OSError as exc:  # unreadable file (permissions, a broken link)
            skipped.append(Skipped(rel, "corrupt_media", f"cannot read the file ({exc})"))
            continue
        if min(img.width, img.height) < min_side:
            skipped.append(
                Skipped(rel, "too_small", f"{img.width}x{img.height} is under {min_side} pixels")
            )
            continue
        items.append(RealItem(id=rel, origin=str(path)))
    return RealSource(spec=str(root), items=items, skipped=skipped)
