"""Several processes migrating one fresh database at once (an API and its workers
starting together): one migrates, the others find the schema current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.worker._services import create_pg_database, drop_pg_database


def _head() -> str:
    from alembic.script import ScriptDirectory

    from worker.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


_SCRIPT = "import sys; from worker.db import migrate; migrate(sys.argv[1]); print('ok')"


def _migrate_at_once(url: str, n: int = 4) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and out.strip() == b"ok", err.decode()[-2000:]
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"tenants", "api_keys", "scans", "batches", "results", "models"} <= tables
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [v[0] for v in versions] == [_head()]
    finally:
        engine.dispose()


def test_concurrent_migrations_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    _migrate_at_once(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_concurrent_migrations_on_a_fresh_postgresql_database() -> None:
    try:
        url = create_pg_database()
    except Exception as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}")
    try:
        _migrate_at_once(url)
    finally:
        drop_pg_database(url)


def test_the_migrations_make_exactly_the_schema_of_the_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from worker.db import Base, migrate

    url = f"sqlite:///{tmp_path / 'schema.db'}"
    migrate(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ (add a migration): {diff}"
