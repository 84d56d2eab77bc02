"""Uploaded bytes, stored once per content under ``root/ab/abcdef...`` (sha256).

Workers receive scan ids and read bytes from here (or from a server-side path), never
through the broker. Writes are atomic (temporary file, then rename), so a reader never
sees half a file and two writers of the same content cannot corrupt it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

_INCOMING = ".incoming-"  # uploads being streamed in, at the store's top level


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


class BlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put_bytes(self, data: bytes) -> tuple[str, bool]:
        """Store ``data`` (hashed once); returns ``(sha256, newly_stored)``."""
        sha = hashlib.sha256(data).hexdigest()
        final = self.path(sha)
        if final.exists():
            os.utime(final)  # fresh again for the retention sweep
            return sha, False
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, final)  # a concurrent writer of the same content wrote the same
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return sha, True

    def put_stream(
        self, chunks: Iterable[bytes], *, check: Callable[[Path], object] | None = None
    ) -> tuple[str, bool, int]:
        """Store the bytes of ``chunks`` without holding them: written to a temporary
        file in the store (hashed on the way), ``check(path)`` run on it, then kept under
        its sha256. An exception from ``chunks`` or ``check`` leaves nothing behind.
        Returns ``(sha256, newly_stored, size)``."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=_INCOMING)
        tmp = Path(name)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if check is not None:
                check(tmp)
            sha = digest.hexdigest()
            final = self.path(sha)
            if final.exists():
                os.utime(final)  # fresh again for the retention sweep
                return sha, False, size
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)  # same file system: atomic
            return sha, True, size
        finally:
            tmp.unlink(missing_ok=True)

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def sweep(self, *, older_than_s: float) -> int:
        """Delete blobs not written for ``older_than_s`` seconds; returns how many."""
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for sub in self.root.iterdir():
            if not sub.is_dir():
                # An upload a crashed process was streaming in (``put_stream``).
                if sub.name.startswith(_INCOMING) and _older(sub, cutoff):
                    sub.unlink(missing_ok=True)
                    removed += 1
                continue
            for blob in sub.iterdir():
                try:
                    if blob.stat().st_mtime < cutoff:
                        blob.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed
