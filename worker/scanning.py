"""Score queued scans: the function behind the ``scan`` and ``batch`` tasks.

``process_scans(ids)`` claims the scans that still need work, reads their bytes (blob
store or server-side path), answers repeated content from stored results, scores the
rest as one micro-batch, and writes each result once: results are keyed by (sha256,
model name, model version), so a task delivered twice, or two scans of the same file,
write one row. A bad file fails its own scan; it never fails the task.

Videos take seconds to minutes each, so a task scores them one at a time, after the
images and recordings, and starts another only while its longest one so far still fits
in half the soft time limit; the videos left over go back to the queue (``released``)
for the caller to send again. A task always scores its first video: the time limits
are sized for the longest video allowed (``worker.settings.video_task_seconds``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from detector.identity import ModelIdentity
from detector.inference.detector import ScoreResult
from detector.media import ImageLimits
from worker.db import RESULTS, Result, new_id, session_scope, utcnow
from worker.media import HEAD_BYTES, media_kind, no_model_error
from worker.runtime import active_models, get_runtime, shadow_models
from worker.scan_state import (
    DONE,
    FAILED,
    RELEASED,
    Claimed,
    claim,
    claim_waiting,
    finish_batches,
)
from worker.settings import Settings
from worker.storage import BlobStore

log = logging.getLogger(__name__)


@dataclass
class ProcessReport:
    claimed: int = 0
    scored: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0  # finished, canceled, or taken by another task's micro-batch
    microbatch: int = 0  # scans scored together, with waiting uploads gathered
    finished: list[str] = field(default_factory=list)  # ids this call finished, gathered ones too
    errors: dict[str, int] = field(default_factory=dict)
    # Videos left for another task (no time left in this one): queue -> scan ids, queued
    # again in the database; the caller sends them (the janitor would, later).
    released: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Item:
    scan_id: str
    data: bytes | None  # None for a video: it is streamed from ``path``, never held whole
    sha256: str
    queue: str
    kind: str
    path: Path | None = None

    @property
    def media(self) -> bytes | Path:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path


class ItemError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def process_scans(
    scan_ids: list[str], *, settings: Settings, owner: str | None = None
) -> ProcessReport:
    """Claim, read, answer from stored results, score the rest as one batch, write.

    Two or three short transactions whatever the number of items (claim and look up
    stored results; for server-side files, look up by the hash just computed; write
    results, scan states and batch completion), so many worker processes can share
    one database.
    """
    report = ProcessReport()
    deadline = time.monotonic() + settings.soft_time_limit_s / 2  # for starting a video
    url = settings.sqlalchemy_url
    models = active_models(settings)
    owner = owner or new_id()
    stale = utcnow() - timedelta(seconds=settings.hard_time_limit_s + 30)
    with session_scope(url) as session:
        claimed = claim(session, scan_ids, owner=owner, stale=stale)
        report.claimed = len(claimed)
        report.skipped = len(set(scan_ids) - {c.id for c in claimed})
        if any(c.queue == "scan" for c in claimed):
            claimed += claim_waiting(session, settings.microbatch_max - len(claimed), owner)
        # Uploads carry their sha256: look their stored results up in the same transaction.
        known = {c.sha256 for c in claimed if c.sha256}
        stored = stored_results(session, known, models)
    gather_more = settings.microbatch_wait_ms > 0 and len(claimed) < settings.microbatch_max
    if claimed and gather_more and claimed[0].queue == "scan":
        time.sleep(settings.microbatch_wait_ms / 1000)
        with session_scope(url) as session:
            more = claim_waiting(session, settings.microbatch_max - len(claimed), owner)
            shas = {c.sha256 for c in more if c.sha256}
            stored |= stored_results(session, shas, models)
        claimed += more
        known |= shas
    if not claimed:
        return report
    report.microbatch = len(claimed)
    report.finished = [c.id for c in claimed]
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
            stored |= stored_results(session, unknown, models)
    # Each new content is scored once, however many scans in the chunk carry it.
    new: dict[str, _Item] = {}
    for it in items:
        if it.sha256 not in stored:
            new.setdefault(it.sha256, it)
    scored, kinds, shadow_rows, deferred = _score_new(
        list(new.values()), settings, models, deadline=deadline
    )
    with session_scope(url) as session:
        rows = [
            _result_row(sha, res, models[kinds[sha]], kinds[sha])
            for sha, res in scored.items()
            if res.error is None
        ]
        stored |= _insert_results(session, rows, models)
        for kind, srows in shadow_rows.items():  # stored for the report, never returned
            _insert_results(session, srows, {kind: shadow_models(settings)[kind]})
        done: list[dict[str, Any]] = []
        now = utcnow()
        released: list[_Item] = []
        for it in items:
            if it.sha256 in deferred:
                released.append(it)
                continue
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
            session.execute(DONE, done)
        if failed:
            session.execute(
                FAILED,
                [
                    {"b_id": i, "b_sha": sha, "b_code": code, "b_msg": msg, "b_now": now}
                    for i, sha, code, msg in failed
                ],
            )
        if released:
            session.execute(
                RELEASED, [{"b_id": it.scan_id, "b_owner": owner, "b_now": now} for it in released]
            )
        finish_batches(session, {c.batch_id for c in claimed if c.batch_id})
    for it in released:
        report.released.setdefault(it.queue, []).append(it.scan_id)
    back = {it.scan_id for it in released}
    report.finished = [i for i in report.finished if i not in back]
    report.scored = sum(
        1 for it in items if it.sha256 in scored and scored[it.sha256].error is None
    )
    report.cached = len(done) - report.scored
    report.failed = len(failed)
    for *_, code, _msg in failed:
        report.errors[code] = report.errors.get(code, 0) + 1
    return report


def _score_new(
    items: list[_Item],
    settings: Settings,
    models: dict[str, ModelIdentity],
    *,
    deadline: float = float("inf"),
) -> tuple[dict[str, ScoreResult], dict[str, str], dict[str, list[dict[str, Any]]], set[str]]:
    """Score each new content with the detector of its kind (a micro-batch is split by
    kind; videos go last, one at a time, and a video is started only when the longest
    one so far would end before ``deadline`` (``time.monotonic()``), the first always).

    Returns sha256 -> result, sha256 -> kind, the result rows of the shadow models (kind
    -> rows), and the sha256 of the videos left for another task."""
    scored: dict[str, ScoreResult] = {}
    kinds: dict[str, str] = {}
    shadow_rows: dict[str, list[dict[str, Any]]] = {}
    deferred: set[str] = set()
    groups: dict[str, list[_Item]] = {}
    for it in items:
        kinds[it.sha256] = it.kind
        groups.setdefault(it.kind, []).append(it)
    if not groups:
        return scored, kinds, shadow_rows, deferred
    runtime = get_runtime(settings)
    longest = 0.0  # seconds of the longest video scored by this call
    for kind in sorted(groups, key=lambda k: k == "video"):
        group = groups[kind]
        if kind not in models:  # a recording or a video, and no model for it (any more)
            error = no_model_error(kind).to_dict()
            for it in group:
                scored[it.sha256] = ScoreResult(source="<bytes>", sha256=it.sha256, error=error)
            continue
        detector = runtime.detector(kind)
        model = models[kind]
        if (detector.name, detector.version) != (model.name, model.version):
            raise RuntimeError(
                f"loaded model {detector.name} {detector.version} is not the active one "
                f"{model.name} {model.version}; restart the worker"
            )
        shadow = runtime.shadows.get(kind)
        shadow_ident = shadow_models(settings).get(kind)
        parts = [[it] for it in group] if kind == "video" else [group]
        for n, part in enumerate(parts):
            if kind == "video" and n > 0 and time.monotonic() + longest > deadline:
                deferred.update(it.sha256 for p in parts[n:] for it in p)
                break
            t0 = time.monotonic()
            results = detector.score([it.media for it in part])
            scored.update({it.sha256: res for it, res in zip(part, results, strict=True)})
            if shadow is not None and shadow_ident is not None:
                ok = [it for it, res in zip(part, results, strict=True) if res.error is None]
                shadow_rows.setdefault(kind, []).extend(
                    _result_row(it.sha256, res, shadow_ident, kind)
                    for it, res in zip(ok, shadow.score([it.media for it in ok]), strict=True)
                    if res.error is None
                )
            if kind == "video":
                longest = max(longest, time.monotonic() - t0)
    return scored, kinds, shadow_rows, deferred


def _read(scan: Claimed, store: BlobStore, limits: ImageLimits) -> _Item:
    """The item's bytes, or for a video its path (the detector streams it: a video may be
    gigabytes, and a task holds many items)."""
    if scan.path is not None:
        path = Path(scan.path)
        try:
            size = path.stat().st_size
            if size > limits.max_bytes:
                raise ItemError(
                    "too_large", f"file is {size:,} bytes; the limit is {limits.max_bytes:,}"
                )
            return _open_item(scan, path, None)
        except FileNotFoundError:
            raise ItemError("not_found", f"{path}: no such file") from None
        except IsADirectoryError:
            raise ItemError("unsupported_media", f"{path} is a directory") from None
        except PermissionError:
            raise ItemError("not_found", f"{path}: permission denied") from None
    assert scan.sha256 is not None, "an uploaded scan always has its sha256"
    try:
        return _open_item(scan, store.path(scan.sha256), scan.sha256)
    except FileNotFoundError:
        raise ItemError(
            "expired", "the uploaded bytes are gone (removed by the retention setting)"
        ) from None


def _open_item(scan: Claimed, path: Path, sha256: str | None) -> _Item:
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
        kind = media_kind(head)
        if kind == "video":
            if sha256 is None:
                digest = hashlib.sha256(head)
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
                sha256 = digest.hexdigest()
            return _Item(scan.id, None, sha256, scan.queue, kind, path)
        data = head + f.read()
    return _Item(scan.id, data, sha256 or hashlib.sha256(data).hexdigest(), scan.queue, kind)


def stored_results(
    session: Session, shas: set[str], models: dict[str, ModelIdentity]
) -> dict[str, int]:
    """sha256 -> result id, for the contents the active models have already scored (one
    query; a content is an image or a recording, so one model at most has its result)."""
    if not shas or not models:
        return {}
    of_a_model = or_(
        *(
            and_(Result.model_name == m.name, Result.model_version == m.version)
            for m in models.values()
        )
    )
    rows = session.execute(
        select(Result.sha256, Result.id).where(Result.sha256.in_(shas), of_a_model)
    ).all()
    return {sha: rid for sha, rid in rows}


def _result_row(sha256: str, res: ScoreResult, model: ModelIdentity, kind: str) -> dict[str, Any]:
    evidence: dict[str, Any]
    if kind == "audio":
        evidence = {"segments": res.segments, "top_segment": res.top_segment}
    elif kind == "video":  # the frame timeline, the voice track's segments, both parts' scores
        evidence = {
            "frames": res.frames,
            "top_frame": res.top_frame,
            "segments": res.segments,
            "top_segment": res.top_segment,
            "parts": res.parts,
        }
    else:
        evidence = {"crops": res.crops, "top_crop": res.top_crop}
    return {
        "sha256": sha256,
        "model_name": model.name,
        "model_version": model.version,
        "kind": kind,
        "media": res.media,
        "verdict": res.verdict,
        "score": res.score,
        "evidence": evidence,
        "decode_ms": res.timings_ms.get("decode", 0.0),
        "model_ms": res.timings_ms.get("model", 0.0),
        "created_at": utcnow(),
    }


def _insert_results(
    session: Session, rows: list[dict[str, Any]], models: dict[str, ModelIdentity]
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

        stmt = pg_insert(RESULTS).on_conflict_do_nothing(index_elements=keys)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(RESULTS).on_conflict_do_nothing(index_elements=keys)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect}")
    t = RESULTS.c
    inserted = session.execute(stmt.returning(t.sha256, t.id), rows).all()
    ids = {sha: rid for sha, rid in inserted}
    lost = {r["sha256"] for r in rows} - ids.keys()  # written meanwhile by another worker
    if lost:
        ids |= stored_results(session, lost, models)
    assert len(ids) == len(rows)
    return ids
