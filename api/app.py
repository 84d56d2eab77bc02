"""The FastAPI application: ``create_app(settings)``.

With no Redis configured (the embedded default) tasks run in a bounded pool inside this
process; with ``SYNTHGUARD_REDIS_URL`` they go to Celery workers. Either way the
database (SQLite by default, PostgreSQL by URL) holds every scan, batch and result.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.limits import BodyLimitMiddleware
from api.metrics import Metrics, MetricsMiddleware
from api.routes import batches, health, models, scans, training, web
from worker.db import migrate
from worker.dispatch import Dispatcher, make_dispatcher
from worker.janitor import Janitor
from worker.runtime import configure_torch, get_runtime
from worker.settings import Settings, get_settings

log = logging.getLogger("synthguard.api")

_MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file
_JSON_LIMIT = 1024 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate(settings.sqlalchemy_url)
        dispatcher = make_dispatcher(settings)
        app.state.dispatcher = dispatcher
        dispatcher.start_notifications()
        app.state.metrics = Metrics(settings, dispatcher)
        janitor = Janitor(settings, dispatcher)
        if settings.embedded:
            # Load the model now (not on the first upload), off the event loop.
            threading.Thread(target=_preload, args=(app, settings), daemon=True).start()
        janitor.start()
        try:
            yield
        finally:
            janitor.stop()
            dispatcher.close()

    app = FastAPI(
        title="synthguard",
        summary="Deepfake and synthetic-media detection",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model_error = None
    app.state.model_loaded = False
    app.state.model_status = lambda: _model_status(app, settings)
    errors.install(app)
    routers = (scans.router, batches.router, models.router, training.router, health.router)
    for router in (*routers, web.router):
        app.include_router(router)

    def limit_for(path: str, content_type: str) -> int | None:
        multipart = content_type.startswith("multipart/")
        if multipart and path.rstrip("/") == "/v1/scans":
            largest = max(settings.max_upload_bytes, settings.max_video_upload_bytes)
            return largest + _MULTIPART_SLACK
        if multipart and path.rstrip("/") == "/v1/batches":
            return settings.max_batch_request_bytes
        return _JSON_LIMIT  # JSON bodies and everything else

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    app.add_middleware(MetricsMiddleware, metrics=lambda: app.state.metrics)
    return app


def _preload(app: FastAPI, settings: Settings) -> None:
    try:
        configure_torch(threads=settings.torch_threads)
        get_runtime(settings)
        app.state.model_loaded = True
    except Exception as exc:  # reported by /readyz
        log.exception("loading the model failed")
        app.state.model_error = f"{type(exc).__name__}: {exc}"


def _model_status(app: FastAPI, settings: Settings) -> str:
    if settings.embedded:
        if app.state.model_error:
            return f"error: {app.state.model_error}"
        return "ok" if app.state.model_loaded else "error: still loading"
    dispatcher: Dispatcher = app.state.dispatcher
    workers = _worker_heartbeats(dispatcher)
    if not workers:
        return "error: no worker process has reported in the last 15 s"
    return f"ok ({len(workers)} worker processes)"


def _worker_heartbeats(dispatcher: Dispatcher) -> list[dict[str, object]]:
    from worker.celery_config import HEARTBEAT_KEY
    from worker.dispatch import CeleryDispatcher

    if not isinstance(dispatcher, CeleryDispatcher):
        return []
    try:
        client = dispatcher.redis
        keys = list(client.scan_iter(match=HEARTBEAT_KEY + "*", count=100))
        return [json.loads(v) for v in client.mget(keys) if v] if keys else []
    except Exception:
        return []
