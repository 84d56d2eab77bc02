"""Typed media errors: every user-caused failure has a code and a human message."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

ErrorCode = Literal["unsupported_media", "corrupt_media", "too_large", "too_long", "empty"]
ERROR_CODES: tuple[ErrorCode, ...] = (
    "unsupported_media",
    "corrupt_media",
    "too_large",
    "too_long",
    "empty",
)


class MediaError(ValueError):
    """A file that cannot be used, with a stable ``code`` for APIs and reports."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown media error code {code!r}; valid codes: {ERROR_CODES}")
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


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
