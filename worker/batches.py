"""Batches: expanding a server-side folder or manifest into items, progress, cancel and
resume, and the rows of a batch's report."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, func, insert, select, update

from worker.contract import scan_view
from worker.db import SCANS, Batch, Scan, scan_row, session_scope, utcnow
from worker.dispatch import Dispatcher, send_in_chunks
from worker.paths import is_under, read_manifest, walk_files
from worker.scan_state import finish_batches
from worker.settings import Settings

_INSERT_CHUNK = 1000


def _entries(batch: Batch) -> Iterator[tuple[str, str | None]]:
    assert batch.source is not None
    source = Path(batch.source)
    if batch.source_kind == "directory":
        for path in walk_files(source):
            yield str(path), None
    else:
        yield from read_manifest(source)


def expand_batch(batch_id: str, *, settings: Settings, dispatcher: Dispatcher) -> int:
    """Add a server-side batch's items and send them to the ``batch`` queue.

    Idempotent: the walk order is fixed, so a second run (after a worker died) skips
    the items already added. Returns the number of items added by this call.
    """
    url = settings.sqlalchemy_url
    with session_scope(url) as session:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.status != "expanding":
            return 0
        have = session.scalar(
            select(func.count()).select_from(Scan).where(Scan.batch_id == batch_id)
        )
        tenant_id = batch.tenant_id
        entries = _entries(batch)
    position = 0
    added = 0
    pending: list[dict[str, Any]] = []
    # Small first inserts, so workers start while the walk goes on; then larger ones.
    flush_at = 4 * settings.chunk_size

    def flush() -> bool:
        nonlocal pending, flush_at
        if not pending:
            return True
        with session_scope(url) as session:
            status = session.scalar(select(Batch.status).where(Batch.id == batch_id))
            if status != "expanding":  # canceled meanwhile
                return False
            session.execute(insert(SCANS), pending)  # Core: no ORM bookkeeping
            session.execute(
                update(Batch).where(Batch.id == batch_id).values(total=Batch.total + len(pending))
            )
        queued = [row["id"] for row in pending if row["status"] == "queued"]
        send_in_chunks(dispatcher, queued, "batch", settings.chunk_size)
        pending = []
        flush_at = min(_INSERT_CHUNK, flush_at * 4)
        return True

    over_limit = False
    for raw, error in entries:
        if position >= settings.max_batch_items:
            over_limit = True
            break
        if position < (have or 0):
            position += 1
            continue
        pending.append(_item(batch_id, tenant_id, position, raw, error, settings))
        position += 1
        added += 1
        if len(pending) >= flush_at and not flush():
            return added
    if not flush():
        return added
    with session_scope(url) as session:
        values: dict[str, Any] = {"status": "running", "expanded": True}
        if over_limit:
            values |= {
                "error_code": "too_large",
                "error_message": f"the batch stops at {settings.max_batch_items:,} items "
                "(SYNTHGUARD_MAX_BATCH_ITEMS); the rest were not added",
            }
        session.execute(
            update(Batch).where(Batch.id == batch_id, Batch.status == "expanding").values(**values)
        )
        finish_batches(session, {batch_id})
    return added


def _item(
    batch_id: str, tenant_id: int, position: int, raw: str, error: str | None, settings: Settings
) -> dict[str, Any]:
    """The scans row of one entry."""
    row = scan_row(
        batch_id=batch_id, tenant_id=tenant_id, position=position, filename=raw, queue="batch"
    )
    now = row["created_at"]
    if error is not None:
        row |= {"status": "failed", "error_code": "bad_manifest", "error_message": error}
        row["finished_at"] = now
        return row
    real = Path(os.path.realpath(raw))
    if not any(is_under(real, root) for root in settings.batch_roots):
        row |= {"status": "failed", "error_code": "forbidden_path"}
        row |= {"error_message": f"{raw} is outside the batch roots", "finished_at": now}
        return row
    row["path"] = str(real)
    return row


def batch_counts(batch_id: str, *, settings: Settings) -> dict[str, int]:
    with session_scope(settings.sqlalchemy_url) as session:
        rows = session.execute(
            select(Scan.status, func.count()).where(Scan.batch_id == batch_id).group_by(Scan.status)
        ).all()
    counts = dict.fromkeys(("queued", "running", "done", "failed", "canceled"), 0)
    counts.update({status: int(n) for status, n in rows})
    return counts


def cancel_batch(batch_id: str, *, settings: Settings) -> int:
    """Stop a batch: queued items become canceled (running ones finish). Returns how many."""
    with session_scope(settings.sqlalchemy_url) as session:
        result = session.execute(
            update(Scan)
            .where(Scan.batch_id == batch_id, Scan.status == "queued")
            .values(status="canceled", finished_at=utcnow())
        )
        n = cast(CursorResult[Any], result).rowcount
        session.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status.in_(("expanding", "running")))
            .values(status="canceled", finished_at=utcnow())
        )
    return int(n or 0)


def resume_batch(batch_id: str, *, settings: Settings, dispatcher: Dispatcher) -> int:
    """Queue a canceled batch's canceled items again (and finish its expansion)."""
    url = settings.sqlalchemy_url
    with session_scope(url) as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        expanding = not batch.expanded
        ids = list(
            session.scalars(
                select(Scan.id)
                .where(Scan.batch_id == batch_id, Scan.status == "canceled")
                .order_by(Scan.position)
            )
        )
        now = utcnow()
        session.execute(
            update(Scan)
            .where(Scan.id.in_(ids))
            .values(status="queued", finished_at=None, dispatched_at=now)
        )
        batch.status = "expanding" if expanding else "running"
        batch.finished_at = None
        batch.dispatched_at = now
    send_in_chunks(dispatcher, ids, "batch", settings.chunk_size)
    if expanding:
        dispatcher.send_expand(batch_id)
    else:
        with session_scope(url) as session:
            finish_batches(session, {batch_id})
    return len(ids)


def iter_batch_rows(
    batch_id: str, *, settings: Settings, after: int = -1, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """The batch's items in position order, as result-contract dicts, read page by page."""
    page = 500
    sent = 0
    while limit is None or sent < limit:
        take = page if limit is None else min(page, limit - sent)
        with session_scope(settings.sqlalchemy_url) as session:
            scans = list(
                session.scalars(
                    select(Scan)
                    .where(Scan.batch_id == batch_id, Scan.position > after)
                    .order_by(Scan.position)
                    .limit(take)
                )
            )
            rows = [scan_view(s) for s in scans]
        if not rows:
            return
        yield from rows
        sent += len(rows)
        after = scans[-1].position or 0
        if len(rows) < take:
            return
