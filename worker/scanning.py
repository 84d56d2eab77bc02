"""Score queued scans: the function behind the ``scan`` and ``batch`` tasks.

``process_scans(ids)`` claims the scans that still need work, reads their bytes (blob
store or server-side path), answers repeated content from stored results, scores the
rest as one micro-batch, and writes each result once: results are keyed by (sha256,
model name, model version), so a task delivered twice, or two scans of the same file,
write one row. A bad file fails its own scan; it never fails the task.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from detector.identity import ModelIdentity
from detector.inference.detector import ScoreResult
from detector.media import ImageLimits
from worker.db import Batch, Result, Scan, session_scope, utcnow
from worker.runtime import active_models, get_runtime
from worker.settings import Settings
from worker.storage import BlobStore

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")


@dataclass
class ProcessReport:
    claimed: int = 0
    scored: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0  # already finished or canceled: a redelivered task
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class _Claimed:
    id: str
    path: str | None
    sha256: str | None
    batch_id: str | None


@dataclass
class _Item:
    scan_id: str
    data: bytes
    sha256: str


class ItemError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def process_scans(scan_ids: list[str], *, settings: Settings) -> ProcessReport:
    """Claim, read, answer from stored results, score the rest as one batch, write.

    Two or three short transactions whatever the number of items (claim and look up
    stored results; for server-side files, look up by the hash just computed; write
    results, scan states and batch completion), so many worker processes can share
    one database.
    """
    report = ProcessReport()
    url = settings.sqlalchemy_url
    model = active_models(settings)["image"]
    with session_scope(url) as session:
        claimed = _claim(session, scan_ids)
        # Uploads carry their sha256: look their results up in the same transaction.
        known = {c.sha256 for c in claimed if c.sha256}
        stored = _stored_results(session, known, model)
    report.claimed = len(claimed)
    report.skipped = len(scan_ids) - len(claimed)
    if not claimed:
        return report
    store = BlobStore(settings.blob_dir)
    limits = ImageLimits(max_bytes=settings.max_upload_bytes)
    items: list[_Item] = []
    failed: list[tuple[str, str | None, str, str]] = []  # scan id, sha256, code, message
    for c in claimed:
        try:
            items.append(_read(c, store, limits))
        except ItemError as exc:
            failed.append((c.id, c.sha256, exc.code, exc.message))
    unknown = {it.sha256 for it in items} - known  # server-side files, hashed just now
    if unknown:
        with session_scope(url) as session:
            stored |= _stored_results(session, unknown, model)
    # Each new content is scored once, however many scans in the chunk carry it.
    new: dict[str, _Item] = {}
    for it in items:
        if it.sha256 not in stored:
            new.setdefault(it.sha256, it)
    scored: dict[str, ScoreResult] = {}
    if new:
        detector = get_runtime(settings).image
        if (detector.name, detector.version) != (model.name, model.version):
            raise RuntimeError(
                f"loaded model {detector.name} {detector.version} is not the active one "
                f"{model.name} {model.version}; restart the worker"
            )
        firsts = list(new.values())
        scored = dict(zip(new, detector.score([it.data for it in firsts]), strict=True))
    with session_scope(url) as session:
        rows = [_result_row(sha, res, model) for sha, res in scored.items() if res.error is None]
        stored |= _insert_results(session, rows, model)
        done: list[dict[str, Any]] = []
        now = utcnow()
        for it in items:
            res = scored.get(it.sha256)
            if res is not None and res.error is not None:
                failed.append((it.scan_id, it.sha256, res.error["code"], res.error["message"]))
                continue
            done.append(
                {
                    "b_id": it.scan_id,
                    "b_sha": it.sha256,
                    "b_result": stored[it.sha256],
                    "b_cached": res is None,
                    "b_now": now,
                }
            )
        if done:
            session.execute(_DONE, done)
        if failed:
            session.execute(
                _FAILED,
                [
                    {"b_id": i, "b_sha": sha, "b_code": code, "b_msg": msg, "b_now": now}
                    for i, sha, code, msg in failed
                ],
            )
        finish_batches(session, {c.batch_id for c in claimed if c.batch_id})
    report.scored = sum(
        1 for it in items if it.sha256 in scored and scored[it.sha256].error is None
    )
    report.cached = len(done) - report.scored
    report.failed = len(failed)
    for *_, code, _msg in failed:
        report.errors[code] = report.errors.get(code, 0) + 1
    return report


# Per-scan outcomes, written with one executemany each; only unfinished scans change
# (an IN list cannot be used with executemany, hence the OR).
_scans = cast(Table, Scan.__table__)
_UNFINISHED = or_(_scans.c.status == "queued", _scans.c.status == "running")
_DONE = (
    update(_scans)
    .where(_scans.c.id == bindparam("b_id"), _UNFINISHED)
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
_FAILED = (
    update(_scans)
    .where(_scans.c.id == bindparam("b_id"), _UNFINISHED)
    .values(
        status="failed",
        sha256=func.coalesce(bindparam("b_sha"), _scans.c.sha256),
        error_code=bindparam("b_code"),
        error_message=bindparam("b_msg"),
        finished_at=bindparam("b_now"),
    )
)


def _claim(session: Session, scan_ids: list[str]) -> list[_Claimed]:
    """Mark the scans that still need work as running; others (done, canceled) are skipped.

    A scan already ``running`` is claimed again: its earlier task died with its worker.
    """
    rows = session.execute(
        update(_scans)
        .where(_scans.c.id.in_(scan_ids), _scans.c.status.in_(ACTIVE))
        .values(status="running", started_at=utcnow(), attempts=_scans.c.attempts + 1)
        .returning(_scans.c.id, _scans.c.path, _scans.c.sha256, _scans.c.batch_id)
    ).all()
    return [_Claimed(r.id, r.path, r.sha256, r.batch_id) for r in rows]


def _read(scan: _Claimed, store: BlobStore, limits: ImageLimits) -> _Item:
    if scan.path is not None:
        path = Path(scan.path)
        try:
            size = path.stat().st_size
            if size > limits.max_bytes:
                raise ItemError(
                    "too_large", f"file is {size:,} bytes; the limit is {limits.max_bytes:,}"
                )
            data = path.read_bytes()
        except FileNotFoundError:
            raise ItemError("not_found", f"{path}: no such file") from None
        except IsADirectoryError:
            raise ItemError("unsupported_media", f"{path} is a directory") from None
        except PermissionError:
            raise ItemError("not_found", f"{path}: permission denied") from None
        return _Item(scan.id, data, hashlib.sha256(data).hexdigest())
    assert scan.sha256 is not None, "an uploaded scan always has its sha256"
    try:
        data = store.read(scan.sha256)
    except FileNotFoundError:
        raise ItemError(
            "expired", "the uploaded bytes are gone (removed by the retention setting)"
        ) from None
    return _Item(scan.id, data, scan.sha256)


def _stored_results(session: Session, shas: set[str], model: ModelIdentity) -> dict[str, int]:
    """sha256 -> result id, for the contents this model has already scored."""
    if not shas:
        return {}
    rows = session.execute(
        select(Result.sha256, Result.id).where(
            Result.sha256.in_(shas),
            Result.model_name == model.name,
            Result.model_version == model.version,
        )
    ).all()
    return {sha: rid for sha, rid in rows}


def _result_row(sha256: str, res: ScoreResult, model: ModelIdentity) -> dict[str, Any]:
    return {
        "sha256": sha256,
        "model_name": model.name,
        "model_version": model.version,
        "kind": "image",
        "media": res.media,
        "verdict": res.verdict,
        "score": res.score,
        "evidence": {"crops": res.crops, "top_crop": res.top_crop},
        "decode_ms": res.timings_ms.get("decode", 0.0),
        "model_ms": res.timings_ms.get("model", 0.0),
        "created_at": utcnow(),
    }


def _insert_results(
    session: Session, rows: list[dict[str, Any]], model: ModelIdentity
) -> dict[str, int]:
    """Insert the rows whose (sha256, model) has none yet (one executemany) and return
    sha256 -> id for all of them, whoever wrote them (another worker may have won)."""
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    keys = ["sha256", "model_name", "model_version"]
    stmt: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(Result).on_conflict_do_nothing(index_elements=keys)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(Result).on_conflict_do_nothing(index_elements=keys)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect}")
    inserted = session.execute(stmt.returning(Result.sha256, Result.id), rows).all()
    ids = {sha: rid for sha, rid in inserted}
    lost = {r["sha256"] for r in rows} - ids.keys()  # written meanwhile by another worker
    if lost:
        ids |= _stored_results(session, lost, model)
    assert len(ids) == len(rows)
    return ids


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


def mark_crashed(scan_ids: list[str], *, settings: Settings, message: str) -> None:
    """A task gave up (time limit, unexpected error): fail its unfinished scans, once."""
    with session_scope(settings.sqlalchemy_url) as session:
        session.execute(
            update(Scan)
            .where(Scan.id.in_(scan_ids), Scan.status.in_(ACTIVE))
            .values(
                status="failed",
                error_code="internal_error",
                error_message=message,
                finished_at=utcnow(),
            )
        )
        batch_ids = set(
            session.scalars(select(Scan.batch_id).where(Scan.id.in_(scan_ids))).all()
        ) - {None}
        finish_batches(session, {b for b in batch_ids if b})


def queue_ms(created: datetime, started: datetime | None) -> float | None:
    if started is None:
        return None
    return round((started - created).total_seconds() * 1000, 3)
