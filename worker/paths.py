"""Server-side batch inputs: paths under the configured roots only, and what they hold."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from worker.errors import InvalidRequest


def resolve_under_roots(raw: str, roots: list[Path]) -> Path:
    """The real path of ``raw`` if it lies under one of ``roots``; else ``InvalidRequest``.

    Relative paths are taken relative to the first root. Symbolic links are resolved
    first, so a link cannot lead out of a root.
    """
    if not roots:
        raise InvalidRequest(
            "server-side batches are off: set SYNTHGUARD_BATCH_ROOTS to the folders they may read",
            code="forbidden_path",
        )
    if "\x00" in raw:
        raise InvalidRequest("the path contains a NUL byte", code="forbidden_path")
    candidate = Path(raw)
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    real = Path(os.path.realpath(candidate))
    if not any(is_under(real, root) for root in roots):
        raise InvalidRequest(
            f"{raw!r} is outside the batch roots ({', '.join(map(str, roots))})",
            code="forbidden_path",
        )
    return real


def is_under(path: Path, root: Path) -> bool:
    real_root = Path(os.path.realpath(root))
    return path == real_root or real_root in path.parents


def walk_files(folder: Path) -> Iterator[Path]:
    """Every regular file under ``folder``, depth first, sorted by name at each level:
    the same order on every run, so an interrupted expansion can resume by count."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (PermissionError, FileNotFoundError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from walk_files(Path(entry.path))
        elif entry.is_file():
            yield Path(entry.path)


def read_manifest(manifest: Path) -> Iterator[tuple[str, str | None]]:
    """``(path, error)`` for each entry of a manifest: one path per line, or JSON lines
    with a ``path`` field. Relative paths are relative to the manifest's folder; blank
    lines and ``#`` comments are skipped; a line that cannot be read yields an error
    (the item fails, the batch goes on).
    """
    base = manifest.parent
    with manifest.open(encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if text.startswith("{"):
                try:
                    entry = json.loads(text)
                    text = str(entry["path"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    yield f"{manifest}:{lineno}", "a JSON line needs a 'path' field"
                    continue
            p = Path(text)
            yield str(p if p.is_absolute() else base / p), None
