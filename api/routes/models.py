"""``/v1/models``: the model each modality uses, with its card's metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import SettingsDep
from api.schemas import ModelOut, ModelVersionOut
from worker import model_store
from worker.runtime import active_models

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=list[ModelOut])
def list_models(settings: SettingsDep) -> list[dict[str, Any]]:
    out = []
    for modality, ident in active_models(settings).items():
        card = ident.card
        cal = card.get("calibration", {})
        out.append(
            {
                "modality": modality,
                "name": ident.name,
                "version": ident.version,
                "threshold": cal.get("threshold"),
                "uncertain_band": (
                    [cal["uncertain_low"], cal["uncertain_high"]]
                    if "uncertain_low" in cal
                    else None
                ),
                "metrics": card.get("metrics", {}),
                "trained": {
                    "created": card.get("created"),
                    "generators": card.get("generators", []),
                    "families": card.get("families", []),
                    "split_sizes": card.get("split_sizes", {}),
                    "training_seconds": card.get("training_seconds"),
                    "versions": card.get("versions", {}),
                },
            }
        )
    return out


@router.get("/{modality}/versions", response_model=list[ModelVersionOut])
def list_versions(modality: str, settings: SettingsDep) -> list[dict[str, Any]]:
    """Every version of the store for ``modality``: candidates, the active one, retired."""
    return [model_store.model_view(row) for row in model_store.list_models(settings, modality)]


@router.get("/{modality}/versions/{version}", response_model=ModelVersionOut)
def get_version(modality: str, version: str, settings: SettingsDep) -> dict[str, Any]:
    """One version, with its evaluation gate's table (old vs new AUC per generator)."""
    return model_store.model_view(model_store.get_model(settings, modality, version))


@router.get("/{modality}/versions/{version}/shadow")
def shadow(modality: str, version: str, settings: SettingsDep) -> dict[str, Any]:
    """Shadow scoring's report: how often this version disagreed with the active model on
    the same contents (verdict pairs, opposite verdicts, mean score difference)."""
    return model_store.shadow_report(settings, modality, version)
