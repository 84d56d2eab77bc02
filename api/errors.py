"""Every error a client can cause, mapped once to an HTTP status and one JSON shape:
``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from detector.media import MediaError
from worker.errors import Conflict, InvalidRequest, NotFound, ServiceError

MEDIA_STATUS = {
    "too_large": 413,
    "too_long": 413,
    "unsupported_media": 415,
    "corrupt_media": 422,
    "empty": 422,
}
SERVICE_STATUS: dict[type[ServiceError], int] = {InvalidRequest: 400, NotFound: 404, Conflict: 409}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def media_status(code: str) -> int:
    """The HTTP status of a failed scan's code: a media code's, 500 for our own failure."""
    if code == "internal_error":
        return 500
    return MEDIA_STATUS.get(code, 422)


def install(app: FastAPI) -> None:
    @app.exception_handler(MediaError)
    async def _media(_: Request, exc: MediaError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=media_status(exc.code))

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        status = next((s for cls, s in SERVICE_STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse(error_body(exc.code, exc.message), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse(
            error_body("invalid_request", f"{where}: {first['msg']}", details=details),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or {
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            415: "unsupported_media",
            422: "invalid_request",
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
