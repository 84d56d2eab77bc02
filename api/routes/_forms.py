"""Multipart parsing with the service's limits, and 422 (not 400) for a malformed body."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException


async def read_form(request: Request, *, max_files: int) -> FormData:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise HTTPException(
            422, f"send the file(s) as multipart/form-data (got {ctype or 'no content type'!r})"
        )
    try:
        return await request.form(max_files=max_files, max_fields=100)
    except MultiPartException as exc:
        raise HTTPException(422, f"malformed multipart body: {exc.message}") from None
    except HTTPException as exc:
        # Inside an app, Starlette turns a MultiPartException into a 400 itself.
        if exc.status_code != 400:
            raise  # e.g. 413 from the body limit
        raise HTTPException(422, f"malformed multipart body: {exc.detail}") from None


def files_of(form: FormData) -> list[UploadFile]:
    return [v for _, v in form.multi_items() if isinstance(v, UploadFile)]


def multipart_doc(field: str, *, many: bool) -> dict[str, object]:
    """The request body for OpenAPI, where the route parses the form itself."""
    item = {"type": "string", "format": "binary"}
    schema = {"type": "array", "items": item} if many else item
    return {
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {field: schema}, "required": [field]}
                }
            },
            "required": True,
        }
    }
