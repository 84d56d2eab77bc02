"""The task functions: the same code runs in a Celery worker and in the embedded pool.

Each is a thin wrapper over a library function that records its own failures, so a
task that gives up leaves its scans failed with a message rather than stuck.
"""

from __future__ import annotations

import logging

from worker.batches import expand_batch
from worker.db import new_id
from worker.dispatch import Dispatcher
from worker.scanning import ProcessReport, mark_crashed, process_scans
from worker.settings import Settings

log = logging.getLogger(__name__)


def run_process_scans(
    scan_ids: list[str], *, settings: Settings, owner: str | None = None
) -> ProcessReport:
    """``owner``: the task's id (Celery keeps it when it redelivers a message)."""
    owner = owner or new_id()
    try:
        return process_scans(scan_ids, settings=settings, owner=owner)
    except Exception as exc:
        log.exception("scoring %d scans failed", len(scan_ids))
        mark_crashed(
            scan_ids, settings=settings, message=f"{type(exc).__name__}: {exc}", owner=owner
        )
        raise


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
