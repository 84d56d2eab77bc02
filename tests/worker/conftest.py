"""Fixtures with real services: an own redis-server, a fresh PostgreSQL database, and
``synthguard worker`` subprocesses. On a failing test the tails of their logs are shown."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.worker._services import (
    LOGS,
    RedisServer,
    WorkerPool,
    create_pg_database,
    drop_pg_database,
    log_tail,
)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.failed and LOGS:
        text = "\n".join(f"===== {p.name} =====\n{log_tail(p)}" for p in LOGS)
        report.sections.append(("service logs (tails)", text))
    return report


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """An own redis-server on a free port (no persistence), for this module."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH")
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    server = RedisServer(log)
    LOGS.append(log)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        LOGS.remove(log)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    try:
        url = create_pg_database()
    except Exception as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {type(exc).__name__}: {exc}")
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="module")
def start_workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., WorkerPool]]:
    """``start_workers(n, env)``: n ``synthguard worker`` processes, stopped at module end."""
    pools: list[WorkerPool] = []
    log_dir: Path = tmp_path_factory.mktemp("workers")

    def start(n: int, env: dict[str, str], *, concurrency: int = 1) -> WorkerPool:
        pool = WorkerPool(log_dir, env)
        pools.append(pool)
        pool.start(n, concurrency=concurrency)
        return pool

    try:
        yield start
    finally:
        for pool in pools:
            pool.stop()
