"""Errors a client causes in the service layer, with stable codes (media errors live in
``detector.media``). The API maps each class to one HTTP status, in one place."""

from __future__ import annotations


class ServiceError(Exception):
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidRequest(ServiceError):
    """400: a path outside the batch roots, a manifest that cannot be read, too many items."""


class NotFound(ServiceError):
    """404: no such scan, batch or model for this tenant."""

    code = "not_found"


class Conflict(ServiceError):
    """409: the request does not fit the resource's state (resume a batch not canceled)."""

    code = "conflict"
