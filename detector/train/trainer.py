"""Training a detector on corpora, for every modality: augmentation on both classes,
early stopping, resumable state, temperature calibration and threshold on the
validation split, test metrics, and the model card. What is modality-specific
(loading, examples, whole-item scoring) lives in ``detector.train.tasks``."""

from __future__ import annotations

import copy
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F

from detector.config import from_dict, to_dict
from detector.data.corpus import Item, read_items, select
from detector.eval.calibration import Calibration, calibrate, fit_temperature
from detector.eval.metrics import binary_metrics
from detector.models import create, load_model, save_model
from detector.models.checkpoint import model_config_dict
from detector.models.ensemble import refuse_ensemble
from detector.train.config import train_config
from detector.train.tasks import TASKS, Task

STATE = "train_state.pt"
# on_progress(stage, done, total, metrics)
ProgressFn = Callable[[str, int, int, dict[str, float]], None]
# Makes a fake from a real item's media (a new one each call, from the generator given):
# the fake's media, or an object with ``media`` and ``segments`` (the synthetic part of a
# partly synthetic fake, in seconds).
OnlineFakeFn = Callable[[Any, np.random.Generator], Any]


@dataclass
class TrainResult:
    out_dir: Path
    card: dict[str, Any]
    history: list[dict[str, float]]


def train_detector(
    corpora: Sequence[str | Path],
    out_dir: str | Path,
    *,
    modality: str = "image",
    preset: str = "default",
    model_overrides: dict[str, Any] | None = None,
    train_overrides: dict[str, Any] | None = None,
    resume: bool = True,
    on_progress: ProgressFn | None = None,
    init_from: str | Path | None = None,
    online_fake: OnlineFakeFn | None = None,
) -> TrainResult:
    """Train, calibrate on validation, measure on test, and write ``model.safetensors`` + card.

    ``online_fake`` makes a fake from a real training item's media (by default the
    task's own, if it has one); with the training config's ``p_online_fake`` > 0, that
    share of the real items is drawn as one (a new one each time, labeled synthetic).
    Validation and test items are never changed.

    ``init_from`` (a model folder) fine-tunes: its architecture and ``model_config``
    replace the preset's network (a conflicting ``model_overrides`` is an error) and
    training starts from its weights, with a fresh optimizer and schedule (lower ``lr``
    and ``epochs`` through ``train_overrides``). The card records where it started.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = on_progress or (lambda *_a: None)
    cfg = train_config(modality, preset, **(train_overrides or {}))
    task_cls = TASKS[modality]
    init: dict[str, str] | None = None
    torch.manual_seed(cfg.seed)  # the network's initial weights too
    if init_from is None:
        model = create(task_cls.architecture, preset=preset, **(model_overrides or {}))
    else:
        model, init = _initial_model(init_from, task_cls, model_overrides or {})
    if task_cls.online_family in cfg.exclude_families and online_fake is None:
        cfg = replace(cfg, p_online_fake=0.0)  # what the task's maker makes is held out
    task = task_cls(model.config, cfg)
    # The maker in use: none when p_online_fake is 0 (no draws: such runs keep their sequence).
    maker = (online_fake or task.online_fake()) if cfg.p_online_fake > 0 else None
    if cfg.p_online_fake > 0 and maker is None:
        raise ValueError(
            f"p_online_fake needs a maker of fakes, and the {modality} detector has none "
            "(images: untrained decoders; voice: spliced clips; video faces: self-blends); "
            "drop the setting"
        )

    items = read_items(corpora, modality=modality)
    train_items = select(items, split="train", exclude_families=cfg.exclude_families)
    val_items = select(items, split="val", exclude_families=cfg.exclude_families)
    test_items = select(items, split="test")
    for name, part in (("train", train_items), ("val", val_items)):
        if len({it.label for it in part}) < 2:
            raise ValueError(f"the {name} split needs real and synthetic items")
    progress("decode", 0, 2, {})
    train_px = task.load(train_items)
    val_px = task.load(val_items)
    progress("decode", 2, 2, {})
    y_train = np.array([it.label for it in train_items])
    y_val = np.array([it.label for it in val_items])
    # The share of real draws that online fakes move to the synthetic side.
    fakeable = [task.can_fake(it) for it in train_items if it.label == 0]
    moved = cfg.p_online_fake * float(np.mean(fakeable)) if maker is not None else 0.0
    # Balance the classes when the corpora are not balanced: in the loss (images), or by
    # drawing the smaller class again each epoch (audio: one real utterance faces several
    # resyntheses of itself, and each draw is a different random chunk).
    if cfg.balance:
        pos_weight = torch.tensor((1 - moved) / (1 + moved))
        epoch_size = 2 * max(int((y_train == 0).sum()), int((y_train == 1).sum()))
    else:
        n_real = (y_train == 0).sum() * (1 - moved)
        n_syn = (y_train == 1).sum() + (y_train == 0).sum() * moved
        pos_weight = torch.tensor(n_real / max(1.0, n_syn))
        epoch_size = len(train_items)

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, epoch_size // cfg.batch_size)
    # A one-class output's logits have a scale fixed by design (a scaled cosine), so a
    # few confident mistakes swamp its raw validation loss while the ranking still
    # improves (0.44 -> 0.50 at validation AUC 0.967 -> 0.969): epochs are judged by the
    # loss of the logits tempered as calibration will temper them.
    tempered = getattr(model.config, "output", "linear") == "oneclass"
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr * 0.05
    )
    # The weights validated, kept and saved: the running average when there is one.
    ema = _weight_average(model, ema_decay(cfg.ema_decay, steps_per_epoch))
    judged = ema.module if ema is not None else model
    rng = np.random.default_rng(cfg.seed)
    state_path = out / STATE
    start_epoch, best_loss, best_state, bad_epochs, history = 0, float("inf"), None, 0, []
    fingerprint = {
        "train": to_dict(cfg),
        "model": model_config_dict(model),
        "corpora": [str(Path(c).resolve()) for c in corpora],
    }
    if init is not None:  # absent otherwise: runs saved before this field still resume
        fingerprint["init_from"] = init
    if resume and state_path.exists():
        saved = torch.load(state_path, weights_only=False)  # our own file, written below
        if saved["fingerprint"] == fingerprint:
            model.load_state_dict(saved["model"])
            if ema is not None:
                ema.load_state_dict(saved["ema"])
            opt.load_state_dict(saved["opt"])
            sched.load_state_dict(saved["sched"])
            rng.bit_generator.state = saved["rng"]
            torch.set_rng_state(saved["torch_rng"])
            start_epoch, best_loss = saved["epoch"] + 1, saved["best_loss"]
            best_state, bad_epochs, history = (
                saved["best_state"],
                saved["bad_epochs"],
                saved["history"],
            )
            progress("resume", start_epoch, cfg.epochs, {})

    t0 = time.perf_counter() - (history[-1]["elapsed_s"] if history else 0.0)
    for epoch in range(start_epoch, cfg.epochs):
        if bad_epochs >= cfg.patience:
            break
        model.train()
        order = _epoch_order(y_train, rng) if cfg.balance else rng.permutation(len(train_items))
        losses = []
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            labels = y_train[idx].copy()
            examples = []
            for j, i in enumerate(idx):
                media, item = train_px[i], train_items[i]
                if (
                    maker is not None
                    and labels[j] == 0
                    and task.can_fake(item)
                    and rng.random() < cfg.p_online_fake
                ):
                    media, item = _online_item(maker(media, rng), item)
                    labels[j] = 1
                examples.append(task.example(media, item, rng))
            y = torch.from_numpy(labels).float()
            loss = task.loss(model, examples, y, pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(loss.item())
            progress(
                f"epoch {epoch + 1}/{cfg.epochs}",
                b + 1,
                steps_per_epoch,
                {"loss": float(np.mean(losses[-20:]))},
            )
        val_logits = task.logits(judged, val_px)
        val_loss = _val_loss(val_logits, y_val, balanced=cfg.balance, tempered=tempered)
        val_auc = binary_metrics(y_val, val_logits, threshold=0.0)["auc"]
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                "val_loss": val_loss,
                "val_auc": val_auc,
                "elapsed_s": round(time.perf_counter() - t0, 1),
            }
        )
        progress("validation", epoch + 1, cfg.epochs, {"val_loss": val_loss, "val_auc": val_auc})
        if val_loss < best_loss - 1e-4:
            best_loss, best_state, bad_epochs = val_loss, copy.deepcopy(judged.state_dict()), 0
        else:
            bad_epochs += 1
        tmp = state_path.with_suffix(".tmp")
        torch.save(
            {
                "fingerprint": fingerprint,
                "model": model.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch,
                "best_loss": best_loss,
                "best_state": best_state,
                "bad_epochs": bad_epochs,
                "history": history,
            },
            tmp,
        )
        tmp.replace(state_path)  # atomic: a crash mid-write keeps the previous epoch
    train_seconds = time.perf_counter() - t0
    if ema is not None:
        model = ema.module
    if best_state is not None:
        model.load_state_dict(best_state)

    val_logits = task.logits(model, val_px)
    cal = calibrate(val_logits, y_val)
    test_metrics = evaluate_items(task, model, cal, test_items)
    card = _card(
        task,
        model,
        cfg,
        cal,
        corpora,
        train_items,
        val_items,
        test_items,
        test_metrics,
        binary_metrics(y_val, cal.probability(val_logits), threshold=cal.threshold),
        history,
        train_seconds,
    )
    if init is not None:
        card["init_from"] = init
    save_model(model, card, out)
    return TrainResult(out_dir=out, card=card, history=history)


def _online_item(made: Any, item: Item) -> tuple[Any, Item]:
    """A maker's fake and the item it now is: synthetic, of no corpus generator, with the
    synthetic part when the maker says which it is (an object with ``media`` and
    ``segments``, as ``generators.audio.online_splice`` gives)."""
    segments = getattr(made, "segments", None)
    media = made.media if segments is not None else made
    fake = replace(item, label=1, generator="online", family="online", segments=segments)
    return media, fake


def _initial_model(
    folder: str | Path, task_cls: type[Task], overrides: dict[str, Any]
) -> tuple[torch.nn.Module, dict[str, str]]:
    """The network of a trained model folder, with its weights, to fine-tune from."""
    from detector.identity import model_identity

    model, card = load_model(folder)
    refuse_ensemble(card, folder, "fine-tune its members and combine them again")
    modality = card.get("modality", "image")
    if modality != task_cls.modality or card.get("architecture") != task_cls.architecture:
        raise ValueError(
            f"cannot fine-tune the {task_cls.modality} detector from {folder}: that model "
            f"judges {modality} ({card.get('architecture')})"
        )
    have = model_config_dict(model)
    config = model.config
    resolved = to_dict(from_dict(type(config), overrides, base=config))  # unknown keys: error
    conflicts = sorted(k for k in overrides if resolved[k] != have[k])
    if conflicts:
        detail = ", ".join(f"{k}: model has {have[k]!r}, asked {resolved[k]!r}" for k in conflicts)
        raise ValueError(
            f"model overrides conflict with the model fine-tuned from ({detail}); its "
            "architecture is kept: drop them, or train from scratch"
        )
    ident = model_identity(folder, modality=modality)
    model.train()
    return model, {"path": str(ident.folder), "name": ident.name, "version": ident.version}


# The weight average spans at most this many epochs (its time constant, 1 / (1 - decay)
# steps): a small corpus has few steps an epoch, and a per-step decay meant for the
# default corpus (0.99 over its 24 steps an epoch: about 4 epochs) would there still
# hold the random initial weights at the end of the run.
EMA_MAX_EPOCHS = 5.0


def ema_decay(decay: float, steps_per_epoch: int) -> float:
    """The per-step decay a run uses: ``decay``, capped at ``EMA_MAX_EPOCHS`` epochs."""
    if decay == 0.0:
        return 0.0
    return min(decay, 1.0 - 1.0 / (EMA_MAX_EPOCHS * steps_per_epoch))


def _weight_average(
    model: torch.nn.Module, decay: float
) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``model``'s weights and buffers (batch-norm
    statistics included), updated after each optimizer step; None when ``decay`` is 0."""
    if decay == 0.0:
        return None
    swa = torch.optim.swa_utils
    return swa.AveragedModel(model, multi_avg_fn=swa.get_ema_multi_avg_fn(decay), use_buffers=True)


def _epoch_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every item of the larger class once, the smaller class drawn up to the same count."""
    real, syn = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    small, large = (real, syn) if len(real) < len(syn) else (syn, real)
    extra = rng.choice(small, size=len(large) - len(small), replace=True)
    return rng.permutation(np.concatenate([large, small, extra]))


def _val_loss(
    logits: np.ndarray, y: np.ndarray, *, balanced: bool, tempered: bool = False
) -> float:
    """Validation cross-entropy (each class weighted alike when ``balanced``); with
    ``tempered``, of the logits divided by the temperature that fits them best."""
    if tempered:
        logits = logits / fit_temperature(logits, y)
    losses = F.binary_cross_entropy_with_logits(
        torch.from_numpy(logits), torch.from_numpy(y).double(), reduction="none"
    ).numpy()
    if not balanced:
        return float(losses.mean())
    return float(np.mean([losses[y == c].mean() for c in (0, 1) if (y == c).any()]))


def evaluate_items(
    task: Task,
    model: torch.nn.Module,
    cal: Calibration,
    items: Sequence[Item],
    *,
    media: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Metrics overall and per generator (each generator against all real items)."""
    if not items:
        return {}
    px = media if media is not None else task.load(items)
    logits = task.logits(model, px)
    probs = cal.probability(logits)
    y = np.array([it.label for it in items])
    result = {"overall": binary_metrics(y, probs, threshold=cal.threshold), "per_generator": {}}
    real = y == 0
    for gen in sorted({it.generator for it in items if it.label == 1}):
        m = real | np.array([it.generator == gen for it in items])
        result["per_generator"][gen] = binary_metrics(y[m], probs[m], threshold=cal.threshold)
    return result


def generator_counts(items: Sequence[Item]) -> dict[str, int]:
    """Items per generator ("real" for the real ones), as a card records split sizes."""
    return dict(sorted(Counter(it.generator for it in items).items()))


def library_versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
    }


def _card(
    task,
    model,
    cfg,
    cal,
    corpora,
    train_items,
    val_items,
    test_items,
    test_metrics,
    val_metrics,
    history,
    seconds,
) -> dict[str, Any]:
    return {
        "modality": task.modality,
        "architecture": task.architecture,
        "model_config": model_config_dict(model),
        "train_config": to_dict(cfg),
        "corpora": [str(Path(c).resolve()) for c in corpora],
        "generators": sorted({it.generator for it in train_items if it.label == 1}),
        "families": sorted({it.family for it in train_items if it.label == 1}),
        "split_sizes": {
            "train": generator_counts(train_items),
            "val": generator_counts(val_items),
            "test": generator_counts(test_items),
        },
        "calibration": asdict(cal),
        "metrics": {"val": val_metrics, "test": test_metrics},
        "history": history,
        "training_seconds": round(seconds, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
