"""Real sources: ``starter`` (photos installed packages carry) or a user's folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from generators.sources.base import DEFAULT_SCALES, Crop, RealItem, RealSource, Skipped
from generators.sources.folder import folder_source
from generators.sources.starter import starter_source


def open_source(spec: str, *, on_file: Callable[[int, Path], None] | None = None) -> RealSource:
    """``"starter"`` or a folder path."""
    if spec == "starter":
        return starter_source()
    return folder_source(spec, on_file=on_file)


__all__ = [
    "DEFAULT_SCALES",
    "Crop",
    "RealItem",
    "RealSource",
    "Skipped",
    "folder_source",
    "open_source",
    "starter_source",
]
