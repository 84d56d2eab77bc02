"""Bring a database to the newest schema with Alembic (``synthguard db upgrade``; the
API and workers also run it at start, so a fresh SQLite file just works)."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_lock = threading.Lock()
_done: set[str] = set()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, *, revision: str = "head") -> None:
    """Upgrade ``url`` to ``revision`` (once per process per URL for ``head``)."""
    with _lock:
        if revision == "head" and url in _done:
            return
        command.upgrade(alembic_config(url), revision)
        if revision == "head":
            _done.add(url)
