"""The service through Celery, with real processes: an own redis-server, two
``synthguard worker`` processes (one pool process each), SQLite, and the API in-process
(its janitor included). Uploads, a batch of a few hundred files, a pool process killed
mid-batch, and a broker restart mid-batch."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from detector.media.audio import encode_audio
from tests._audio import speech_like
from tests.api._util import voice_model
from tests.worker._services import (
    RedisServer,
    WorkerPool,
    assert_one_result_per_content,
    batch_records,
    multipart,
    png,
    wait_batch,
    wait_until,
)
from worker.db import Scan, migrate, session_scope, utcnow
from worker.settings import Settings

pytestmark = pytest.mark.slow

CHUNK = 4  # batch items per task


@dataclass
class Service:
    settings: Settings
    pool: WorkerPool
    redis: RedisServer

    def ready(self, timeout: float = 90) -> list[int]:
        """Wait until every pool process is up and reporting; their pids."""
        return self.pool.wait_ready(self.redis.client(), timeout)


@pytest.fixture(scope="module")
def service(redis_server, start_workers, tmp_path_factory) -> Service:
    data_dir = tmp_path_factory.mktemp("data")
    voice = voice_model(data_dir / "voice")
    settings = Settings(
        redis_url=redis_server.url(),
        data_dir=data_dir,
        audio_model=voice,
        chunk_size=CHUNK,
        torch_threads=1,
        redispatch_after_s=120,  # no resending unless a test asks for it
        janitor_interval_s=1,
    )
    migrate(settings.sqlalchemy_url)  # before two workers start on the fresh database
    pool = start_workers(
        2,
        {
            "SYNTHGUARD_REDIS_URL": redis_server.url(),
            "SYNTHGUARD_DATA_DIR": str(data_dir),
            "SYNTHGUARD_CHUNK_SIZE": str(CHUNK),
            "SYNTHGUARD_AUDIO_MODEL": str(voice),
        },
    )
    svc = Service(settings, pool, redis_server)
    svc.ready()
    return svc


@contextlib.contextmanager
def api(service: Service, **overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(service.settings.model_copy(update=overrides))) as client:
        yield client


def submit_batch(client: TestClient, seeds: range) -> tuple[str, set[str]]:
    files = [(f"img_{s}.png", png(s)) for s in seeds]
    resp = client.post("/v1/batches", files=multipart(files))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["total"] == len(files)
    return body["id"], {hashlib.sha256(data).hexdigest() for _, data in files}


def done_count(client: TestClient, batch_id: str) -> int:
    return int(client.get(f"/v1/batches/{batch_id}").json()["counts"]["done"])


def test_uploads_and_readiness(service: Service) -> None:
    pids = service.ready()
    redis = service.redis.client()
    # Heartbeats of processes that are gone expire after 15 s; count only live ones.
    wait_until(
        lambda: service.pool.heartbeat_pids(redis) == set(pids), 20, what="only live heartbeats"
    )
    with api(service) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert checks["broker"] == "ok"
        assert checks["model"] == "ok (2 worker processes)"

        good = png(1)
        resp = client.post("/v1/scans?wait=20", files={"file": ("good.png", good, "image/png")})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["status"] == "done"
        assert body["verdict"] in ("synthetic", "uncertain", "authentic")
        assert 0.0 <= body["score"] <= 1.0
        assert body["media"]["sha256"] == hashlib.sha256(good).hexdigest()
        assert body["model"]["name"] and body["model"]["version"]
        assert body["cached"] is False and body["attempts"] == 1

        # The same content again is answered from the stored result.
        again = client.post("/v1/scans?wait=20", files={"file": ("copy.png", good, "image/png")})
        assert again.status_code == 200, again.text
        assert again.json()["cached"] is True and again.json()["score"] == body["score"]

        # A header that parses and pixels that do not: the worker finds it.
        broken = png(2)
        broken = broken[: len(broken) // 2]
        bad = client.post("/v1/scans?wait=20", files={"file": ("bad.png", broken, "image/png")})
        assert bad.status_code == 422, bad.text
        assert bad.json()["status"] == "failed"
        assert bad.json()["error"]["code"] == "corrupt_media"

        # A recording goes to the workers' voice model and comes back with its timeline.
        voice = encode_audio(speech_like(3, 3.0), 16_000, "flac")
        rec = client.post("/v1/scans?wait=20", files={"file": ("voice.flac", voice)})
        assert rec.status_code == 200, rec.text
        view = rec.json()
        assert view["media"]["kind"] == "audio" and view["model"]["name"] == "audio_cnn"
        assert view["verdict"] in ("synthetic", "uncertain", "authentic") and view["segments"]


def test_batch_of_300_with_two_workers(service: Service) -> None:
    service.ready()
    with api(service) as client:
        batch_id, shas = submit_batch(client, range(1_000, 1_300))
        view = wait_batch(client, batch_id, 120)
        assert view["status"] == "done", view
        assert view["counts"]["done"] == 300 and view["progress"] == 1.0
        rows = client.get(f"/v1/batches/{batch_id}/results").text.splitlines()
        assert len(rows) == 300
    scans, results = batch_records(service.settings.sqlalchemy_url, batch_id)
    assert len(scans) == 300
    assert_one_result_per_content(scans, results, shas)
    attempts = sorted({s.attempts for s in scans})
    assert attempts == [1], f"attempts seen: {attempts}"


def _running(url: str) -> set[str]:
    with session_scope(url) as session:
        return set(session.scalars(select(Scan.id).where(Scan.status == "running")))


def freeze_mid_task(service: Service, client: TestClient, batch_id: str) -> tuple[int, set[str]]:
    """SIGSTOP a pool process while it holds claimed, unfinished scans; (its pid, those ids).

    A stopped process's running scans stay running while the other worker goes on
    finishing its own (its tasks take tens of milliseconds); a try where the other worker
    does not progress (it waits on a lock the stopped one holds) is given up."""
    url = service.settings.sqlalchemy_url
    for attempt in range(20):
        pids = service.pool.pool_pids()
        victim = pids[attempt % len(pids)]
        os.kill(victim, signal.SIGSTOP)
        time.sleep(0.8)
        done1, running1 = done_count(client, batch_id), _running(url)
        time.sleep(0.6)
        done2, running2 = done_count(client, batch_id), _running(url)
        held = running1 & running2
        if done2 > done1 and held:
            return victim, held
        os.kill(victim, signal.SIGCONT)
        time.sleep(0.05 * (attempt % 4))
    raise AssertionError("could not stop a pool process in the middle of a task")


def test_sigkill_pool_process_mid_batch(service: Service) -> None:
    before = service.ready()
    n = 3_000  # long enough for a dozen freeze attempts before the batch is done
    with api(service) as client:
        batch_id, shas = submit_batch(client, range(2_000, 2_000 + n))
        wait_until(lambda: done_count(client, batch_id) >= 40, 60, what="40 items done")
        victim, held = freeze_mid_task(service, client, batch_id)
        assert done_count(client, batch_id) < n
        os.kill(victim, signal.SIGKILL)  # a stopped process dies at once
        view = wait_batch(client, batch_id, 120)
    assert view["status"] == "done", view
    scans, results = batch_records(service.settings.sqlalchemy_url, batch_id)
    assert_one_result_per_content(scans, results, shas)
    attempts = {s.id: s.attempts for s in scans}
    # The killed task's message was requeued (reject_on_worker_lost) and its scans,
    # claimed once by the dead process, were claimed and finished by a second delivery.
    assert {attempts[i] for i in held} == {2}, {i: attempts[i] for i in held}
    assert max(attempts.values()) == 2
    assert sum(a == 2 for a in attempts.values()) <= CHUNK
    # The worker's main process replaced the killed pool process.
    after = service.ready(60)
    assert victim not in after and len(after) == len(before)


def test_broker_restart_mid_batch(service: Service) -> None:
    service.ready()
    n = 600
    url = service.settings.sqlalchemy_url
    with api(service, redispatch_after_s=3, janitor_interval_s=1) as client:
        batch_id, shas = submit_batch(client, range(10_000, 10_000 + n))  # unseen content
        wait_until(lambda: done_count(client, batch_id) >= 40, 60, what="40 items done")
        service.redis.stop()  # no persistence: the queued messages are gone
        stopped_at = done_count(client, batch_id)
        assert stopped_at < n, "the batch finished before the broker went away"
        time.sleep(2)
        service.redis.start()
        restarted = utcnow()
        view = wait_batch(client, batch_id, 90)
    assert view["status"] == "done", view
    scans, results = batch_records(url, batch_id)
    assert_one_result_per_content(scans, results, shas)
    # The queued messages died with the broker: the janitor sent those items again.
    resent = [s for s in scans if s.dispatched_at is not None and s.dispatched_at > restarted]
    assert resent, "no item was sent again after the broker restart"
    # The workers report in again through the new broker.
    service.ready(30)


def test_readyz_counts_pool_processes(service: Service) -> None:
    """/readyz reads the worker count from the heartbeats, which expire with a process."""
    pids = service.ready()
    redis = service.redis.client()
    wait_until(
        lambda: service.pool.heartbeat_pids(redis) == set(pids), 20, what="only live heartbeats"
    )
    with api(service) as client:
        model = client.get("/readyz").json()["checks"]["model"]
        assert re.fullmatch(r"ok \(2 worker processes\)", model), model
