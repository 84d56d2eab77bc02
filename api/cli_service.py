"""The service commands of ``synthguard``: ``serve``, ``worker``, ``keys``, ``db``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api._progress import console, user_errors

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
db_app = typer.Typer(help="The service database.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
    app.command("worker")(worker_cmd)
    app.add_typer(keys_app, name="keys")
    app.add_typer(db_app, name="db")


@user_errors
def serve_cmd(
    host: Annotated[str | None, typer.Option(help="Bind address (SYNTHGUARD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (SYNTHGUARD_PORT).")] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (costs ~1 ms each).")
    ] = False,
) -> None:
    """Start the API. Without SYNTHGUARD_REDIS_URL, tasks run in this process (SQLite)."""
    import os

    import uvicorn

    from api.app import create_app
    from worker.settings import Settings

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    for key, value in overrides.items():  # workers and reloads read the same values
        os.environ[f"SYNTHGUARD_{key.upper()}"] = str(value)
    url = f"http://{settings.host}:{settings.port}"
    mode = (
        "embedded: tasks run in this process"
        if settings.embedded
        else f"Celery workers through {settings.redis_url} (start them with `synthguard worker`)"
    )
    console.print(f"[bold]synthguard[/] at [bold]{url}[/]  ({mode})")
    console.print(f"database: {_redact(settings.sqlalchemy_url)}; uploads: {settings.blob_dir}")
    if settings.keys_required:
        console.print("API keys are required: `synthguard keys create --tenant NAME`")
    else:
        console.print(
            "[yellow]open access[/]: no API key needed, because the server listens on "
            f"{settings.host} only (set SYNTHGUARD_REQUIRE_KEYS=true to require keys)"
        )
    console.print(f"try:  curl -F file=@photo.jpg '{url}/v1/scans?wait=10'   or open {url}/")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=access_log,
    )


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@user_errors
def worker_cmd(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "scan,batch",
    concurrency: Annotated[int, typer.Option(help="Worker processes (one per GPU with CUDA).")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info",
    hostname: Annotated[str | None, typer.Option(help="Node name (default: celery@host).")] = None,
) -> None:
    """Start a Celery worker: scans, batches, or training runs (needs SYNTHGUARD_REDIS_URL)."""
    import os

    from worker.db import migrate
    from worker.dispatch import QUEUES
    from worker.settings import get_settings

    settings = get_settings()
    if settings.embedded:
        raise ValueError(
            "a worker needs a broker: set SYNTHGUARD_REDIS_URL (e.g. redis://127.0.0.1:6379/0);"
            " without one, `synthguard serve` runs tasks itself"
        )
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(wanted) - set(QUEUES))
    if unknown:
        raise ValueError(f"unknown queue(s) {unknown}; valid: {', '.join(QUEUES)}")
    if concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    migrate(settings.sqlalchemy_url)
    os.environ["SYNTHGUARD_WORKER_CONCURRENCY"] = str(concurrency)
    from worker.celery_app import app as celery_app

    argv = ["worker", "-Q", ",".join(wanted), "-c", str(concurrency), "-P", "prefork",
            "--loglevel", loglevel, "--without-gossip", "--without-mingle"]  # fmt: skip
    if hostname:
        argv += ["-n", hostname]
    celery_app.worker_main(argv)


@keys_app.command("create")
@user_errors
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key belongs to.")],
) -> None:
    """Make an API key; it is printed once and stored only as a hash."""
    from api.auth import create_key
    from worker.db import migrate
    from worker.settings import get_settings

    settings = get_settings()
    migrate(settings.sqlalchemy_url)
    key = create_key(tenant, settings=settings)
    console.print(
        f"key for tenant [bold]{tenant}[/] (shown once; send as 'Authorization: Bearer KEY'):"
    )
    print(key)


@keys_app.command("list")
@user_errors
def keys_list() -> None:
    """Keys by id, tenant and prefix (the keys themselves are not stored)."""
    from api.auth import list_keys
    from worker.db import migrate
    from worker.settings import get_settings

    settings = get_settings()
    migrate(settings.sqlalchemy_url)
    table = Table("id", "tenant", "prefix", "created", "revoked")
    for k in list_keys(settings=settings):
        table.add_row(str(k.id), k.tenant, k.prefix + "...", str(k.created_at)[:19],
                      str(k.revoked_at)[:19] if k.revoked_at else "")  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
@user_errors
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `keys list`).")],
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from api.auth import revoke_key
    from worker.db import migrate
    from worker.errors import NotFound
    from worker.settings import get_settings

    settings = get_settings()
    migrate(settings.sqlalchemy_url)
    try:
        revoke_key(key_id, settings=settings)
    except NotFound as exc:
        raise ValueError(exc.message) from None
    console.print(f"key {key_id} revoked")


@db_app.command("upgrade")
@user_errors
def db_upgrade() -> None:
    """Create or migrate the database schema (the API and workers also do this at start)."""
    from worker.db import migrate
    from worker.settings import get_settings

    settings = get_settings()
    migrate(settings.sqlalchemy_url)
    console.print(f"database {_redact(settings.sqlalchemy_url)} is at the newest schema")
