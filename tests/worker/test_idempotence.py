"""A task delivered twice, a canceled item, the same content twice, and the janitor:
``process_scans`` and ``janitor.sweep`` on a real database (SQLite; the result-writing
tests also on PostgreSQL), with no broker."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from sqlalchemy import update

from tests.worker._services import (
    add_scans,
    png,
    results_for,
    scans_by_id,
    wait_until,
)
from worker.db import Scan, migrate, session_scope
from worker.dispatch import EmbeddedDispatcher
from worker.janitor import sweep
from worker.scan_state import mark_crashed
from worker.scanning import process_scans
from worker.settings import Settings


def _settings(tmp_path, database_url: str | None = None) -> Settings:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        redis_url=None,
        torch_threads=1,
        chunk_size=4,
        redispatch_after_s=5,
        hard_time_limit_s=60,
    )
    migrate(settings.sqlalchemy_url)
    return settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return _settings(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request, tmp_path) -> Settings:
    if request.param == "sqlite":
        return _settings(tmp_path)
    return _settings(tmp_path, request.getfixturevalue("pg_url"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _state(url: str, ids: list[str]) -> dict[str, tuple[object, ...]]:
    return {
        i: (s.status, s.attempts, s.result_id, s.cached, s.started_at, s.finished_at)
        for i, s in scans_by_id(url, ids).items()
    }


def test_done_scans_are_skipped_and_nothing_is_written(any_db: Settings) -> None:
    url = any_db.sqlalchemy_url
    contents = [png(100 + i) for i in range(3)]
    ids = add_scans(any_db, contents)
    first = process_scans(ids, settings=any_db)
    assert (first.claimed, first.scored, first.skipped) == (3, 3, 0)
    before = _state(url, ids)
    assert {v[:2] for v in before.values()} == {("done", 1)}
    rows = {r.id for r in results_for(url, map(_sha, contents))}
    assert len(rows) == 3

    again = process_scans(ids, settings=any_db)  # the same task delivered a second time
    assert (again.claimed, again.scored, again.cached, again.skipped) == (0, 0, 0, 3)
    assert _state(url, ids) == before
    assert {r.id for r in results_for(url, map(_sha, contents))} == rows


def test_canceled_scan_is_not_scored(any_db: Settings) -> None:
    url = any_db.sqlalchemy_url
    data = png(110)
    ids = add_scans(any_db, [data], status="canceled")
    report = process_scans(ids, settings=any_db)
    assert (report.claimed, report.scored, report.skipped) == (0, 0, 1)
    scan = scans_by_id(url, ids)[ids[0]]
    assert (scan.status, scan.attempts, scan.result_id) == ("canceled", 0, None)
    assert results_for(url, [_sha(data)]) == []


def test_same_content_twice_writes_one_result(any_db: Settings) -> None:
    url = any_db.sqlalchemy_url
    same, other = png(120), png(121)
    ids = add_scans(any_db, [same, same, other])
    report = process_scans(ids, settings=any_db)
    # Both copies are scored in the one micro-batch; the second insert does nothing.
    assert (report.scored, report.failed) == (3, 0)
    rows = results_for(url, [_sha(same), _sha(other)])
    assert sorted(r.sha256 for r in rows) == sorted([_sha(same), _sha(other)])
    by_sha = {r.sha256: r.id for r in rows}
    scans = scans_by_id(url, ids)
    assert scans[ids[0]].result_id == scans[ids[1]].result_id == by_sha[_sha(same)]
    assert scans[ids[2]].result_id == by_sha[_sha(other)]
    assert process_scans(ids, settings=any_db).skipped == 3
    assert len(results_for(url, [_sha(same), _sha(other)])) == 2


def test_concurrent_tasks_on_the_same_content_write_one_result(any_db: Settings) -> None:
    """Two tasks scoring scans of the same new content at once: one row, both point to it."""
    url = any_db.sqlalchemy_url
    process_scans(add_scans(any_db, [png(130)]), settings=any_db)  # the model loads first
    data = png(131)
    ids = add_scans(any_db, [data] * 4)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(part: list[str]) -> None:
        try:
            start.wait(5)
            process_scans(part, settings=any_db)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ids[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    rows = results_for(url, [_sha(data)])
    assert len(rows) == 1
    scans = scans_by_id(url, ids)
    assert {(s.status, s.result_id) for s in scans.values()} == {("done", rows[0].id)}


def test_running_scan_of_a_dead_task_is_claimed_again(any_db: Settings) -> None:
    """A redelivered task finds its scans ``running`` (the first process died): it scores
    them, counting a second attempt."""
    url = any_db.sqlalchemy_url
    ids = add_scans(any_db, [png(140)], status="running", attempts=1, started_ago_s=5)
    report = process_scans(ids, settings=any_db)
    assert (report.claimed, report.scored) == (1, 1)
    scan = scans_by_id(url, ids)[ids[0]]
    assert (scan.status, scan.attempts) == ("done", 2)


# --- The janitor ---------------------------------------------------------------------------


def test_janitor_resends_stale_queued_scans_when_the_queue_is_empty(settings: Settings) -> None:
    url = settings.sqlalchemy_url
    stale = add_scans(settings, [png(150), png(151)], dispatched_ago_s=60)
    stale_batch = add_scans(settings, [png(152)], queue="batch", dispatched_ago_s=60)
    # Fresh, in the batch queue (an interactive scan's task would gather a waiting upload
    # into its micro-batch).
    fresh = add_scans(settings, [png(153)], queue="batch", dispatched_ago_s=0)
    before = scans_by_id(url, fresh)[fresh[0]].dispatched_at
    dispatcher = EmbeddedDispatcher(settings, workers=1)
    try:
        report = sweep(settings, dispatcher)
        assert report.requeued == 3
        assert report.reclaimed == 0
        # The re-sent scans run; the fresh one (its message may still be on its way) waits.
        wait_until(
            lambda: {s.status for s in scans_by_id(url, stale + stale_batch).values()} == {"done"},
            60,
            what="re-sent scans done",
        )
        scan = scans_by_id(url, fresh)[fresh[0]]
        assert (scan.status, scan.dispatched_at, scan.attempts) == ("queued", before, 0)
        assert sweep(settings, dispatcher).requeued == 0  # just sent: not stale again yet
    finally:
        dispatcher.close()


def test_janitor_leaves_a_queue_with_waiting_messages_alone(settings: Settings) -> None:
    url = settings.sqlalchemy_url
    batch_ids = add_scans(settings, [png(160), png(161)], queue="batch", dispatched_ago_s=60)
    scan_ids = add_scans(settings, [png(162)], queue="scan", dispatched_ago_s=60)
    before = {i: s.dispatched_at for i, s in scans_by_id(url, batch_ids + scan_ids).items()}
    # A real pool with its threads stopped: what is sent to it stays waiting.
    dispatcher = EmbeddedDispatcher(settings, workers=1)
    dispatcher.close()
    dispatcher.send_scans(["an-earlier-message"], "batch")
    assert dispatcher.pending("batch") == 1
    report = sweep(settings, dispatcher)
    after = scans_by_id(url, batch_ids + scan_ids)
    # The batch queue still has a message waiting, which may be these scans': not re-sent.
    assert {after[i].dispatched_at for i in batch_ids} == {before[i] for i in batch_ids}
    assert dispatcher.pending("batch") == 1
    # The scan queue is empty: its stale scan is sent again.
    assert report.requeued == 1
    assert after[scan_ids[0]].dispatched_at > before[scan_ids[0]]
    assert dispatcher.pending("scan") == 1


def test_janitor_reclaims_running_scans_after_the_hard_limit(settings: Settings) -> None:
    url = settings.sqlalchemy_url
    lost = add_scans(settings, [png(170)], status="running", attempts=1, started_ago_s=95)
    busy = add_scans(settings, [png(171)], status="running", attempts=1, started_ago_s=10)
    dispatcher = EmbeddedDispatcher(settings, workers=1)
    try:
        report = sweep(settings, dispatcher)  # hard limit 60 s + 30 s
        assert (report.reclaimed, report.requeued) == (1, 0)
        wait_until(
            lambda: scans_by_id(url, lost)[lost[0]].status == "done", 60, what="reclaimed done"
        )
        assert scans_by_id(url, lost)[lost[0]].attempts == 2
        time.sleep(0.2)
        scan = scans_by_id(url, busy)[busy[0]]
        assert (scan.status, scan.attempts) == ("running", 1)
    finally:
        dispatcher.close()


# --- Micro-batching and claim owners -----------------------------------------------------


def test_an_upload_task_gathers_waiting_uploads_into_one_batch(settings: Settings) -> None:
    url = settings.sqlalchemy_url
    ids = add_scans(settings, [png(170), png(171), png(172)])
    batch_item = add_scans(settings, [png(173)], queue="batch")  # not an upload: left alone
    report = process_scans(ids[:1], settings=settings, owner="task-a")
    assert (report.claimed, report.microbatch, report.scored) == (1, 3, 3)
    assert set(report.finished) == set(ids)  # whose waiters are woken, gathered ones too
    scans = scans_by_id(url, ids)
    assert {(s.status, s.attempts, s.owner) for s in scans.values()} == {("done", 1, "task-a")}
    # Their own messages arrive later and find nothing to do.
    late = process_scans(ids[1:], settings=settings, owner="task-b")
    assert (late.claimed, late.skipped, late.scored) == (0, 2, 0)
    assert scans_by_id(url, batch_item)[batch_item[0]].status == "queued"


def test_a_gathered_scan_belongs_to_its_task_until_the_claim_is_stale(
    settings: Settings,
) -> None:
    url = settings.sqlalchemy_url
    mine = add_scans(settings, [png(180)], status="running", started_ago_s=5, attempts=1)
    old = add_scans(settings, [png(181)], status="running", started_ago_s=10_000, attempts=1)
    with session_scope(url) as session:
        session.execute(update(Scan).where(Scan.id.in_(mine + old)).values(owner="task-a"))
    # Another live task's message for the same scan: not taken while task-a's claim is fresh.
    other = process_scans(mine, settings=settings, owner="task-b")
    assert (other.claimed, other.skipped) == (0, 1)
    assert scans_by_id(url, mine)[mine[0]].status == "running"
    # A stale claim (older than the hard time limit) is anyone's.
    assert process_scans(old, settings=settings, owner="task-b").scored == 1
    # Task-a redelivered (same task id) takes back what it had gathered, whatever its ids.
    unrelated = add_scans(settings, [png(182)], queue="batch")
    again = process_scans(unrelated, settings=settings, owner="task-a")
    assert again.scored == 2
    assert scans_by_id(url, mine)[mine[0]].attempts == 2


def test_a_crashed_task_fails_the_uploads_it_had_gathered(settings: Settings) -> None:
    url = settings.sqlalchemy_url
    own = add_scans(settings, [png(190)], status="running", started_ago_s=1)
    gathered = add_scans(settings, [png(191)], status="running", started_ago_s=1)
    bystander = add_scans(settings, [png(192)], status="running", started_ago_s=1)
    with session_scope(url) as session:
        session.execute(update(Scan).where(Scan.id.in_(gathered)).values(owner="task-a"))
        session.execute(update(Scan).where(Scan.id.in_(bystander)).values(owner="task-z"))
    mark_crashed(own, settings=settings, message="boom", owner="task-a")
    states = {i: s.status for i, s in scans_by_id(url, own + gathered + bystander).items()}
    assert states == {own[0]: "failed", gathered[0]: "failed", bystander[0]: "running"}


def test_with_a_gathering_wait_an_upload_arriving_meanwhile_joins_the_batch(
    settings: Settings,
) -> None:
    url = settings.sqlalchemy_url
    waiting = settings.model_copy(update={"microbatch_wait_ms": 800.0})
    # The model loads first (a batch item: it gathers no uploads).
    process_scans(add_scans(settings, [png(201)], queue="batch"), settings=settings)
    first = add_scans(settings, [png(200)])
    reports = []
    worker = threading.Thread(
        target=lambda: reports.append(process_scans(first, settings=waiting, owner="t"))
    )
    worker.start()
    time.sleep(0.2)  # the task has claimed its scan and is waiting for more
    late = add_scans(settings, [png(202)])
    worker.join(30)
    assert reports and (reports[0].claimed, reports[0].microbatch, reports[0].scored) == (1, 2, 2)
    scans = scans_by_id(url, first + late)
    assert {(s.status, s.owner) for s in scans.values()} == {("done", "t")}
