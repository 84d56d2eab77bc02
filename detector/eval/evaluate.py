"""``evaluate(model, corpora, out)``: metrics, leave-one-family-out, robustness, shortcut audit."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detector.data.corpus import Item, read_items, select
from detector.eval.audit import audio_shortcut_audit, shortcut_audit
from detector.eval.localisation import localisation
from detector.eval.metrics import binary_metrics
from detector.eval.plots import histogram_plot, matrix_plot, roc_plot
from detector.eval.robustness import perturbations
from detector.inference import Detector
from detector.train.tasks import load_media

ProgressFn = Callable[[str, int, int, dict[str, float]], None]


def _probs(det: Detector, media: Sequence[Any]) -> np.ndarray:
    return det.calibration.probability(det.logits(media))


def family_metrics(
    det: Detector, items: Sequence[Item], pixels: Sequence[Any]
) -> dict[str, dict[str, Any]]:
    """Metrics of each synthetic family against all the real items."""
    probs = _probs(det, pixels)
    y = np.array([it.label for it in items])
    out: dict[str, dict[str, Any]] = {}
    for fam in sorted({it.family for it in items if it.label == 1}):
        m = (y == 0) | np.array([it.family == fam for it in items])
        out[fam] = binary_metrics(y[m], probs[m], threshold=det.calibration.threshold)
    return out


def family_aucs(
    det: Detector, items: Sequence[Item], pixels: Sequence[Any]
) -> dict[str, float | None]:
    """AUC of each synthetic family against all the real items."""
    return {fam: m["auc"] for fam, m in family_metrics(det, items, pixels).items()}


def evaluate(
    model: str | Path | None,
    corpora: Sequence[str | Path],
    out_dir: str | Path,
    *,
    leave_one_out: bool = False,
    robustness: bool = False,
    modality: str = "image",
    loo_preset: str = "default",
    loo_overrides: dict[str, Any] | None = None,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Evaluate on the corpora's test split; write metrics.json, PNG plots and summary.md.

    ``modality`` only picks the shipped model when ``model`` is None; a model folder's
    card says what it judges. Leave-one-out trains the evaluated model's own design once
    per family: its card's ``model_config`` and ``train_config`` (the ``loo_preset``
    where the card records no training), with ``loo_overrides`` on top.
    """
    progress = on_progress or (lambda *_a: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    det = Detector.load(model, modality=modality)
    if det.modality == "video":
        from detector.eval.video import evaluate_video

        report, curves = evaluate_video(
            det,  # type: ignore[arg-type]
            model,
            corpora,
            out,
            leave_one_out=leave_one_out,
            robustness=robustness,
            loo_preset=loo_preset,
            loo_overrides=loo_overrides or {},
            progress=progress,
        )
        return _write_report(report, curves, out)
    items = read_items(corpora, modality=det.modality)
    test = select(items, split="test")
    if len({it.label for it in test}) < 2:
        raise ValueError("the test split needs real and synthetic items")
    progress("score test", 0, 1, {})
    test_px = load_media(det.modality, test)
    probs = _probs(det, test_px)
    y = np.array([it.label for it in test])
    thr = det.calibration.threshold
    report: dict[str, Any] = {
        "model": {"name": det.name, "version": det.version, "path": str(model or "default")},
        "modality": det.modality,
        "corpora": [str(Path(c).resolve()) for c in corpora],
        "overall": binary_metrics(y, probs, threshold=thr),
        "per_generator": {},
        "per_family": {},
    }
    curves = {"all": (y, probs)}
    for key, attr in (("per_generator", "generator"), ("per_family", "family")):
        for name in sorted({getattr(it, attr) for it in test if it.label == 1}):
            m = (y == 0) | np.array([getattr(it, attr) == name for it in test])
            report[key][name] = binary_metrics(y[m], probs[m], threshold=thr)
            if key == "per_generator":
                curves[name] = (y[m], probs[m])
    progress("score test", 1, 1, {})

    train = select(items, split="train")
    if det.modality == "audio":
        report["shortcut_audit"] = audio_shortcut_audit(train, test)
        located = localisation(det, test)
        if located is not None:
            report["localisation"] = located
    else:
        report["shortcut_audit"] = shortcut_audit(
            [it.bytes for it in train],
            load_media("image", train),
            np.array([it.label for it in train]),
            [it.bytes for it in test],
            test_px,
            y,
        )

    if robustness:
        report["robustness"] = {"none": report["overall"]["auc"]}
        report["robustness_eer"] = {"none": report["overall"]["eer"]}
        sweep = perturbations(det.modality)
        for k, (name, fn) in enumerate(sweep.items()):
            rng = np.random.default_rng(k)
            perturbed = [fn(p, rng) for p in test_px]
            m = binary_metrics(y, _probs(det, perturbed), threshold=thr)
            report["robustness"][name] = m["auc"]
            report["robustness_eer"][name] = m["eer"]
            progress("robustness", k + 1, len(sweep), {})

    if leave_one_out:
        report["leave_one_out"] = _leave_one_out(
            det, corpora, test, test_px, out, loo_preset, loo_overrides or {}, progress
        )

    return _write_report(report, curves, out)


def _write_report(
    report: dict[str, Any], curves: dict[str, tuple[np.ndarray, np.ndarray]], out: Path
) -> dict[str, Any]:
    """metrics.json, the ROC curves, the score histogram, the leave-one-out matrix and
    summary.md."""
    (out / "metrics.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    roc_plot(curves, out / "roc.png")
    y, probs = curves["all"]
    histogram_plot(y, probs, report["overall"]["threshold"], out / "scores.png")
    if "leave_one_out" in report:
        loo = report["leave_one_out"]
        rows, cols = list(loo["matrix"]), loo["families"]
        matrix_plot(
            rows,
            cols,
            np.array(
                [
                    [np.nan if loo["matrix"][r][c] is None else loo["matrix"][r][c] for c in cols]
                    for r in rows
                ]
            ),
            out / "leave_one_out.png",
        )
    (out / "summary.md").write_text(summary_markdown(report))
    return report


def own_training(card: dict[str, Any]) -> dict[str, Any]:
    """The training a card records (augmentation, loss, budget), as overrides for a
    leave-one-out run of the same design; empty for a card without one."""
    return {k: v for k, v in (card.get("train_config") or {}).items() if k != "exclude_families"}


def progress_for(progress: ProgressFn, prefix: str) -> ProgressFn:
    return lambda s, d, t, m: progress(f"{prefix}: {s}", d, t, m)


def _ensemble_without(card, fam, corpora, run_dir, preset, overrides, progress) -> None:
    """An ensemble of the same design without ``fam``: each member's design trained
    without it (in ``run_dir/members/K``, resumable as any training), then combined and
    calibrated on the validation split without it."""
    from detector.train.ensemble import build_ensemble, member_training
    from detector.train.trainer import train_detector

    members = card["model_config"]["members"]
    folders = []
    for k, member in enumerate(members):
        folder = run_dir / "members" / str(k)
        train_detector(
            corpora,
            folder,
            modality=card["modality"],
            preset=preset,
            model_overrides=member["model_config"],
            train_overrides=member_training(member, {**overrides, "exclude_families": [fam]}),
            on_progress=progress_for(progress, f"member {k}"),
        )
        folders.append(folder)
    build_ensemble(folders, corpora, run_dir, weights=[m["weight"] for m in members],
                   exclude_families=[fam], on_progress=progress)  # fmt: skip


def _leave_one_out(det, corpora, test, test_px, out, preset, overrides, progress) -> dict[str, Any]:
    from detector.train.trainer import train_detector

    families = sorted({it.family for it in test if it.label == 1})
    matrix: dict[str, dict[str, float | None]] = {"(none)": family_aucs(det, test, test_px)}
    held_out: dict[str, float | None] = {}
    held_out_eer: dict[str, float | None] = {}
    for k, fam in enumerate(families):
        run_dir = out / "leave_one_out" / fam
        step = progress_for(progress, f"LOO {fam}")
        if det.card.get("architecture") == "ensemble":
            _ensemble_without(det.card, fam, corpora, run_dir, preset, overrides, step)
        else:
            train_detector(
                corpora,
                run_dir,
                modality=det.modality,
                preset=preset,
                model_overrides=det.card.get("model_config"),  # the evaluated model's design
                train_overrides={**own_training(det.card), **overrides, "exclude_families": [fam]},
                on_progress=step,
            )
        loo_det = Detector.load(run_dir)
        per_family = family_metrics(loo_det, test, test_px)
        matrix[fam] = {f: m["auc"] for f, m in per_family.items()}
        held_out[fam] = per_family[fam]["auc"]
        held_out_eer[fam] = per_family[fam]["eer"]
        progress("leave one out", k + 1, len(families), {})
    return loo_summary(families, held_out, held_out_eer, matrix)


def loo_summary(
    families: list[str],
    held_out: dict[str, float | None],
    held_out_eer: dict[str, float | None],
    matrix: dict[str, dict[str, float | None]],
) -> dict[str, Any]:
    """The leave-one-out report: per family held out, its AUC and EER, and their means."""
    aucs = [v for v in held_out.values() if v is not None]
    eers = [v for v in held_out_eer.values() if v is not None]
    return {
        "families": families,
        "held_out_auc": held_out,
        "mean_auc": float(np.mean(aucs)) if aucs else None,
        "held_out_eer": held_out_eer,
        "mean_eer": float(np.mean(eers)) if eers else None,
        "matrix": matrix,
    }


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def summary_markdown(report: dict[str, Any]) -> str:
    o = report["overall"]
    lines = [
        f"# Evaluation of {report['model']['name']} (version {report['model']['version']})",
        "",
        f"Test items: {o['n']} ({o['n_real']} real, {o['n_synthetic']} synthetic); "
        f"threshold {o['threshold']:.4f} chosen on validation data.",
        "",
        "| subset | AUC | AP | EER | accuracy | real acc. | synthetic acc. | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [("all", o), *report["per_generator"].items()]
    for name, m in rows:
        lines.append(
            f"| {name} | {_fmt(m['auc'])} | {_fmt(m['ap'])} | {_fmt(m['eer'])} | "
            f"{_fmt(m['accuracy'])} | {_fmt(m['real_accuracy'])} | "
            f"{_fmt(m['synthetic_accuracy'])} | {_fmt(m['ece'])} |"
        )
    a = report["shortcut_audit"]
    facts = ", ".join(f"{k.removesuffix('_auc').replace('_', ' ')} {_fmt(v)}" for k, v in a.items())
    lines += [
        "",
        f"Shortcut audit (test AUC of a classifier on one fact alone; 0.5 = no signal): {facts}.",
    ]
    if "localisation" in report:
        loc = report["localisation"]
        lines += [
            "",
            f"Localisation on {loc['n']} partially synthetic clips: the top segment overlaps "
            f"the synthetic part in {_fmt(loc['top_hit'])} of them; segment scores inside "
            f"against outside it, AUC {_fmt(loc['segment_auc'])}; segments "
            f"{_fmt(loc['mean_segment_s'])} s long on average.",
        ]
    if "robustness" in report:
        lines += ["", "| perturbation | AUC | EER |", "|---|---|---|"]
        eer = report.get("robustness_eer", {})
        lines += [
            f"| {k} | {_fmt(v)} | {_fmt(eer.get(k))} |" for k, v in report["robustness"].items()
        ]
    if "leave_one_out" in report:
        loo = report["leave_one_out"]
        lines += ["", "| family left out of training | AUC on it | EER on it |", "|---|---|---|"]
        eer = loo.get("held_out_eer", {})
        lines += [
            f"| {k} | {_fmt(v)} | {_fmt(eer.get(k))} |" for k, v in loo["held_out_auc"].items()
        ]
        lines += [f"| **mean** | {_fmt(loo['mean_auc'])} | {_fmt(loo.get('mean_eer'))} |"]
    return "\n".join(lines) + "\n"
