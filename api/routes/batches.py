"""``/v1/batches``: many files at once (uploaded, or a server-side folder or manifest),
progress, streamed results, cancel and resume."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from api.deps import DispatcherDep, SettingsDep, TenantDep
from api.routes._forms import files_of, read_form
from api.schemas import BatchCreate, BatchOut
from worker import batches, intake
from worker.db import Batch
from worker.errors import Conflict
from worker.settings import Settings

router = APIRouter(prefix="/v1/batches", tags=["batches"])

CSV_FIELDS = (
    "position", "filename", "id", "status", "verdict", "score", "sha256", "model_name",
    "model_version", "top_crop_box", "error_code", "error_message",
)  # fmt: skip


def _batch_view(batch: Batch, settings: Settings, request: Request) -> dict[str, Any]:
    counts = batches.batch_counts(batch.id, settings=settings)
    base = f"{str(request.base_url).rstrip('/')}{router.prefix}"  # url_for walks every route
    finished = counts["done"] + counts["failed"] + counts["canceled"]
    return {
        "id": batch.id,
        "status": batch.status,
        "source_kind": batch.source_kind,
        "source": batch.source,
        "total": batch.total,
        "counts": counts,
        "progress": round(finished / batch.total, 6) if batch.total else 0.0,
        "created_at": batch.created_at.isoformat(),
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
        "error": (
            {"code": batch.error_code, "message": batch.error_message} if batch.error_code else None
        ),
        "status_url": f"{base}/{batch.id}",
        "results_url": f"{base}/{batch.id}/results",
    }


_BODY_DOC = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            },
            "application/json": {"schema": BatchCreate.model_json_schema()},
        },
        "required": True,
    }
}


@router.post("", status_code=202, response_model=BatchOut, openapi_extra=_BODY_DOC)
async def create_batch(
    request: Request, tenant_id: TenantDep, settings: SettingsDep, dispatcher: DispatcherDep
) -> JSONResponse:
    """Files in one multipart request (any field name), or JSON ``{"directory": ...}`` /
    ``{"manifest": ...}`` naming a server-side folder or manifest under the batch roots."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            body = BatchCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise HTTPException(422, f"invalid JSON body: {where}: {first['msg']}") from None
        batch_id = await run_in_threadpool(
            intake.submit_path_batch,
            directory=body.directory,
            manifest=body.manifest,
            tenant_id=tenant_id,
            settings=settings,
            dispatcher=dispatcher,
        )
    else:
        form = await read_form(request, max_files=settings.max_batch_files)
        uploads = [intake.Upload(f.filename or "upload", f.file) for f in files_of(form)]
        try:
            batch_id = await run_in_threadpool(
                intake.submit_upload_batch,
                uploads,
                tenant_id=tenant_id,
                settings=settings,
                dispatcher=dispatcher,
            )
        finally:
            await form.close()
    batch = await run_in_threadpool(
        intake.get_batch, batch_id, tenant_id=tenant_id, settings=settings
    )
    view = await run_in_threadpool(_batch_view, batch, settings, request)
    return JSONResponse(view, status_code=202, headers={"Location": view["status_url"]})


@router.get("/{batch_id}", response_model=BatchOut)
def get_batch(
    batch_id: str, request: Request, tenant_id: TenantDep, settings: SettingsDep
) -> dict[str, Any]:
    """Counts (queued, running, done, failed, canceled) and progress."""
    batch = intake.get_batch(batch_id, tenant_id=tenant_id, settings=settings)
    return _batch_view(batch, settings, request)


@router.get("/{batch_id}/results", response_class=StreamingResponse)
def batch_results(
    batch_id: str,
    tenant_id: TenantDep,
    settings: SettingsDep,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
    after: Annotated[int, Query(ge=-1, description="positions after this one (a cursor)")] = -1,
    limit: Annotated[int | None, Query(ge=1, description="at most this many rows")] = None,
) -> StreamingResponse:
    """The batch's items in order, streamed: JSON lines (the result contract) or CSV.
    Page with ``after`` = the last ``position`` read and ``limit``."""
    intake.get_batch(batch_id, tenant_id=tenant_id, settings=settings)  # 404 for others
    rows = batches.iter_batch_rows(batch_id, settings=settings, after=after, limit=limit)
    if format == "csv":
        return StreamingResponse(
            _csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{batch_id}.csv"'},
        )
    return StreamingResponse(
        (json.dumps(r) + "\n" for r in rows), media_type="application/x-ndjson"
    )


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    for r in rows:
        top = r["crops"][r["top_crop"]]["box"] if r["top_crop"] is not None else None
        err = r["error"] or {}
        model = r["model"] or {}
        writer.writerow(
            [
                r["position"],
                r["filename"],
                r["id"],
                r["status"],
                r["verdict"],
                r["score"],
                r["media"]["sha256"],
                model.get("name"),
                model.get("version"),
                " ".join(map(str, top)) if top else "",
                err.get("code"),
                err.get("message"),
            ]
        )
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


@router.post("/{batch_id}/cancel", response_model=BatchOut)
def cancel_batch(
    batch_id: str, request: Request, tenant_id: TenantDep, settings: SettingsDep
) -> dict[str, Any]:
    """Stop: queued items are canceled, running ones finish. Resume picks them up again."""
    intake.get_batch(batch_id, tenant_id=tenant_id, settings=settings)
    batches.cancel_batch(batch_id, settings=settings)
    batch = intake.get_batch(batch_id, tenant_id=tenant_id, settings=settings)
    return _batch_view(batch, settings, request)


@router.post("/{batch_id}/resume", response_model=BatchOut)
def resume_batch(
    batch_id: str,
    request: Request,
    tenant_id: TenantDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
) -> dict[str, Any]:
    """Queue a canceled batch's canceled items again."""
    batch = intake.get_batch(batch_id, tenant_id=tenant_id, settings=settings)
    if batch.status != "canceled":
        raise Conflict(f"batch {batch_id} is {batch.status}; only a canceled batch resumes")
    batches.resume_batch(batch_id, settings=settings, dispatcher=dispatcher)
    batch = intake.get_batch(batch_id, tenant_id=tenant_id, settings=settings)
    return _batch_view(batch, settings, request)
