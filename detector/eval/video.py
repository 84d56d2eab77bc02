"""Evaluating a video detector: per video and per frame, leave one family out, robustness
to recompression and downscaling, and the shortcut audit.

The report has the image and voice reports' shape (``overall``, ``per_generator``,
``per_family``, ``robustness``, ``leave_one_out``, ``shortcut_audit``), so the same
summary and plots serve; ``frames`` adds the per-frame (face crop) metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detector.data.corpus import Item, read_items, select
from detector.eval.audit import shortcut_auc
from detector.eval.metrics import binary_metrics
from detector.inference.video import VideoDetector
from detector.train.video import video_metrics

ProgressFn = Callable[[str, int, int, dict[str, float]], None]


def _recompress(crf: int, scale: float = 1.0) -> Callable[[Path, Path], None]:
    """Decode a video, optionally downscale it, and encode it again (H.264 at ``crf``)."""

    def apply(src: Path, dest: Path) -> None:
        from PIL import Image

        from detector.media.video import VideoClip, encode_video, load_clip

        clip = load_clip(src)
        frames = clip.frames
        if scale != 1.0:
            h, w = frames.shape[1:3]
            size = (max(2, round(w * scale)), max(2, round(h * scale)))
            frames = np.stack(
                [np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BICUBIC))
                 for f in frames]
            )  # fmt: skip
        out = VideoClip(frames, clip.fps, audio=clip.audio, sample_rate=clip.sample_rate)
        dest.write_bytes(encode_video(out, crf=crf))

    return apply


VIDEO_PERTURBATIONS: dict[str, Callable[[Path, Path], None]] = {
    "h264_crf35": _recompress(35),
    "h264_crf40": _recompress(40),
    "downscale_0.5": _recompress(23, 0.5),
    "downscale_0.5+crf35": _recompress(35, 0.5),
}


def video_probs(
    det: VideoDetector, paths: Sequence[Path], progress: ProgressFn, stage: str
) -> np.ndarray:
    logits = []
    for k, p in enumerate(paths):
        logits.append(det.video_logit(det.evidence(p)))
        progress(stage, k + 1, len(paths), {})
    return det.calibration.probability(np.array(logits))


def family_metrics(
    det: VideoDetector, items: Sequence[Item], probs: np.ndarray
) -> dict[str, dict[str, Any]]:
    y = np.array([it.label for it in items])
    out = {}
    for fam in sorted({it.family for it in items if it.label == 1}):
        m = (y == 0) | np.array([it.family == fam for it in items])
        out[fam] = binary_metrics(y[m], probs[m], threshold=det.calibration.threshold)
    return out


def evaluate_video(
    det: VideoDetector,
    model: str | Path | None,
    corpora: Sequence[str | Path],
    out: Path,
    *,
    leave_one_out: bool,
    robustness: bool,
    loo_preset: str,
    loo_overrides: dict[str, Any],
    progress: ProgressFn,
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The report and the ROC curves to plot."""
    items = read_items(corpora, modality="video")
    test = select(items, split="test")
    if len({it.label for it in test}) < 2:
        raise ValueError("the test split needs real and synthetic videos")
    y = np.array([it.label for it in test])
    thr = det.calibration.threshold
    probs = video_probs(det, [it.path for it in test], progress, "score test videos")
    report: dict[str, Any] = {
        "model": {"name": det.name, "version": det.version, "path": str(model or "default")},
        "modality": "video",
        "corpora": [str(Path(c).resolve()) for c in corpora],
        **video_metrics(test, probs, thr),  # overall, per_generator, per_family
        "frames": det.card.get("face", {}).get("metrics", {}).get("test", {}),
    }
    curves = {"all": (y, probs)}
    for name in report["per_generator"]:
        m = (y == 0) | np.array([it.generator == name for it in test])
        curves[name] = (y[m], probs[m])
    report["shortcut_audit"] = video_shortcut_audit(select(items, split="train"), test)

    if robustness:
        report["robustness"] = {"none": report["overall"]["auc"]}
        report["robustness_eer"] = {"none": report["overall"]["eer"]}
        tmp = out / "perturbed"
        tmp.mkdir(parents=True, exist_ok=True)
        for name, fn in VIDEO_PERTURBATIONS.items():
            paths = []
            for k, it in enumerate(test):
                dest = tmp / f"{k:05d}.mp4"
                fn(it.path, dest)
                paths.append(dest)
            m = binary_metrics(y, video_probs(det, paths, progress, f"robustness {name}"),
                               threshold=thr)  # fmt: skip
            report["robustness"][name] = m["auc"]
            report["robustness_eer"][name] = m["eer"]
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()

    if leave_one_out:
        report["leave_one_out"] = _leave_one_out(
            det, corpora, test, probs, out, loo_preset, loo_overrides, progress
        )
    return report, curves


def _leave_one_out(
    det: VideoDetector,
    corpora: Sequence[str | Path],
    test: Sequence[Item],
    probs: np.ndarray,
    out: Path,
    preset: str,
    overrides: dict[str, Any],
    progress: ProgressFn,
) -> dict[str, Any]:
    """For each family: a video model trained (face model and calibration) without it,
    measured on it. The voice model is the one in the evaluated model's folder."""
    from detector.eval.evaluate import loo_summary
    from detector.train.video import train_video_detector

    families = sorted({it.family for it in test if it.label == 1})
    matrix = {"(none)": {f: m["auc"] for f, m in family_metrics(det, test, probs).items()}}
    held_out: dict[str, float | None] = {}
    held_out_eer: dict[str, float | None] = {}
    voice = det.folder / "voice" if det.folder is not None else None
    for k, fam in enumerate(families):
        run_dir = out / "leave_one_out" / fam
        train_video_detector(
            corpora,
            run_dir,
            preset=preset,
            train_overrides=dict(overrides, exclude_families=[fam]),
            voice_model=voice if voice is not None and voice.is_dir() else "none",
            on_progress=lambda s, d, t, m, fam=fam: progress(f"LOO {fam}: {s}", d, t, m),
        )
        loo = VideoDetector.from_folder(run_dir)
        loo_probs = video_probs(loo, [it.path for it in test], progress, f"LOO {fam}: test")
        per_family = family_metrics(loo, test, loo_probs)
        matrix[fam] = {f: m["auc"] for f, m in per_family.items()}
        held_out[fam] = per_family[fam]["auc"]
        held_out_eer[fam] = per_family[fam]["eer"]
        progress("leave one out", k + 1, len(families), {})
    return loo_summary(families, held_out, held_out_eer, matrix)


def video_shortcut_audit(train: Sequence[Item], test: Sequence[Item]) -> dict[str, float | None]:
    """Test AUC of a classifier on one file fact alone: size in bytes, duration."""
    ytr = np.array([it.label for it in train])
    yte = np.array([it.label for it in test])
    out: dict[str, float | None] = {}
    for name, fact in (
        ("file_size_auc", lambda it: np.log(max(1, it.bytes))),
        ("duration_auc", lambda it: it.duration_s or 0.0),
    ):
        xtr = np.array([[fact(it)] for it in train], dtype=float)
        xte = np.array([[fact(it)] for it in test], dtype=float)
        out[name] = shortcut_auc(xtr, ytr, xte, yte)
    return out
