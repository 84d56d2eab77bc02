"""Request bodies over the limit get 413 before they are read whole.

A declared ``Content-Length`` over the limit is refused without reading a byte; a
chunked body is counted as it arrives and cut off at the limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


class BodyLimitMiddleware:
    def __init__(self, app: Any, *, limit_for: Callable[[str, str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        limit = self.limit_for(scope["path"], ctype)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, int(declared), limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the app: its exception handlers answer 413.
                    raise BodyTooLarge(received, limit)
            return message

        await self.app(scope, counting_receive, send)


class BodyTooLarge(HTTPException):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(413, detail=_message(size, limit))
        self.code = "too_large"


def _message(size: int, limit: int) -> str:
    return f"the request body is over the limit of {limit:,} bytes ({size:,} bytes so far)"


async def _refuse(send: Send, size: int, limit: int) -> None:
    body = json.dumps({"error": {"code": "too_large", "message": _message(size, limit)}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
