"""``/v1/scans``: upload one file, read its result."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.deps import DispatcherDep, SettingsDep, TenantDep
from api.errors import media_status
from api.routes._forms import files_of, multipart_doc, read_form
from api.schemas import ScanAccepted, ScanList, ScanOut
from worker import intake
from worker.contract import scan_view
from worker.db import new_id
from worker.notify import Waiters
from worker.settings import Settings

router = APIRouter(prefix="/v1/scans", tags=["scans"])

FINISHED = ("done", "failed", "canceled")


def _view(scan_id: str, tenant_id: int, settings: Settings) -> dict[str, Any]:
    return scan_view(intake.get_scan(scan_id, tenant_id=tenant_id, settings=settings))


_SAFETY_POLL_S = 0.25  # re-read even without a notification, in case one is missed


async def wait_for(
    scan_id: str,
    tenant_id: int,
    settings: Settings,
    timeout_s: float,
    waiters: Waiters,
    *,
    queued: bool = False,
    event: asyncio.Event | None = None,
) -> dict[str, Any]:
    """The scan's view once it is finished (woken by the worker's notification), or
    when ``timeout_s`` has passed. ``event``: registered before the scan was sent, so no
    notification can be missed; then, with ``queued``, the first read of the database
    can wait for the first notification."""
    deadline = time.monotonic() + timeout_s
    if event is None:
        event, queued = waiters.register(scan_id), False
    try:
        while True:
            if queued:
                queued = False
            else:
                view = await run_in_threadpool(_view, scan_id, tenant_id, settings)
                if view["status"] in FINISHED or time.monotonic() >= deadline:
                    return view
            left = max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(left, _SAFETY_POLL_S))
            event.clear()
    finally:
        waiters.release(scan_id, event)


def finished_response(view: dict[str, Any]) -> JSONResponse:
    """A finished scan: 200, or the decoder's status (415/422/413) when it failed."""
    status = 200
    if view["status"] == "failed" and view["error"]:
        status = media_status(view["error"]["code"] or "")
    return JSONResponse(view, status_code=status)


@router.post(
    "",
    status_code=202,
    response_model=ScanAccepted,
    responses={200: {"model": ScanOut, "description": "finished within ?wait="}},
    openapi_extra=multipart_doc("file", many=False),
)
async def create_scan(
    request: Request,
    tenant_id: TenantDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    wait: Annotated[
        float, Query(ge=0, description="seconds to wait for the result (0: answer at once)")
    ] = 0,
) -> Any:
    """Upload one file (multipart field ``file``): 202 with the scan id and a status URL,
    or the finished result when it is ready within ``?wait=``."""
    form = await read_form(request, max_files=1)
    files = files_of(form)
    if not files:
        raise HTTPException(422, "the multipart field 'file' is missing")
    upload = files[0]
    # The id is chosen here so that the waiter exists before any worker can finish.
    scan_id = new_id()
    event = dispatcher.waiters.register(scan_id) if wait > 0 else None
    try:
        _, status = await run_in_threadpool(
            intake.submit_upload,
            intake.Upload(upload.filename or "upload", upload.file),
            tenant_id=tenant_id,
            settings=settings,
            dispatcher=dispatcher,
            scan_id=scan_id,
        )
    except BaseException:
        if event is not None:
            dispatcher.waiters.release(scan_id, event)
        raise
    finally:
        await form.close()
    if wait > 0 or status in FINISHED:  # a stored result answers at once
        view = await wait_for(
            scan_id,
            tenant_id,
            settings,
            min(wait, settings.max_wait_s),
            dispatcher.waiters,
            queued=status == "queued",
            event=event,
        )
        if view["status"] in FINISHED:
            return finished_response(view)
    # Built by hand: url_for walks every route (a measurable part of each upload).
    status_url = f"{str(request.base_url).rstrip('/')}{router.prefix}/{scan_id}"
    return JSONResponse(
        {"id": scan_id, "status": "queued", "status_url": status_url},
        status_code=202,
        headers={"Location": status_url},
    )


@router.get("", response_model=ScanList)
def list_scans(
    tenant_id: TenantDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """The tenant's most recent scans, newest first."""
    scans = intake.recent_scans(tenant_id=tenant_id, settings=settings, limit=limit)
    return {"scans": [scan_view(s) for s in scans]}


@router.get("/{scan_id}", response_model=ScanOut)
def get_scan(scan_id: str, tenant_id: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """One scan's result contract; another tenant's scan is 404."""
    return _view(scan_id, tenant_id, settings)
