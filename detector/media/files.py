"""Reading media files by size and by head, each failure a ``MediaError``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from detector.media.errors import MediaError

Source = bytes | bytearray | memoryview | str | Path


def too_large(n_bytes: int, max_bytes: int) -> MediaError:
    return MediaError("too_large", f"file is {n_bytes:,} bytes; the limit is {max_bytes:,}")


def size_and_head(source: Source, n: int, max_bytes: int) -> tuple[int, bytes]:
    """A file's (or a byte string's) size and first ``n`` bytes, for sniffing its kind.

    A missing file, a directory, one that cannot be read, one over ``max_bytes`` and an
    empty one each raise their ``MediaError``.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return _checked(len(source), max_bytes), bytes(source[:n])
    path = Path(source)
    with _os_errors(path):
        n_bytes = _checked(_size(path), max_bytes)
        with path.open("rb") as f:
            return n_bytes, f.read(n)


def read_limited(source: Source, max_bytes: int) -> bytes:
    """A whole (small) file's bytes, or the byte string itself, with the same checks as
    :func:`size_and_head`; the size is checked before anything is read."""
    if isinstance(source, bytes | bytearray | memoryview):
        _checked(len(source), max_bytes)
        return bytes(source)
    path = Path(source)
    with _os_errors(path):
        _checked(_size(path), max_bytes)
        data = path.read_bytes()
    _checked(len(data), max_bytes)  # changed since the check
    return data


def _size(path: Path) -> int:
    if path.is_dir():
        raise MediaError("corrupt_media", f"{path} is a directory, not a file")
    return path.stat().st_size


def _checked(n_bytes: int, max_bytes: int) -> int:
    if n_bytes > max_bytes:
        raise too_large(n_bytes, max_bytes)
    if n_bytes == 0:
        raise MediaError("empty", "the file is empty (0 bytes)")
    return n_bytes


@contextlib.contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise MediaError("corrupt_media", f"{path}: no such file") from None
    except PermissionError:
        raise MediaError("corrupt_media", f"{path}: permission denied") from None
