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
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from detector.identity import ModelIdentity
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
    report = ProcessReport()
    url = settings.sqlalchemy_url
    claimed = _claim(url, scan_ids)
    report.claimed = len(claimed)
    report.skipped = len(scan_ids) - len(claimed)
    if not claimed:
        return report
    image_model = active_models(settings)["image"]
    store = BlobStore(settings.blob_dir)
    limits = ImageLimits(max_bytes=settings.max_upload_bytes)
    items: list[_Item] = []
    batch_ids: set[str] = set()
    with session_scope(url) as session:
        for scan in claimed:
            if scan.batch_id:
                batch_ids.add(scan.batch_id)
            try:
                item = _read(scan, store, limits)
            except ItemError as exc:
                _fail(session, scan.id, exc.code, exc.message, report)
                continue
            if scan.sha256 != item.sha256:
                session.execute(update(Scan).where(Scan.id == scan.id).values(sha256=item.sha256))
            cached = _find_result(session, item.sha256, image_model)
            if cached is not None:
                _finish(session, scan.id, cached, cached=True)
                report.cached += 1
            else:
                items.append(item)
    if items:
        _score(url, items, image_model, settings, report)
    if batch_ids:
        with session_scope(url) as session:
            finish_batches(session, batch_ids)
    return report


def _claim(url: str, scan_ids: list[str]) -> list[Scan]:
    """Mark the scans that still need work as running; others (done, canceled) are skipped.

    A scan already ``running`` is claimed again: its earlier task died with its worker.
    """
    with session_scope(url) as session:
        scans = list(
            session.scalars(select(Scan).where(Scan.id.in_(scan_ids), Scan.status.in_(ACTIVE)))
        )
        now = utcnow()
        for scan in scans:
            scan.status = "running"
            scan.started_at = now
            scan.attempts += 1
        return scans


def _read(scan: Scan, store: BlobStore, limits: ImageLimits) -> _Item:
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


def _find_result(session: Session, sha256: str, model: ModelIdentity) -> Result | None:
    return session.scalar(
        select(Result).where(
            Result.sha256 == sha256,
            Result.model_name == model.name,
            Result.model_version == model.version,
        )
    )


def _score(
    url: str,
    items: list[_Item],
    model: ModelIdentity,
    settings: Settings,
    report: ProcessReport,
) -> None:
    detector = get_runtime(settings).image
    if (detector.name, detector.version) != (model.name, model.version):
        raise RuntimeError(
            f"loaded model {detector.name} {detector.version} is not the active one "
            f"{model.name} {model.version}; restart the worker"
        )
    results = detector.score([it.data for it in items])
    with session_scope(url) as session:
        for item, res in zip(items, results, strict=True):
            if res.error is not None:
                _fail(session, item.scan_id, res.error["code"], res.error["message"], report)
                continue
            row = _insert_result(
                session,
                sha256=item.sha256,
                model_name=model.name,
                model_version=model.version,
                kind="image",
                media=res.media,
                verdict=res.verdict,
                score=res.score,
                evidence={"crops": res.crops, "top_crop": res.top_crop},
                decode_ms=res.timings_ms.get("decode", 0.0),
                model_ms=res.timings_ms.get("model", 0.0),
            )
            _finish(session, item.scan_id, row, cached=False)
            report.scored += 1


def _insert_result(session: Session, **values: Any) -> Result:
    """Insert unless (sha256, model) already has a row; return the row either way."""
    dialect = session.get_bind().dialect.name
    keys = ["sha256", "model_name", "model_version"]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(
            pg_insert(Result)
            .values(created_at=utcnow(), **values)
            .on_conflict_do_nothing(index_elements=keys)
        )
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(
            sqlite_insert(Result)
            .values(created_at=utcnow(), **values)
            .on_conflict_do_nothing(index_elements=keys)
        )
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect}")
    row = session.scalar(
        select(Result).where(
            Result.sha256 == values["sha256"],
            Result.model_name == values["model_name"],
            Result.model_version == values["model_version"],
        )
    )
    assert row is not None
    return row


def _finish(session: Session, scan_id: str, result: Result, *, cached: bool) -> None:
    session.execute(
        update(Scan)
        .where(Scan.id == scan_id, Scan.status.in_(ACTIVE))
        .values(
            status="done",
            result_id=result.id,
            cached=cached,
            error_code=None,
            error_message=None,
            finished_at=utcnow(),
        )
    )


def _fail(session: Session, scan_id: str, code: str, message: str, report: ProcessReport) -> None:
    session.execute(
        update(Scan)
        .where(Scan.id == scan_id, Scan.status.in_(ACTIVE))
        .values(status="failed", error_code=code, error_message=message, finished_at=utcnow())
    )
    report.failed += 1
    report.errors[code] = report.errors.get(code, 0) + 1


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
