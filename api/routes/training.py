"""``/v1/training-runs``: retrain on new generators through the API (issue 7's job on the
``train`` queue); a run proposes a candidate, an operator promotes it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.deps import DispatcherDep, SettingsDep, TenantDep
from api.schemas import TrainingRunIn, TrainingRunOut
from worker import training_runs

router = APIRouter(prefix="/v1/training-runs", tags=["training"])


@router.post("", status_code=202, response_model=TrainingRunOut)
def create(
    body: TrainingRunIn,
    request: Request,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    tenant_id: TenantDep,
) -> JSONResponse:
    """Queue a retraining run: extend the active model's corpus with the named generators
    (or server-side fakes folders), fine-tune, evaluate, store the candidate, gate it."""
    run_id = training_runs.create_run(settings, tenant_id, body.model_dump())
    dispatcher.send_training(run_id)
    view = training_runs.run_view(training_runs.get_run(settings, run_id))
    url = f"{str(request.base_url).rstrip('/')}{router.prefix}/{run_id}"
    return JSONResponse(view, status_code=202, headers={"Location": url})


@router.get("/{run_id}", response_model=TrainingRunOut)
def get(run_id: str, settings: SettingsDep, _tenant: TenantDep) -> dict[str, Any]:
    """Status, progress, the log, and when done the candidate version and its gate."""
    return training_runs.run_view(training_runs.get_run(settings, run_id))


@router.get("", response_model=list[TrainingRunOut])
def list_(
    settings: SettingsDep, _tenant: TenantDep, limit: int = Query(20, ge=1, le=200)
) -> list[dict[str, Any]]:
    return [training_runs.run_view(r) for r in training_runs.list_runs(settings, limit)]
