"""``/v1/models``: the model each modality uses, with its card's metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import SettingsDep
from api.schemas import ModelOut
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
