"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.auth import LOCAL_TENANT, tenant_for_key
from worker.dispatch import Dispatcher
from worker.intake import tenant_id_for
from worker.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


async def get_tenant(request: Request, settings: SettingsDep) -> int:
    """The caller's tenant id, from ``Authorization: Bearer <key>``.

    Without a key: the ``local`` tenant when keys are not required (the embedded
    default on localhost), else 401.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if token and scheme.lower() == "bearer":
        tenant_id = await run_in_threadpool(tenant_for_key, token.strip(), settings=settings)
        if tenant_id is None:
            raise HTTPException(
                401, "the API key is not valid", headers={"WWW-Authenticate": "Bearer"}
            )
        return tenant_id
    if header:
        raise HTTPException(
            401,
            "send the key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if settings.keys_required:
        raise HTTPException(
            401,
            "an API key is required (create one with `synthguard keys create --tenant NAME`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    local: int | None = getattr(request.app.state, "local_tenant_id", None)
    if local is None:
        local = await run_in_threadpool(tenant_id_for, LOCAL_TENANT, settings=settings)
        request.app.state.local_tenant_id = local
    return local


TenantDep = Annotated[int, Depends(get_tenant)]
