"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import DispatcherDep, SettingsDep
from worker.db import session_scope

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, settings: SettingsDep, dispatcher: DispatcherDep) -> JSONResponse:
    """Database reachable, broker reachable, and a model loaded where tasks run."""
    checks: dict[str, Any] = {}
    try:
        with session_scope(settings.sqlalchemy_url) as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    checks["broker"] = (
        "embedded" if settings.embedded else ("ok" if dispatcher.ping() else "error: unreachable")
    )
    checks["model"] = request.app.state.model_status()
    ready = all(v in ("ok", "embedded") or str(v).startswith("ok") for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
