"""Accepting work: uploads and batches become rows, bytes go to the blob store, and ids
go to the dispatcher (after the rows are committed, so a worker always finds them).

A repeated upload of content already scored by the active model is answered from the
stored result at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from detector.media import MediaError
from worker.db import SCANS, Batch, Scan, Tenant, new_id, scan_row, session_scope, utcnow
from worker.dispatch import Dispatcher, send_in_chunks
from worker.errors import InvalidRequest, NotFound
from worker.media import HEAD_BYTES, check_upload, media_kind, no_model_error
from worker.paths import resolve_under_roots
from worker.runtime import active_models
from worker.scan_state import finish_batches
from worker.scanning import stored_results
from worker.settings import Settings
from worker.storage import BlobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    filename: str
    stream: BinaryIO


def tenant_id_for(name: str, *, settings: Settings) -> int:
    """The id of tenant ``name``, created on first use."""
    with session_scope(settings.sqlalchemy_url) as session:
        tenant = session.scalar(select(Tenant).where(Tenant.name == name))
        if tenant is None:
            tenant = Tenant(name=name)
            session.add(tenant)
            session.flush()
        return tenant.id


_CHUNK = 1 << 20


def _store(upload: Upload, settings: Settings, store: BlobStore) -> tuple[str, int]:
    """Check the header, then store the bytes; a rejected upload is never stored.

    Images and recordings are read whole, at most one byte over ``max_upload_bytes``: a
    file in a large batch request that is over it is refused without being read whole.
    A video is streamed to disk (up to ``max_video_upload_bytes``) and probed there:
    its index may come last, and it may be gigabytes.
    """
    head = upload.stream.read(HEAD_BYTES)
    models = active_models(settings)
    if media_kind(head) == "video":
        if "video" not in models:  # refused before the rest is read
            raise no_model_error("video")
        sha, _new, size = store.put_stream(
            _limited(head, upload.stream, settings.max_video_upload_bytes),
            check=lambda path: check_upload(path, settings, models),
        )
        return sha, size
    limit = settings.max_upload_bytes
    data = head + upload.stream.read(max(0, limit + 1 - len(head)))
    if len(data) > limit:
        raise MediaError("too_large", f"the file is over the limit of {limit:,} bytes")
    check_upload(data, settings, models)  # also refuses 0 bytes
    sha, _ = store.put_bytes(data)
    return sha, len(data)


def _limited(head: bytes, stream: BinaryIO, limit: int) -> Iterator[bytes]:
    """``head``, then the rest of ``stream`` in chunks; ``too_large`` past ``limit``."""
    size = len(head)
    yield head
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        size += len(chunk)
        if size > limit:
            raise MediaError("too_large", f"the video is over the limit of {limit:,} bytes")
        yield chunk


def _dispatch(dispatcher: Dispatcher, ids: list[str], queue: str, chunk: int) -> None:
    try:
        send_in_chunks(dispatcher, ids, queue, chunk)
    except Exception:  # the broker is down: the rows stay queued and the janitor resends
        log.warning("could not enqueue %d scans; the janitor will retry", len(ids), exc_info=True)


def _answer_from_stored(session: Session, rows: list[dict[str, Any]], settings: Settings) -> None:
    """Queued rows whose content an active model has scored become done, from that result
    (a content is an image or a recording, so at most one of the models has a result)."""
    queued = [r for r in rows if r["status"] == "queued"]
    stored = stored_results(session, {r["sha256"] for r in queued}, active_models(settings))
    for r in queued:
        if r["sha256"] in stored:
            r |= {"status": "done", "result_id": stored[r["sha256"]], "cached": True}
            r |= {"dispatched_at": None, "started_at": r["created_at"]}
            r["finished_at"] = r["created_at"]


def submit_upload(
    upload: Upload,
    *,
    tenant_id: int,
    settings: Settings,
    dispatcher: Dispatcher,
    scan_id: str | None = None,
) -> tuple[str, str]:
    """Store one upload and queue it (or answer it from a stored result).

    Returns the scan id and its status: ``queued``, or ``done`` when answered at once.

    Raises :class:`MediaError` for content the service cannot take (empty, not a
    supported image or recording, too many pixels, too long, a header that does not parse).
    """
    sha, _ = _store(upload, settings, BlobStore(settings.blob_dir))
    row = scan_row(tenant_id=tenant_id, filename=upload.filename, sha256=sha, queue="scan")
    if scan_id is not None:  # chosen by the caller, to wait for it before it is sent
        row["id"] = scan_id
    with session_scope(settings.sqlalchemy_url) as session:
        _answer_from_stored(session, [row], settings)
        session.execute(insert(SCANS), [row])
    if row["status"] == "queued":
        _dispatch(dispatcher, [row["id"]], "scan", 1)
    return row["id"], row["status"]


def submit_upload_batch(
    uploads: list[Upload], *, tenant_id: int, settings: Settings, dispatcher: Dispatcher
) -> str:
    """A batch of uploaded files. A file the service cannot take becomes a failed item."""
    if not uploads:
        raise InvalidRequest("a batch needs at least one file", code="empty_batch")
    if len(uploads) > settings.max_batch_files:
        raise InvalidRequest(
            f"{len(uploads):,} files in one request; the limit is {settings.max_batch_files:,} "
            "(use a server-side folder or manifest for more)",
            code="too_large",
        )
    store = BlobStore(settings.blob_dir)
    batch_id = new_id()
    rows: list[dict[str, Any]] = []
    for position, upload in enumerate(uploads):
        row = scan_row(tenant_id=tenant_id, filename=upload.filename, queue="batch",
                       batch_id=batch_id, position=position)  # fmt: skip
        try:
            row["sha256"], _ = _store(upload, settings, store)
        except MediaError as exc:
            row |= {"status": "failed", "error_code": exc.code, "error_message": exc.message}
            row |= {"dispatched_at": None, "finished_at": row["created_at"]}
        rows.append(row)
    with session_scope(settings.sqlalchemy_url) as session:
        session.add(
            Batch(
                id=batch_id,
                tenant_id=tenant_id,
                source_kind="upload",
                status="running",
                expanded=True,
                total=len(rows),
            )
        )
        session.flush()
        _answer_from_stored(session, rows, settings)
        session.execute(insert(SCANS), rows)
        finish_batches(session, {batch_id})
    queued = [r["id"] for r in rows if r["status"] == "queued"]
    _dispatch(dispatcher, queued, "batch", settings.chunk_size)
    return batch_id


def submit_path_batch(
    *,
    directory: str | None,
    manifest: str | None,
    tenant_id: int,
    settings: Settings,
    dispatcher: Dispatcher,
) -> str:
    """A batch over a server-side folder or manifest file (under the batch roots)."""
    if (directory is None) == (manifest is None):
        raise InvalidRequest("give exactly one of 'directory' and 'manifest'")
    raw = directory if directory is not None else manifest
    assert raw is not None
    path = resolve_under_roots(raw, settings.batch_roots)
    if directory is not None and not path.is_dir():
        raise InvalidRequest(f"{raw!r} is not a folder", code="not_found")
    if manifest is not None and not path.is_file():
        raise InvalidRequest(f"{raw!r} is not a file", code="not_found")
    with session_scope(settings.sqlalchemy_url) as session:
        batch = Batch(
            tenant_id=tenant_id,
            source_kind="directory" if directory is not None else "manifest",
            source=str(path),
            status="expanding",
            dispatched_at=utcnow(),
        )
        session.add(batch)
        session.flush()
        batch_id = batch.id
    try:
        dispatcher.send_expand(batch_id)
    except Exception:
        log.warning("could not enqueue batch %s; the janitor will retry", batch_id, exc_info=True)
    return batch_id


def get_scan(scan_id: str, *, tenant_id: int, settings: Settings) -> Scan:
    """The scan if it belongs to the tenant; another tenant's id is simply not found."""
    with session_scope(settings.sqlalchemy_url) as session:
        scan = session.get(Scan, scan_id)
        if scan is None or scan.tenant_id != tenant_id:
            raise NotFound(f"no scan {scan_id!r}")
        return scan


def get_batch(batch_id: str, *, tenant_id: int, settings: Settings) -> Batch:
    with session_scope(settings.sqlalchemy_url) as session:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.tenant_id != tenant_id:
            raise NotFound(f"no batch {batch_id!r}")
        return batch


def recent_scans(*, tenant_id: int, settings: Settings, limit: int = 20) -> list[Scan]:
    with session_scope(settings.sqlalchemy_url) as session:
        return list(
            session.scalars(
                select(Scan)
                .where(Scan.tenant_id == tenant_id)
                .order_by(Scan.created_at.desc())
                .limit(limit)
            )
        )
