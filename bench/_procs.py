"""Processes for the service benchmarks: an own redis-server, `synthguard serve` and
`synthguard worker` subprocesses, started with a shared environment and stopped after."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up in {timeout:.0f} s")


@contextmanager
def redis_server() -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed (make services installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)

        def up() -> bool:
            try:
                return bool(client.ping())
            except Exception:
                return False

        _wait(up, 10, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def processes(env: dict[str, str], logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Collects started processes; stops them all (process groups) on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def start(
    procs: list[subprocess.Popen[bytes]], args: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    p = subprocess.Popen(
        [str(BIN / "synthguard"), *args],
        env={**os.environ, **env},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs.append(p)
    return p


def wait_ready(base: str, timeout: float = 120, workers: int = 0, logs: Path | None = None) -> None:
    def ready() -> bool:
        try:
            r = httpx.get(base + "/readyz", timeout=2)
        except httpx.HTTPError:
            return False
        if r.status_code != 200:
            return False
        model = str(r.json()["checks"]["model"])
        return workers == 0 or model.startswith(f"ok ({workers} ")

    try:
        _wait(ready, timeout, f"the API at {base}")
    except TimeoutError:
        for log in sorted(logs.glob("*.log")) if logs else []:
            print(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:]))
        raise
