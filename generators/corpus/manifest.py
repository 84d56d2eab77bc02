"""``manifest.jsonl``: one row per corpus item, with label, provenance and encoding."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.jsonl"
LABELS = ("real", "synthetic")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ManifestRow:
    id: str
    path: str  # relative to the corpus folder
    label: str  # "real" | "synthetic"
    modality: str  # "image" | "audio" | "video"
    split: str  # "train" | "val" | "test"
    generator_family: str | None  # None for real items
    generator_name: str | None
    config_hash: str | None  # the generator's resolved-config hash
    seed: int  # the seed of the call (or crop draw) that made the item
    index: int  # the item's position within that call
    source_item: str | None  # the real photo, utterance or video clip it came from
    format: str  # "png" | "jpeg" | "flac" | "mp3" | "opus" | "mp4"
    width: int  # 0 for audio
    height: int  # 0 for audio
    encoding: dict[str, Any]  # {"format", "quality", "encoder"} or {"format", "bitrate_kbps"}
    bytes: int
    sha256: str
    # Audio only: the clip's length and rate, and the synthetic part of a partially
    # synthetic clip as [[start_s, end_s]] (None: the whole clip is what its label says).
    duration_s: float | None = None
    sample_rate: int | None = None
    segments: list[list[float]] | None = None
    # Video only: frame rate and count, and per frame the [x, y, w, h] boxes of the faces
    # a generator changed ([] for a frame it left alone; None for real clips).
    fps: float | None = None
    frames: int | None = None
    has_audio: bool | None = None
    boxes: list[list[list[int]]] | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def read_manifest(corpus_dir: str | Path) -> list[ManifestRow]:
    path = Path(corpus_dir) / MANIFEST
    if not path.is_file():
        return []
    fields = {f.name for f in dataclasses.fields(ManifestRow)}
    required = {
        f.name
        for f in dataclasses.fields(ManifestRow)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        missing = required - set(data)
        if missing:
            raise ValueError(f"{path}:{n}: manifest row lacks {sorted(missing)}")
        rows.append(ManifestRow(**{k: data[k] for k in fields if k in data}))
    return rows


def write_manifest(corpus_dir: str | Path, rows: Iterable[ManifestRow]) -> Path:
    """Replace the manifest atomically (a crash leaves the old one intact)."""
    path = Path(corpus_dir) / MANIFEST
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as f:
        for row in rows:
            f.write(row.to_json() + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path
