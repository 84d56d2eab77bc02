"""Reading corpora for detectors: manifest rows -> decoded, labeled items."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.media import decode_image


@dataclass(frozen=True)
class Item:
    path: Path
    label: int  # 1 = synthetic
    split: str
    generator: str  # "real" for real items
    family: str  # "real" for real items
    corpus: str
    source_item: str | None
    bytes: int
    modality: str = "image"
    # Audio: the clip's length, and the synthetic part of a partially synthetic clip.
    duration_s: float | None = None
    segments: tuple[tuple[float, float], ...] | None = None


def read_items(corpora: Iterable[str | Path], *, modality: str = "image") -> list[Item]:
    """Every item of ``modality`` in the given corpora (manifest.jsonl rows), with
    absolute paths."""
    # generators.corpus owns the manifest format; detector reads it as plain JSON so it
    # does not import the generators package.
    import json

    items: list[Item] = []
    for corpus in corpora:
        root = Path(corpus).resolve()
        manifest = root / "manifest.jsonl"
        if not manifest.is_file():
            raise ValueError(f"{root} is not a corpus: no manifest.jsonl")
        for line in manifest.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if row["modality"] != modality:
                continue
            synthetic = row["label"] == "synthetic"
            segments = row.get("segments")
            items.append(
                Item(
                    path=root / row["path"],
                    label=int(synthetic),
                    split=row["split"],
                    generator=row["generator_name"] if synthetic else "real",
                    family=row["generator_family"] if synthetic else "real",
                    corpus=str(root),
                    source_item=row["source_item"],
                    bytes=int(row["bytes"]),
                    modality=modality,
                    duration_s=row.get("duration_s"),
                    segments=tuple((float(a), float(b)) for a, b in segments) if segments else None,
                )
            )
    if not items:
        raise ValueError(f"the corpora hold no {modality} items")
    return items


def select(
    items: Sequence[Item],
    *,
    split: str | None = None,
    exclude_families: Sequence[str] = (),
    families: Sequence[str] | None = None,
) -> list[Item]:
    """Items of a split; optionally without some families or with real plus only some."""
    out = [it for it in items if split is None or it.split == split]
    out = [it for it in out if it.family not in exclude_families]
    if families is not None:
        out = [it for it in out if it.family == "real" or it.family in families]
    return out


def load_pixels(items: Sequence[Item]) -> list[np.ndarray]:
    """Decode every item once (corpus items are small) through the one image decoder."""
    return [decode_image(it.path).pixels for it in items]
