"""The scans table's state changes: claiming scans for a task, their outcomes, a batch
finishing, and a task that gave up. Every change is one statement guarded by the
scan's status (and owner), so a task delivered twice or a dead worker's leftovers
never finish a scan twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from worker.db import SCANS, Batch, Scan, session_scope, utcnow
from worker.settings import Settings

ACTIVE = ("queued", "running")


@dataclass
class Claimed:
    id: str
    path: str | None
    sha256: str | None
    batch_id: str | None
    queue: str


# Per-scan outcomes, written with one executemany each; only unfinished scans change
# (an IN list cannot be used with executemany, hence the OR).
_scans = SCANS
UNFINISHED = or_(_scans.c.status == "queued", _scans.c.status == "running")
DONE = (
    update(_scans)
    .where(_scans.c.id == bindparam("b_id"), UNFINISHED)
    .values(
        status="done",
        sha256=bindparam("b_sha"),
        result_id=bindparam("b_result"),
        cached=bindparam("b_cached"),
        error_code=None,
        error_message=None,
        finished_at=bindparam("b_now"),
    )
)
# A video this task had no time for: queued again, as it was before the claim.
RELEASED = (
    update(_scans)
    .where(
        _scans.c.id == bindparam("b_id"),
        _scans.c.status == "running",
        _scans.c.owner == bindparam("b_owner"),
    )
    .values(
        status="queued",
        owner=None,
        started_at=None,
        attempts=_scans.c.attempts - 1,
        dispatched_at=bindparam("b_now"),
    )
)
FAILED = (
    update(_scans)
    .where(_scans.c.id == bindparam("b_id"), UNFINISHED)
    .values(
        status="failed",
        sha256=func.coalesce(bindparam("b_sha"), _scans.c.sha256),
        error_code=bindparam("b_code"),
        error_message=bindparam("b_msg"),
        finished_at=bindparam("b_now"),
    )
)


RETURNING = (
    _scans.c.id, _scans.c.path, _scans.c.sha256, _scans.c.batch_id, _scans.c.queue
)  # fmt: skip


def claim(session: Session, scan_ids: list[str], *, owner: str, stale: datetime) -> list[Claimed]:
    """Mark the scans that still need work as running by ``owner``.

    Finished and canceled scans are skipped. A ``running`` scan is claimed again when
    its claim is ours (this task was redelivered after its worker died: a Celery
    redelivery keeps the task id, and this also takes back the waiting uploads the dead
    delivery had gathered), unowned, or older than ``stale``; a running scan that
    another live task gathered into its micro-batch is left to it.
    """
    c = _scans.c
    rows = session.execute(
        update(_scans)
        .where(
            or_(
                and_(
                    c.id.in_(scan_ids),
                    or_(
                        c.status == "queued",
                        and_(
                            c.status == "running",
                            or_(c.owner.is_(None), c.owner == owner, c.started_at < stale),
                        ),
                    ),
                ),
                and_(c.owner == owner, c.status == "running"),
            )
        )
        .values(status="running", owner=owner, started_at=utcnow(), attempts=c.attempts + 1)
        .returning(*RETURNING)
    ).all()
    return [Claimed(r.id, r.path, r.sha256, r.batch_id, r.queue) for r in rows]


def claim_waiting(session: Session, n: int, owner: str) -> list[Claimed]:
    """Micro-batching: also claim up to ``n`` uploads still waiting in the ``scan`` queue,
    oldest first (their own messages will find them taken and skip them)."""
    if n <= 0:
        return []
    c = _scans.c
    waiting = (
        select(c.id)
        .where(c.queue == "scan", c.status == "queued", c.dispatched_at.is_not(None))
        .order_by(c.created_at)
        .limit(n)
    )
    if session.get_bind().dialect.name == "postgresql":
        waiting = waiting.with_for_update(skip_locked=True)  # two workers never wait on each other
    rows = session.execute(
        update(_scans)
        .where(c.id.in_(waiting.scalar_subquery()), c.status == "queued")
        .values(status="running", owner=owner, started_at=utcnow(), attempts=c.attempts + 1)
        .returning(*RETURNING)
    ).all()
    return [Claimed(r.id, r.path, r.sha256, r.batch_id, r.queue) for r in rows]


def finish_batches(session: Session, batch_ids: set[str]) -> None:
    """Mark running batches with no queued or running item as done."""
    for batch_id in batch_ids:
        remaining = session.scalar(
            select(func.count())
            .select_from(Scan)
            .where(Scan.batch_id == batch_id, Scan.status.in_(ACTIVE))
        )
        if remaining == 0:
            session.execute(
                update(Batch)
                .where(Batch.id == batch_id, Batch.status == "running")
                .values(status="done", finished_at=utcnow())
            )


def mark_crashed(
    scan_ids: list[str], *, settings: Settings, message: str, owner: str | None = None
) -> None:
    """A task gave up (time limit, unexpected error): fail its unfinished scans, and the
    waiting uploads it had gathered (claimed by ``owner``), once."""
    mine = (
        Scan.id.in_(scan_ids) if owner is None else or_(Scan.id.in_(scan_ids), Scan.owner == owner)
    )
    with session_scope(settings.sqlalchemy_url) as session:
        batch_ids = set(
            session.scalars(select(Scan.batch_id).where(mine, Scan.status.in_(ACTIVE))).all()
        )
        session.execute(
            update(Scan)
            .where(mine, Scan.status.in_(ACTIVE))
            .values(
                status="failed",
                error_code="internal_error",
                error_message=message,
                finished_at=utcnow(),
            )
        )
        finish_batches(session, {b for b in batch_ids if b})
