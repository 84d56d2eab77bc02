"""Accepting work: uploads and batches become rows, bytes go to the blob store, and ids
go to the dispatcher (after the rows are committed, so a worker always finds them).

A repeated upload of content already scored by the active model is answered from the
stored result at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from detector.media import ImageLimits, MediaError, probe_image
from worker.db import SCANS, Batch, Result, Scan, Tenant, new_id, session_scope, utcnow
from worker.dispatch import Dispatcher, send_in_chunks
from worker.errors import InvalidRequest, NotFound
from worker.paths import resolve_under_roots
from worker.runtime import active_models
from worker.scanning import finish_batches
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


def _store(upload: Upload, settings: Settings, store: BlobStore) -> tuple[str, int]:
    """Check the header, then store the bytes; a rejected upload is never stored.

    Reads at most one byte over the limit: a file in a large batch request that is
    over it is refused without being read whole.
    """
    limit = settings.max_upload_bytes
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise MediaError("too_large", f"the file is over the limit of {limit:,} bytes")
    probe_image(data, limits=ImageLimits(max_bytes=limit))  # also refuses 0 bytes
    sha, _ = store.put_bytes(data)
    return sha, len(data)


def _dispatch(dispatcher: Dispatcher, ids: list[str], queue: str, chunk: int) -> None:
    try:
        send_in_chunks(dispatcher, ids, queue, chunk)
    except Exception:  # the broker is down: the rows stay queued and the janitor resends
        log.warning("could not enqueue %d scans; the janitor will retry", len(ids), exc_info=True)


def submit_upload(
    upload: Upload, *, tenant_id: int, settings: Settings, dispatcher: Dispatcher
) -> tuple[str, str]:
    """Store one upload and queue it (or answer it from a stored result).

    Returns the scan id and its status: ``queued``, or ``done`` when answered at once.

    Raises :class:`MediaError` for content the service cannot take (empty, not a
    supported image, too many pixels, a header that does not parse).
    """
    store = BlobStore(settings.blob_dir)
    sha, _ = _store(upload, settings, store)
    model = active_models(settings)["image"]
    now = utcnow()
    scan_id = new_id()
    row = {
        "id": scan_id, "tenant_id": tenant_id, "filename": upload.filename, "sha256": sha,
        "queue": "scan", "status": "queued", "cached": False, "attempts": 0,
        "created_at": now, "dispatched_at": now,
    }  # fmt: skip
    with session_scope(settings.sqlalchemy_url) as session:
        # One lookup and one insert, without ORM objects: this is every upload's path.
        result_id = session.scalar(
            select(Result.id).where(
                Result.sha256 == sha,
                Result.model_name == model.name,
                Result.model_version == model.version,
            )
        )
        if result_id is not None:
            row |= {"status": "done", "result_id": result_id, "cached": True}
            row |= {"dispatched_at": None, "started_at": now, "finished_at": now}
        session.execute(insert(SCANS), [row])  # Core: no ORM bookkeeping
    status = str(row["status"])
    if status == "queued":
        _dispatch(dispatcher, [scan_id], "scan", 1)
    return scan_id, status


def _answer_or_queue(session: Session, scan: Scan, model_name: str, model_version: str) -> None:
    now = utcnow()
    scan.created_at = now
    result = session.scalar(
        select(Result).where(
            Result.sha256 == scan.sha256,
            Result.model_name == model_name,
            Result.model_version == model_version,
        )
    )
    if result is not None:
        scan.status, scan.result_id, scan.cached = "done", result.id, True
        scan.started_at = scan.finished_at = now
    else:
        scan.status, scan.dispatched_at = "queued", now


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
    model = active_models(settings)["image"]
    scans: list[Scan] = []
    batch = Batch(tenant_id=tenant_id, source_kind="upload", status="running", expanded=True)
    for position, upload in enumerate(uploads):
        scan = Scan(tenant_id=tenant_id, filename=upload.filename, position=position, queue="batch")
        try:
            scan.sha256, _ = _store(upload, settings, store)
        except MediaError as exc:
            scan.status, scan.error_code, scan.error_message = "failed", exc.code, exc.message
            scan.created_at = scan.finished_at = utcnow()
        scans.append(scan)
    with session_scope(settings.sqlalchemy_url) as session:
        batch.total = len(scans)
        session.add(batch)
        session.flush()
        for scan in scans:
            scan.batch_id = batch.id
            if scan.status != "failed":
                _answer_or_queue(session, scan, model.name, model.version)
        session.add_all(scans)
        session.flush()
        finish_batches(session, {batch.id})
        batch_id = batch.id
        queued = [s.id for s in scans if s.status == "queued"]
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
