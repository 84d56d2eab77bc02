"""The blob store: content-addressed, atomic writes, streamed writes that can be refused."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.media import MediaError
from worker.storage import BlobStore


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_stream_keeps_the_bytes_under_their_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    chunks = [b"abc" * 1000, b"", b"def" * 10]
    seen: list[bytes] = []
    sha, new, size = store.put_stream(iter(chunks), check=lambda p: seen.append(p.read_bytes()))
    data = b"".join(chunks)
    assert (sha, new, size) == (hashlib.sha256(data).hexdigest(), True, len(data))
    assert seen == [data]  # checked on disk, before it was kept
    assert store.read(sha) == data and _files(store.root) == [store.path(sha)]
    # The same content again: kept once.
    assert store.put_stream(iter([data])) == (sha, False, len(data))
    assert store.put_bytes(data) == (sha, False)
    assert _files(store.root) == [store.path(sha)]


def test_a_refused_stream_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")

    def too_long() -> Iterator[bytes]:
        yield b"x" * 100
        raise MediaError("too_large", "over the limit")

    with pytest.raises(MediaError, match="over the limit"):
        store.put_stream(too_long())

    def refuse(path: Path) -> None:
        assert path.stat().st_size == 3
        raise MediaError("corrupt_media", "not a video")

    with pytest.raises(MediaError, match="not a video"):
        store.put_stream(iter([b"abc"]), check=refuse)
    assert _files(store.root) == []


def test_the_sweep_removes_old_blobs_and_abandoned_uploads(tmp_path: Path) -> None:
    import os
    import time

    store = BlobStore(tmp_path / "blobs")
    old, _ = store.put_bytes(b"old")
    new, _ = store.put_bytes(b"new")
    abandoned = store.root / ".incoming-crashed"  # a process died while streaming
    abandoned.write_bytes(b"half a video")
    recent = store.root / ".incoming-running"  # one still streaming
    recent.write_bytes(b"a video arriving")
    past = time.time() - 3600
    for path in (store.path(old), abandoned):
        os.utime(path, (past, past))
    assert store.sweep(older_than_s=60) == 2
    assert _files(store.root) == sorted([store.path(new), recent])
