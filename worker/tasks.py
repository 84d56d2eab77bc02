"""The task functions: the same code runs in a Celery worker and in the embedded pool.

Each is a thin wrapper over a library function that records its own failures, so a
task that gives up leaves its scans failed with a message rather than stuck.
"""

from __future__ import annotations

import logging

from worker.batches import expand_batch
from worker.db import new_id
from worker.dispatch import Dispatcher, send_in_chunks
from worker.scan_state import mark_crashed
from worker.scanning import ProcessReport, process_scans
from worker.settings import Settings

log = logging.getLogger(__name__)


def run_process_scans(
    scan_ids: list[str],
    *,
    settings: Settings,
    owner: str | None = None,
    dispatcher: Dispatcher | None = None,
) -> ProcessReport:
    """``owner``: the task's id (Celery keeps it when it redelivers a message). The videos
    the task had no time for are sent again through ``dispatcher`` (default: the
    worker's broker), one per message."""
    owner = owner or new_id()
    try:
        report = process_scans(scan_ids, settings=settings, owner=owner)
    except Exception as exc:
        log.exception("scoring %d scans failed", len(scan_ids))
        mark_crashed(
            scan_ids, settings=settings, message=f"{type(exc).__name__}: {exc}", owner=owner
        )
        raise
    for queue, ids in report.released.items():
        try:
            send_in_chunks(dispatcher or _dispatcher(settings), ids, queue, 1)
        except Exception:  # they are queued in the database: the janitor sends them later
            log.warning("could not send %d videos again", len(ids), exc_info=True)
    return report


def run_expand_batch(
    batch_id: str, *, settings: Settings, dispatcher: Dispatcher | None = None
) -> int:
    return expand_batch(batch_id, settings=settings, dispatcher=dispatcher or _dispatcher(settings))


_dispatcher_: Dispatcher | None = None


def _dispatcher(settings: Settings) -> Dispatcher:
    """In a worker, expansion sends the items it adds through the same broker."""
    global _dispatcher_
    if _dispatcher_ is None:
        from worker.dispatch import make_dispatcher

        _dispatcher_ = make_dispatcher(settings)
    return _dispatcher_
