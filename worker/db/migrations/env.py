"""Alembic environment: the URL comes from the caller's Config, the schema from the models."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from worker.db.models import Base
from worker.db.session import get_engine

config = context.config
_LOCK_KEY = 0x5347_4D49  # "SGMI": synthguard migrations
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    # The process's pooled engine is reused: SQLite pragmas apply, no second pool.
    with get_engine(url).connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # One migrating process at a time; the others wait, then find it done.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
