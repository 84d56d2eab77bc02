"""Bring your own fakes: a folder of media another tool made, as a named generator.

``corpus build --fakes NAME=DIR[:FAMILY]`` turns every image (or recording) found
under ``DIR`` by content into synthetic corpus items of generator ``NAME``, through
exactly what real media goes through:

- images are cut into crops by the real-photo crop machinery (same size, same
  scales rule), then take the same label-blind final encoding;
- recordings are decoded, trimmed and loudness-normalised like real speech, then
  take the same final encoding;
- splits are drawn by fake file (``split_items`` with the corpus's fractions and
  seed), so the crops of one file never land in two splits;
- ``config_hash`` fingerprints the folder (every file's relative path and size): a
  folder changed since a corpus was built is detectable.

``FAMILY`` defaults to ``NAME``: an unknown tool is its own family, so a
leave-one-family-out evaluation holds it out alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.corpus.manifest import ManifestRow
from generators.corpus.splits import split_items
from generators.sources import AudioSource, RealSource, Skipped
from generators.sources.audio import audio_folder_source
from generators.sources.folder import folder_source

if TYPE_CHECKING:
    from generators.corpus.builder import CorpusConfig, ProgressFn

# Names become folder names in the corpus (synthetic/<name>/...).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
FAKES_KEY = "fakes"  # corpus.json: name -> what the folder held


@dataclass(frozen=True)
class FakesSpec:
    """A folder of already-generated media, used as generator ``name``."""

    name: str
    path: str  # absolute, as the CLI resolves it
    family: str = ""  # "" means the name: an unknown tool is its own family

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name) or self.name == "real":
            raise ValueError(
                f"fakes name {self.name!r} must be letters, digits, '_', '.', '-' "
                "(starting with a letter or digit) and not 'real'"
            )
        if self.family and not _NAME.fullmatch(self.family):
            raise ValueError(f"fakes family {self.family!r} must be letters, digits, '_', '.', '-'")
        if not self.family:
            object.__setattr__(self, "family", self.name)


def parse_fakes(text: str) -> FakesSpec:
    """``NAME=DIR`` or ``NAME=DIR:FAMILY`` (a ``DIR`` that exists with its colon wins)."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest:
        raise ValueError(f"--fakes expects NAME=DIR or NAME=DIR:FAMILY, got {text!r}")
    path, fam = rest, ""
    head, colon, tail = rest.rpartition(":")
    if colon and head and _NAME.fullmatch(tail) and not Path(rest).expanduser().is_dir():
        path, fam = head, tail
    return FakesSpec(name=name.strip(), path=str(Path(path).expanduser().resolve()), family=fam)


def folder_hash(root: str | Path) -> str:
    """A short hash of every file under ``root``: relative path and size."""
    root = Path(root)
    files = []
    for dirpath, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(dirpath) / name
            try:
                size = path.stat().st_size
            except OSError:
                size = -1
            files.append((path.relative_to(root).as_posix(), size))
    blob = json.dumps(sorted(files)).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class FakesFolder:
    """A scanned fakes folder: its usable media (a real-source object, so images are
    cropped and speech prepared by the same code as real media) and what was skipped."""

    spec: FakesSpec
    modality: str
    source: RealSource | AudioSource
    config_hash: str

    @property
    def skipped(self) -> list[Skipped]:
        return self.source.skipped

    def record(self, items: int) -> dict[str, Any]:
        """What ``corpus.json`` keeps about the folder."""
        return {
            "name": self.spec.name,
            "path": self.spec.path,
            "family": self.spec.family,
            "modality": self.modality,
            "files": len(self.source),
            "skipped": self.source.skipped_summary(),
            "config_hash": self.config_hash,
            "items": items,
        }


def open_fakes(
    spec: FakesSpec, *, modality: str, clip_seconds: float = 4.0, max_clips: int = 8
) -> FakesFolder:
    """Scan the folder (every file by content, fully decoded once). Raises ``ValueError``
    when it is missing or holds no usable media of the corpus's modality."""
    root = Path(spec.path)
    if not root.is_dir():
        raise ValueError(f"fakes folder {spec.name!r}: {root} does not exist or is not a directory")
    if modality == "video":
        from generators.sources.video import open_video_folder

        source: Any = open_video_folder(root, clip_seconds=clip_seconds, max_clips=max_clips)
    else:
        source = audio_folder_source(root) if modality == "audio" else folder_source(root)
    if not len(source):
        what = {"audio": "speech recordings", "video": "videos"}.get(modality, "images")
        skipped = ", ".join(f"{n} {code}" for code, n in source.skipped_summary().items())
        raise ValueError(
            f"fakes folder {spec.name!r} ({root}) has no usable {what}"
            + (f" (skipped: {skipped})" if skipped else " (it is empty)")
        )
    return FakesFolder(spec=spec, modality=modality, source=source, config_hash=folder_hash(root))


def write_fakes(
    out: Path, config: CorpusConfig, folder: FakesFolder, progress: ProgressFn
) -> list[ManifestRow]:
    """``config.per_generator`` items from the folder, cycling through its files."""
    # The builder's item writers: the one final encoding for every item of the corpus.
    from generators.corpus.items import synthetic_row, write_clip, write_item

    name = folder.spec.name
    n = config.per_generator
    files = [it.id for it in folder.source.items]
    split_of = split_items(files, config.splits, seed=config.seed)
    # Like a built-in generator's seed: a corpus extended later gets the same items.
    seed = int(hashlib.sha256(f"{config.seed}:{name}".encode()).hexdigest()[:8], 16)
    media: Iterator[tuple[str, Any]]  # (file id, pixels or prepared samples)
    write: Callable[..., tuple[str, dict[str, Any]]]
    if folder.modality == "video":
        # Cut and downscaled like the real clips; each fake clip is its own encoding source
        # (no real clip of the corpus made it). What changed in it is not known (no boxes):
        # every face in it counts as synthetic.
        max_side = config.video.max_side
        media = ((c.parent, (c.id, c.load(max_side=max_side)))
                 for c in folder.source.pick(n, seed=seed))  # fmt: skip
        write = _write_fake_video
        files = sorted({c.parent for c in folder.source.items})
        split_of = split_items(files, config.splits, seed=config.seed)
    elif isinstance(folder.source, AudioSource):
        # Utterance.load() is decode + prepare_speech, exactly as for real clips.
        media = ((u.id, u.load()) for u in folder.source.pick(n, seed=seed))
        write = write_clip
    else:
        crops = folder.source.crops(n, size=config.encoding.size, seed=seed, scales=config.scales)
        media = ((c.parent, c.image) for c in crops)
        write = write_item
    rows = []
    for i, (file_id, data) in enumerate(media):  # file_id: the file (video: the parent)
        split = split_of[file_id]
        item_id = f"{name}-{i:06d}"
        rel, facts = write(out, f"synthetic/{name}/{split}", item_id, data, config)
        rows.append(
            synthetic_row(item_id, rel, facts, config, split, name, folder.spec.family,
                          folder.config_hash, seed, i, file_id)
        )  # fmt: skip
        if i % 64 == 0 or i == n - 1:
            progress(f"fakes:{name}", i + 1, n, {})
    return rows


def _write_fake_video(
    out: Path, rel_dir: str, item_id: str, data: tuple[str, Any], config: CorpusConfig
) -> tuple[str, dict[str, Any]]:
    from generators.corpus.items import write_video

    clip_id, clip = data
    return write_video(out, rel_dir, item_id, clip, f"fakes:{clip_id}", config)


def recorded_fakes(corpus_dir: str | Path) -> list[dict[str, Any]]:
    """The fakes folders a corpus was built with, as ``corpus.json`` records them."""
    path = Path(corpus_dir) / "corpus.json"
    if not path.is_file():
        raise ValueError(f"{corpus_dir} is not a corpus (no corpus.json)")
    meta = json.loads(path.read_text())
    return [dict(rec) for _name, rec in sorted(meta.get(FAKES_KEY, {}).items())]


__all__ = [
    "FakesFolder",
    "FakesSpec",
    "folder_hash",
    "open_fakes",
    "parse_fakes",
    "recorded_fakes",
    "write_fakes",
]
