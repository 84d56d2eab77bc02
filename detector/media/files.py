"""Reading media files by size and by head, each failure a ``MediaError``."""

from __future__ import annotations

from pathlib import Path

from detector.media.errors import MediaError


def too_large(n_bytes: int, max_bytes: int) -> MediaError:
    return MediaError("too_large", f"file is {n_bytes:,} bytes; the limit is {max_bytes:,}")


def size_and_head(source: bytes | str | Path, n: int, max_bytes: int) -> tuple[int, bytes]:
    """A file's (or a byte string's) size and first ``n`` bytes, for sniffing its kind.

    A missing file, a directory, one that cannot be read, one over ``max_bytes`` and an
    empty one each raise their ``MediaError``.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        n_bytes, head = len(source), bytes(source[:n])
    else:
        path = Path(source)
        try:
            if path.is_dir():
                raise MediaError("corrupt_media", f"{path} is a directory, not a file")
            n_bytes = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(n)
        except FileNotFoundError:
            raise MediaError("corrupt_media", f"{path}: no such file") from None
        except PermissionError:
            raise MediaError("corrupt_media", f"{path}: permission denied") from None
    if n_bytes > max_bytes:
        raise too_large(n_bytes, max_bytes)
    if n_bytes == 0:
        raise MediaError("empty", "the file is empty (0 bytes)")
    return n_bytes, head


def read_limited(source: bytes | str | Path, max_bytes: int) -> bytes:
    """A whole (small) file's bytes, or the byte string itself, with the same checks as
    :func:`size_and_head`; the size is checked before anything is read."""
    size_and_head(source, 0, max_bytes)
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    try:
        data = Path(source).read_bytes()
    except OSError as exc:  # gone or changed since the check
        raise MediaError("corrupt_media", f"{source}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # grew since the check
        raise too_large(len(data), max_bytes)
    return data
