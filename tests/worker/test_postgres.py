"""PostgreSQL (a fresh database for the session): the migrations, the embedded API, and
two Celery workers writing results concurrently."""

from __future__ import annotations

import hashlib

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from api.app import create_app
from tests.worker._services import (
    assert_one_result_per_content,
    batch_records,
    multipart,
    png,
    wait_batch,
    wait_until,
)
from worker.db import get_engine, migrate
from worker.db.migrate import alembic_config
from worker.settings import Settings


def test_migrations_make_the_schema(pg_url: str) -> None:
    migrate(pg_url)
    engine = get_engine(pg_url)
    tables = set(inspect(engine).get_table_names())
    assert {"tenants", "api_keys", "scans", "batches", "results", "alembic_version"} <= tables
    head = ScriptDirectory.from_config(alembic_config(pg_url)).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    uniques = inspect(engine).get_unique_constraints("results")
    assert any(set(u["column_names"]) == {"sha256", "model_name", "model_version"} for u in uniques)


def test_embedded_api_on_postgres(pg_url: str, tmp_path) -> None:
    settings = Settings(
        database_url=pg_url, data_dir=tmp_path, redis_url=None, torch_threads=1, chunk_size=4
    )
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, 60, what="/readyz 200")
        assert client.get("/readyz").json()["checks"]["database"] == "ok"
        good = png(500)
        resp = client.post("/v1/scans?wait=20", files={"file": ("a.png", good, "image/png")})
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "done"
        assert resp.json()["media"]["sha256"] == hashlib.sha256(good).hexdigest()

        # Twelve files: two copies of one content, and one copy of the upload above.
        files = [(f"b{s}.png", png(s)) for s in range(510, 520)]
        files += [("dup.png", png(510)), ("again.png", good)]
        resp = client.post("/v1/batches", files=multipart(files))
        assert resp.status_code == 202, resp.text
        view = wait_batch(client, resp.json()["id"], 60)
    assert view["status"] == "done" and view["counts"]["done"] == 12, view
    scans, results = batch_records(settings.sqlalchemy_url, view["id"])
    assert_one_result_per_content(scans, results, {hashlib.sha256(d).hexdigest() for _, d in files})
    assert len(results) == 11


@pytest.mark.slow
def test_celery_workers_on_postgres(
    pg_url: str, redis_server, start_workers, tmp_path_factory
) -> None:
    data_dir = tmp_path_factory.mktemp("pg-data")  # the blob store the API and workers share
    settings = Settings(
        database_url=pg_url,
        redis_url=redis_server.url(),
        data_dir=data_dir,
        chunk_size=4,
        redispatch_after_s=120,
        janitor_interval_s=1,
    )
    migrate(pg_url)
    pool = start_workers(
        2,
        {
            "SYNTHGUARD_REDIS_URL": redis_server.url(),
            "SYNTHGUARD_DATABASE_URL": pg_url,
            "SYNTHGUARD_DATA_DIR": str(data_dir),
            "SYNTHGUARD_CHUNK_SIZE": "4",
        },
    )
    pool.wait_ready(redis_server.client())
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["model"] == "ok (2 worker processes)"
        one = png(600)
        resp = client.post("/v1/scans?wait=20", files={"file": ("one.png", one, "image/png")})
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "done" and resp.json()["attempts"] == 1

        # 200 items, each content twice in neighbouring chunks of 4, which the two workers
        # take at the same time: they score the same content and write its result at once.
        files = []
        for start in range(610, 710, 4):
            group = [(f"c{s}.png", png(s)) for s in range(start, start + 4)]
            files += group + group
        resp = client.post("/v1/batches", files=multipart(files))
        assert resp.status_code == 202, resp.text
        view = wait_batch(client, resp.json()["id"], 90)
    assert view["status"] == "done" and view["counts"]["done"] == 200, view
    scans, results = batch_records(pg_url, view["id"])
    assert_one_result_per_content(scans, results, {hashlib.sha256(d).hexdigest() for _, d in files})
    assert len(results) == 100
    assert {s.attempts for s in scans} == {1}
