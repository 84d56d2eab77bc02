"""Real services for the worker tests: an own redis-server, a fresh PostgreSQL database,
and ``synthguard worker`` subprocesses; plus small image and database helpers.

Every process started here is stopped by its pid (or its own process group), never by name.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SYNTHGUARD = Path(sys.executable).with_name("synthguard")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"

# Log files of the services a running test uses; conftest prints their tails on failure.
LOGS: list[Path] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    cond: Callable[[], Any], timeout: float, *, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``cond`` until it returns something truthy; raise ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or cond}")
        time.sleep(interval)


def log_tail(path: Path, lines: int = 80) -> str:
    """The last lines of a log, without the routine "Task ... received/succeeded" lines."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    routine = (" received", " succeeded in ")
    kept = [
        ln
        for ln in text.splitlines()
        if not ("] Task synthguard." in ln and any(r in ln for r in routine))
    ]
    return "\n".join(kept[-lines:])


def png(seed: int, size: int = 40) -> bytes:
    """A small PNG of uniform noise: distinct seeds give distinct content."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def multipart(files: Iterable[tuple[str, bytes]]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "image/png")) for name, data in files]


# --- Redis -----------------------------------------------------------------------------


class RedisServer:
    """An own ``redis-server`` without persistence, on a fixed port (so it can come back)."""

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis.from_url(self.url(db), socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None
        argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no"]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{log_tail(self.log_path)}")
            try:
                return bool(self.client().ping())
            except Exception:
                return False

        wait_until(up, 10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        """Stop without saving (queued messages are lost) and wait until the port is free."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # with --save '': a shutdown without saving
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


# --- PostgreSQL ------------------------------------------------------------------------


def create_pg_database() -> str:
    """A fresh database with a random name; its SQLAlchemy URL. Raises when unreachable."""
    import psycopg

    name = f"synthguard_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    from worker.db import dispose_engines

    dispose_engines()
    name = url.rsplit("/", 1)[-1]
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Celery workers ----------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the prefork pool processes of a worker)."""
    out: list[int] = []
    for f in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in f.read_text().split()]
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class WorkerPool:
    """``synthguard worker`` subprocesses, one per hostname, logging to files."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        # Only what the test gives: no SYNTHGUARD_* leaks in from the outer environment.
        base = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHGUARD_")}
        self.env = base | {"SYNTHGUARD_TORCH_THREADS": "1"} | env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.concurrency = 1

    def start(self, n: int, *, concurrency: int = 1, queues: str = "scan,batch") -> None:
        self.concurrency = concurrency
        for i in range(n):
            name = f"w{i}-{uuid.uuid4().hex[:6]}"
            log = self.log_dir / f"worker-{name}.log"
            self.logs[name] = log
            LOGS.append(log)
            argv = [str(SYNTHGUARD), "worker", "--queues", queues,
                    "--concurrency", str(concurrency), "--hostname", f"{name}@%h"]  # fmt: skip
            with log.open("ab") as fh:
                self.procs[name] = subprocess.Popen(
                    argv,
                    cwd=REPO,
                    env=self.env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, to stop it and its pool
                )

    def pool_pids(self) -> list[int]:
        return [c for p in self.procs.values() for c in children(p.pid) if alive(c)]

    def heartbeat_pids(self, redis_client: Any) -> set[int]:
        from worker.celery_config import HEARTBEAT_KEY

        try:
            keys = list(redis_client.scan_iter(match=HEARTBEAT_KEY + "*", count=100))
            values = redis_client.mget(keys) if keys else []
        except Exception:
            return set()
        return {int(json.loads(v)["pid"]) for v in values if v}

    def wait_ready(self, redis_client: Any, timeout: float = 90) -> list[int]:
        """Wait until every pool process is up and has written its heartbeat; their pids."""
        want = len(self.procs) * self.concurrency

        def ready() -> list[int] | None:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"worker {name} exited with {proc.returncode}:\n{log_tail(self.logs[name])}"
                    )
            pids = self.pool_pids()
            if len(pids) == want and set(pids) <= self.heartbeat_pids(redis_client):
                return pids
            return None

        try:
            return list(wait_until(ready, timeout, interval=0.25, what="worker heartbeats"))
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.dump()}") from None

    def busy_child(self, pids: list[int] | None = None) -> int | None:
        """A pool process that is using CPU (scoring) right now, if any."""
        pids = pids or self.pool_pids()
        before = {p: _cpu_ticks(p) for p in pids}
        time.sleep(0.2)
        busy = [(_cpu_ticks(p) - t, p) for p, t in before.items() if t >= 0]
        busy = [b for b in busy if b[0] > 0]
        return max(busy)[1] if busy else None

    def dump(self) -> str:
        return "\n".join(
            f"===== {path.name} =====\n{log_tail(path)}" for path in self.logs.values()
        )

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL of each worker's process group."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group is the worker and its pool
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for log in self.logs.values():
            with contextlib.suppress(ValueError):
                LOGS.remove(log)
        self.procs.clear()


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return -1
    return int(fields[11]) + int(fields[12])  # utime + stime


# --- The service's records -----------------------------------------------------------------


def wait_batch(client: Any, batch_id: str, timeout: float) -> dict[str, Any]:
    """Poll ``GET /v1/batches/{id}`` until the batch is finished; its last view."""
    deadline = time.monotonic() + timeout
    while True:
        resp = client.get(f"/v1/batches/{batch_id}")
        assert resp.status_code == 200, resp.text
        view: dict[str, Any] = resp.json()
        if view["status"] in ("done", "canceled", "failed"):
            return view
        if time.monotonic() > deadline:
            raise AssertionError(
                f"batch {batch_id} not finished after {timeout:.0f} s: "
                f"status {view['status']}, counts {view['counts']}, total {view['total']}"
            )
        time.sleep(0.25)


def batch_records(url: str, batch_id: str) -> tuple[list[Any], list[Any]]:
    """The batch's scans (by position) and every stored result for their content."""
    from sqlalchemy import select

    from worker.db import Result, Scan, session_scope

    with session_scope(url) as session:
        scans = list(
            session.scalars(select(Scan).where(Scan.batch_id == batch_id).order_by(Scan.position))
        )
        shas = {s.sha256 for s in scans if s.sha256}
        results = list(session.scalars(select(Result).where(Result.sha256.in_(shas))))
    return scans, results


def assert_one_result_per_content(scans: list[Any], results: list[Any], shas: set[str]) -> None:
    """Every scan done and pointing at the one result row of its content."""
    not_done = [(s.position, s.status, s.error_code, s.error_message) for s in scans]
    not_done = [row for row in not_done if row[1] != "done"]
    assert not not_done, f"{len(not_done)} items not done, e.g. {not_done[:5]}"
    per_sha: dict[str, list[int]] = {}
    for r in results:
        per_sha.setdefault(r.sha256, []).append(r.id)
    assert set(per_sha) == shas, "a content has no stored result"
    dup = {sha: ids for sha, ids in per_sha.items() if len(ids) != 1}
    assert not dup, f"contents with more than one result row: {dup}"
    wrong = [s.position for s in scans if s.result_id != per_sha[s.sha256][0]]
    assert not wrong, f"items not pointing at their content's result: {wrong[:10]}"


def add_scans(
    settings: Any,
    contents: list[bytes],
    *,
    queue: str = "scan",
    status: str = "queued",
    dispatched_ago_s: float = 0.0,
    started_ago_s: float | None = None,
    attempts: int = 0,
) -> list[str]:
    """Rows as intake makes them (bytes in the blob store, a queued scan), without sending
    anything; returns their ids."""
    from datetime import timedelta

    from worker.db import Scan, session_scope, utcnow
    from worker.intake import tenant_id_for
    from worker.storage import BlobStore

    tenant = tenant_id_for("worker-tests", settings=settings)
    store = BlobStore(settings.blob_dir)
    now = utcnow()
    ids: list[str] = []
    with session_scope(settings.sqlalchemy_url) as session:
        for i, data in enumerate(contents):
            sha, _ = store.put_bytes(data)
            scan = Scan(
                tenant_id=tenant,
                filename=f"item_{i}.png",
                sha256=sha,
                queue=queue,
                status=status,
                attempts=attempts,
                created_at=now,
                dispatched_at=now - timedelta(seconds=dispatched_ago_s),
                started_at=None
                if started_ago_s is None
                else now - timedelta(seconds=started_ago_s),
            )
            session.add(scan)
            session.flush()
            ids.append(scan.id)
    return ids


def scans_by_id(url: str, ids: list[str]) -> dict[str, Any]:
    from sqlalchemy import select

    from worker.db import Scan, session_scope

    with session_scope(url) as session:
        return {s.id: s for s in session.scalars(select(Scan).where(Scan.id.in_(ids)))}


def results_for(url: str, shas: Iterable[str]) -> list[Any]:
    from sqlalchemy import select

    from worker.db import Result, session_scope

    with session_scope(url) as session:
        return list(session.scalars(select(Result).where(Result.sha256.in_(list(shas)))))
