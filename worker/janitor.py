"""Nothing lost: the database says what is left to do, and the janitor makes sure it is
on its way.

- A queued scan whose message is gone (a broker restarted without persistence, an
  embedded server restarted) is sent again once its queue is empty and it has waited
  ``redispatch_after_s``.
- A running scan whose worker vanished without the broker noticing is sent again after
  the hard time limit.
- A batch still expanding after ``redispatch_after_s`` with its queue empty has its
  (idempotent) expansion sent again.
- Uploaded bytes past the retention period are deleted.

Sending twice is safe: a task skips finished scans and results are written once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from worker.db import Batch, Scan, session_scope, utcnow
from worker.dispatch import Dispatcher, send_in_chunks
from worker.settings import Settings
from worker.storage import BlobStore

log = logging.getLogger(__name__)

_PAGE = 5000
_RETENTION_EVERY_S = 3600.0  # walking the blob store is not free


@dataclass
class SweepReport:
    requeued: int = 0
    reclaimed: int = 0
    expansions: int = 0
    blobs_removed: int = 0


def sweep(
    settings: Settings, dispatcher: Dispatcher, *, startup: bool = False, retention: bool = False
) -> SweepReport:
    """One pass. ``startup``: this process's pool was just made, so nothing it had is queued.
    ``retention``: also delete uploaded bytes past the retention period."""
    report = SweepReport()
    now = utcnow()
    stale = now - timedelta(seconds=settings.redispatch_after_s)
    lost_running = now - timedelta(seconds=settings.hard_time_limit_s + 30)
    url = settings.sqlalchemy_url
    for queue in ("scan", "batch"):
        if not startup and dispatcher.pending(queue) > 0:
            continue  # messages are still waiting: these scans may be among them
        with session_scope(url) as session:
            cond = Scan.dispatched_at < stale if not startup else Scan.dispatched_at.is_not(None)
            ids = list(
                session.scalars(
                    select(Scan.id)
                    .where(Scan.queue == queue, Scan.status == "queued", cond)
                    .order_by(Scan.created_at)
                    .limit(_PAGE)
                )
            )
            if ids:
                session.execute(update(Scan).where(Scan.id.in_(ids)).values(dispatched_at=now))
        send_in_chunks(dispatcher, ids, queue, 1 if queue == "scan" else settings.chunk_size)
        report.requeued += len(ids)
    with session_scope(url) as session:
        cond = Scan.started_at < lost_running if not startup else Scan.started_at.is_not(None)
        rows = session.execute(
            select(Scan.id, Scan.queue).where(Scan.status == "running", cond).limit(_PAGE)
        ).all()
        if rows:
            session.execute(
                update(Scan)
                .where(Scan.id.in_([r.id for r in rows]), Scan.status == "running")
                .values(status="queued", dispatched_at=now)
            )
    for queue in ("scan", "batch"):
        ids = [r.id for r in rows if r.queue == queue]
        send_in_chunks(dispatcher, ids, queue, 1 if queue == "scan" else settings.chunk_size)
        report.reclaimed += len(ids)
    if startup or dispatcher.pending("batch") == 0:
        with session_scope(url) as session:
            cond = Batch.dispatched_at < stale if not startup else Batch.id.is_not(None)
            batch_ids = list(
                session.scalars(select(Batch.id).where(Batch.status == "expanding", cond))
            )
            if batch_ids:
                session.execute(
                    update(Batch).where(Batch.id.in_(batch_ids)).values(dispatched_at=now)
                )
        for batch_id in batch_ids:
            dispatcher.send_expand(batch_id)
        report.expansions = len(batch_ids)
    if retention and settings.retention_days > 0:
        report.blobs_removed = BlobStore(settings.blob_dir).sweep(
            older_than_s=settings.retention_days * 86400
        )
    return report


class Janitor:
    """Runs :func:`sweep` every ``janitor_interval_s`` in a daemon thread."""

    def __init__(self, settings: Settings, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="synthguard-janitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        first = True
        last_retention = 0.0
        while not self._stop.is_set():
            try:
                retention = time.monotonic() - last_retention > _RETENTION_EVERY_S
                report = sweep(
                    self.settings,
                    self.dispatcher,
                    startup=first and self.settings.embedded,
                    retention=retention,
                )
                if retention:
                    last_retention = time.monotonic()
                if report.requeued or report.reclaimed or report.expansions:
                    log.warning("janitor resent work: %s", report)
            except Exception:  # a database or broker outage: try again next round
                log.warning("janitor pass failed", exc_info=True)
            first = False
            self._stop.wait(self.settings.janitor_interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
