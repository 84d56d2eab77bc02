"""Build an ensemble model folder from trained models of one modality.

No training: the members' networks are put side by side (``detector.models.ensemble``),
their calibrated logits averaged, and the ensemble calibrated as a whole on the
validation split of the corpora given (temperature, threshold and uncertain band, as
a trained model is), then measured on their test split. The card records each member
(its name, version, families seen) and each member's own metrics on the same
validation and test items, so the ensemble can be judged against its parts on the
data it was chosen on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from detector.config import to_dict
from detector.data.corpus import Item, read_items, select
from detector.eval.calibration import Calibration, calibrate
from detector.eval.metrics import binary_metrics
from detector.identity import model_identity
from detector.models import load_model, read_card, save_model
from detector.models.ensemble import (
    EnsembleConfig,
    EnsembleMember,
    EnsembleModel,
    refuse_ensemble,
)
from detector.train.config import train_config
from detector.train.tasks import TASKS
from detector.train.trainer import (
    ProgressFn,
    TrainResult,
    evaluate_items,
    generator_counts,
    library_versions,
)


def build_ensemble(
    models: Sequence[str | Path],
    corpora: Sequence[str | Path],
    out_dir: str | Path,
    *,
    weights: Sequence[float] | None = None,
    exclude_families: Sequence[str] = (),
    on_progress: ProgressFn | None = None,
) -> TrainResult:
    """Combine the model folders ``models`` into one model at ``out_dir``, calibrated on
    the corpora's validation split (without ``exclude_families``) and tested on their
    test split. Raises ``ValueError`` for models that cannot be combined."""
    progress = on_progress or (lambda *_a: None)
    t0 = time.perf_counter()
    if weights is not None and len(weights) != len(models):
        raise ValueError(f"{len(weights)} weights for {len(models)} models: give one per model")
    nets, members, cards = [], [], []
    for k, folder in enumerate(models):
        net, card = load_model(folder)
        refuse_ensemble(card, folder, "give its members (the models it was built from)")
        modality = card.get("modality", "image")
        if modality not in TASKS:
            raise ValueError(f"{folder} judges {modality}: ensembles are of image or voice models")
        ident = model_identity(folder, modality=modality)
        members.append(
            EnsembleMember(
                name=ident.name,
                architecture=card["architecture"],
                model_config=card["model_config"],
                train_config=card.get("train_config") or {},
                scale=1.0 / float(card["calibration"]["temperature"]),
                weight=float(weights[k]) if weights is not None else 1.0,
                calibration=card["calibration"],
            )
        )
        nets.append(net)
        cards.append({"card": card, "ident": ident})
    modalities = sorted({c["card"].get("modality", "image") for c in cards})
    if len(modalities) != 1:
        raise ValueError(f"the models judge different media ({', '.join(modalities)})")
    config = EnsembleConfig(modality=modalities[0], members=tuple(members))
    model = EnsembleModel(config)
    for slot, net in zip(model.members, nets, strict=True):
        slot.load_state_dict(net.state_dict())
    model.eval()

    task = TASKS[config.modality](
        config, train_config(config.modality, "default", **_scoring_train(members[0]))
    )
    items = read_items(corpora, modality=config.modality)
    val_items = select(items, split="val", exclude_families=list(exclude_families))
    test_items = select(items, split="test")
    if len({it.label for it in val_items}) < 2:
        raise ValueError("the validation split needs real and synthetic items to calibrate on")
    progress("validation", 0, 1, {})
    val_px = task.load(val_items)
    y_val = np.array([it.label for it in val_items])
    val_logits = task.logits(model, val_px)
    cal = calibrate(val_logits, y_val)
    progress("validation", 1, 1, {})
    progress("test", 0, 1, {})
    test_px = task.load(test_items) if test_items else []
    test_metrics = evaluate_items(task, model, cal, test_items, media=test_px)
    parts = []
    for member, net, info in zip(members, nets, cards, strict=True):
        mcal = Calibration(**info["card"]["calibration"])
        v = task.logits(net, val_px)
        parts.append(
            {
                "name": member.name,
                "version": info["ident"].version,
                "path": str(Path(info["ident"].folder).resolve()),
                "families": info["card"].get("families", []),
                "weight": member.weight,
                "val": binary_metrics(y_val, mcal.probability(v), threshold=mcal.threshold),
                "test": evaluate_items(task, net, mcal, test_items, media=test_px),
            }
        )
    progress("test", 1, 1, {})
    card = _card(config, cal, corpora, val_items, test_items, y_val, val_logits,
                 test_metrics, parts, cards, time.perf_counter() - t0)  # fmt: skip
    save_model(model, card, out_dir)
    return TrainResult(out_dir=Path(out_dir), card=card, history=[])


def unpack_ensemble(folder: str | Path, out_dir: str | Path) -> list[Path]:
    """The members of the ensemble at ``folder`` as model folders of their own
    (``out_dir/K``: the member's weights, design, training settings and calibration),
    to fine-tune each."""
    model, card = load_model(folder)
    if card.get("architecture") != "ensemble":
        raise ValueError(f"{folder} is not an ensemble")
    folders = []
    for k, (member, net) in enumerate(zip(model.config.members, model.members, strict=True)):
        member_card = {
            "modality": card["modality"],
            "architecture": member.architecture,
            "name": member.name,
            "model_config": member.model_config,
            "train_config": member.train_config,
            "calibration": member.calibration,
            "generators": card.get("generators", []),
            "families": card.get("families", []),
            "corpora": card.get("corpora", []),
            "unpacked_from": str(Path(folder).resolve()),
        }
        folders.append(save_model(net, member_card, Path(out_dir) / str(k)))
    return folders


def finetune_ensemble(
    folder: str | Path,
    corpora: Sequence[str | Path],
    out_dir: str | Path,
    *,
    work_dir: str | Path,
    preset: str = "default",
    train_overrides: dict[str, Any] | None = None,
    on_progress: ProgressFn | None = None,
) -> TrainResult:
    """Fine-tune every member of the ensemble at ``folder`` from its weights (its own
    training settings, ``train_overrides`` on top) in ``work_dir/K``, then combine them
    as they were combined, calibrated on the corpora's validation split, at ``out_dir``.
    The result's history is the longest member's."""
    from detector.train.trainer import train_detector

    progress = on_progress or (lambda *_a: None)
    card = read_card(folder)
    starts = unpack_ensemble(folder, Path(work_dir) / "start")
    trained = []
    for k, (start, member) in enumerate(zip(starts, card["model_config"]["members"], strict=True)):
        trained.append(
            train_detector(
                corpora,
                Path(work_dir) / str(k),
                modality=card["modality"],
                preset=preset,
                train_overrides=member_training(member, train_overrides),
                init_from=start,
                on_progress=lambda s, d, t, m, k=k: progress(f"member {k}: {s}", d, t, m),
            )
        )
    result = build_ensemble([r.out_dir for r in trained], corpora, out_dir,
                            weights=[m["weight"] for m in card["model_config"]["members"]],
                            on_progress=progress)  # fmt: skip
    result.history = max((r.history for r in trained), key=len)
    return result


def member_training(member: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """A member's own training settings (from the ensemble's card), ``overrides`` on top:
    how a leave-one-out run or a fine-tune trains that member's design."""
    from detector.eval.evaluate import own_training

    return {**own_training({"train_config": member["train_config"]}), **(overrides or {})}


def _scoring_train(member: EnsembleMember) -> dict[str, Any]:
    """The member's training settings that bear on scoring (crops per image)."""
    return {k: v for k, v in member.train_config.items() if k == "max_crops"}


def _card(
    config: EnsembleConfig,
    cal: Calibration,
    corpora: Sequence[str | Path],
    val_items: Sequence[Item],
    test_items: Sequence[Item],
    y_val: np.ndarray,
    val_logits: np.ndarray,
    test_metrics: dict[str, Any],
    parts: list[dict[str, Any]],
    cards: list[dict[str, Any]],
    seconds: float,
) -> dict[str, Any]:
    member_cards = [c["card"] for c in cards]
    return {
        "modality": config.modality,
        "architecture": "ensemble",
        "model_config": to_dict(config),
        "train_config": None,  # never trained as one: see each member's
        "members": parts,
        "corpora": [str(Path(c).resolve()) for c in corpora],
        "generators": sorted({g for c in member_cards for g in c.get("generators", [])}),
        "families": sorted({f for c in member_cards for f in c.get("families", [])}),
        "split_sizes": {"val": generator_counts(val_items), "test": generator_counts(test_items)},
        "calibration": asdict(cal),
        "metrics": {
            "val": binary_metrics(y_val, cal.probability(val_logits), threshold=cal.threshold),
            "test": test_metrics,
        },
        "history": [],
        "training_seconds": round(sum(c.get("training_seconds", 0.0) for c in member_cards), 1),
        "build_seconds": round(seconds, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
