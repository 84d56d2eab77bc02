"""Typed media errors: every user-caused failure has a code and a human message."""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal["unsupported_media", "corrupt_media", "too_large", "too_long", "empty"]
ERROR_CODES: tuple[ErrorCode, ...] = (
    "unsupported_media",
    "corrupt_media",
    "too_large",
    "too_long",
    "empty",
)


class MediaError(ValueError):
    """A file that cannot be used, with a stable ``code`` for APIs and reports."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown media error code {code!r}; valid codes: {ERROR_CODES}")
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
