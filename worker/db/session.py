"""Engines and sessions: SQLite by default (WAL, so readers never block the writer),
PostgreSQL when ``SYNTHGUARD_DATABASE_URL`` says so. The schema is made by Alembic."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_lock = threading.Lock()
_factories: dict[str, sessionmaker[Session]] = {}


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def session_factory(url: str) -> sessionmaker[Session]:
    """One engine (a connection pool) per URL per process, made on first use."""
    with _lock:
        if url not in _factories:
            _factories[url] = sessionmaker(_create_engine(url), expire_on_commit=False)
        return _factories[url]


def get_engine(url: str) -> Engine:
    engine = session_factory(url).kw["bind"]
    assert isinstance(engine, Engine)
    return engine


def dispose_engines() -> None:
    """Drop every pool without closing the parent's sockets: call in a freshly forked child."""
    with _lock:
        for factory in _factories.values():
            factory.kw["bind"].dispose(close=False)
        _factories.clear()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
