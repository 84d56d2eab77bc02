"""Bring a database to the newest schema with Alembic (``synthguard db upgrade``; the
API and workers also run it at start, so a fresh SQLite file just works)."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_lock = threading.Lock()
_done: set[str] = set()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, *, revision: str = "head") -> None:
    """Upgrade ``url`` to ``revision`` (once per process per URL for ``head``).

    Safe when several processes start at once (an API and its workers on a fresh
    database): SQLite migrations hold a file lock beside the database, PostgreSQL ones an
    advisory lock (taken in ``env.py``), so one process migrates and the others then
    find the schema current.
    """
    with _lock:
        if revision == "head" and url in _done:
            return
        with _sqlite_file_lock(url):
            command.upgrade(alembic_config(url), revision)
        if revision == "head":
            _done.add(url)


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    path = make_url(url).database if url.startswith("sqlite") else None
    if not path or path == ":memory:":
        yield
        return
    lock_path = Path(path).with_name(Path(path).name + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
