"""Training the video detector: a face model by the image training path, then the video
rule calibrated on validation videos.

1. Face crops are cut from every clip of the video corpora (``detector.data.faces``):
   an image corpus next to each video corpus.
2. The image trainer trains the face model on them (augmentation on both classes,
   H.264 recompression included; early stopping; temperature and threshold on
   validation crops), into ``<out>/face``.
3. The voice model (the shipped one unless told otherwise) is copied into
   ``<out>/voice``: a video model folder is self-contained.
4. Every validation video is scored; the visual and voice logits each get a logistic
   map fitted on validation videos (the visual one against "a face was changed", the
   voice one against "the voice was changed"), and the threshold and uncertain band of
   the video logit (the larger of the two) are chosen on validation videos. Test
   videos are then measured, overall and per generator.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detector.config import check_preset, to_dict
from detector.data.corpus import Item, read_items, select
from detector.data.faces import FaceCropConfig, extract_face_corpus
from detector.eval.calibration import calibrate
from detector.eval.metrics import binary_metrics
from detector.identity import default_model_dir
from detector.inference.video import Affine, VideoDetector, VideoEvidence, VideoScoringConfig
from detector.models.checkpoint import WEIGHTS
from detector.train.trainer import TrainResult, train_detector

ProgressFn = Callable[[str, int, int, dict[str, float]], None]
VOICE_FAMILIES = ("voice_swap",)  # generator families that change the voice, not the faces

# The face model: whole-face context at a size the CPU trains in minutes.
# Random 112 crops of the 128 face crops: the whole face with its blending seams, a
# little jitter. The image chain's rescale (0.5-1.5x) would leave half a face padded
# out to the input, so faces get a milder one.
# The face model sees the NPR residual alone (no RGB): with the colours it learns the
# people of the training clips faster than the swaps (on corpora/video-default, the
# validation face-crop AUC of its first epochs was 0.64-0.73 with RGB, 0.72-0.82 without).
FACE_MODEL = {
    "default": {"input_size": 112, "keep_rgb": False},
    "tiny": {"input_size": 32, "keep_rgb": False},
}
# Face crops are resized out of the frame, so their pixel grid has no phase to keep: any
# crop offset (the shipped face model's training).
_FACE_AUGMENT = {
    "p_h264": 0.3,
    "p_rescale": 0.3,
    "rescale": (0.85, 1.2),
    "p_jpeg": 0.3,
    "crop_align": 1,
    "p_degrade": 0.0,  # a 0.4-0.8x downscale would leave most of the input padding
}
# Online fakes for faces are self-blends of the real crops (never the image task's
# untrained decoders: a face swap leaves a blend, not an up-sampled picture). Off by
# default: on corpora/video-default, 0.3 took validation video AUC from 0.918 to 0.939
# but test from 0.908 to 0.899, and leave-one-out from 0.831 to 0.836 (6 epochs).
_FACE_ONLINE = 0.0
FACE_TRAIN = {
    # no weight average: not measured on faces, the shipped face model has none
    "default": {
        "epochs": 30,
        "patience": 8,
        "batch_size": 64,
        "ema_decay": 0.0,
        "augment": _FACE_AUGMENT,
        "p_online_fake": _FACE_ONLINE,
    },
    "tiny": {"augment": _FACE_AUGMENT, "p_online_fake": _FACE_ONLINE},
}


def train_video_detector(
    corpora: Sequence[str | Path],
    out_dir: str | Path,
    *,
    preset: str = "default",
    model_overrides: dict[str, Any] | None = None,
    train_overrides: dict[str, Any] | None = None,
    voice_model: str | Path | None = None,
    crop: FaceCropConfig | None = None,
    resume: bool = True,
    on_progress: ProgressFn | None = None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train, calibrate on validation videos, measure on test videos; write the model
    folder (``model.safetensors`` = the face model, ``card.json``, ``face/``, ``voice/``).

    ``voice_model``: a voice model folder, ``None`` for the shipped one, or ``"none"``
    for a video model that judges frames only. ``init_from``: a video model folder whose
    face model is fine-tuned (see ``train_detector``) rather than trained from scratch.
    """
    check_preset(preset)
    progress = on_progress or (lambda *_a: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    crop = crop or FaceCropConfig.preset(preset)
    faces = [extract_face_corpus(c, config=crop, on_progress=progress) for c in corpora]
    model_cfg = {**FACE_MODEL[preset], **(model_overrides or {})}
    train_cfg = _merge(FACE_TRAIN[preset], train_overrides or {})
    t0 = time.perf_counter()
    init = None
    if init_from is not None:
        init = face_model_folder(init_from, out / "init-face")
        model_cfg = dict(model_overrides or {})  # the fine-tuned network keeps its shape
    if "self_blend" in train_cfg.get("exclude_families", ()):
        train_cfg["p_online_fake"] = 0.0  # held out: no self-blends made on the fly either
    from generators.video.selfblend import self_blended_crop

    online_fake = functools.partial(self_blended_crop, margin=crop.margin)
    face = train_detector(
        faces,
        out / "face",
        modality="image",
        preset=preset,
        model_overrides=model_cfg,
        train_overrides=train_cfg,
        resume=resume,
        on_progress=on_progress,
        init_from=init,
        online_fake=online_fake,
    )
    _copy_voice(voice_model, out / "voice")
    shutil.copyfile(out / "face" / "model.safetensors", out / "model.safetensors")
    excluded = tuple(train_cfg.get("exclude_families", ()))
    scoring = VideoScoringConfig(crop=crop)
    card: dict[str, Any] = {
        "modality": "video",
        "architecture": "video_faces",
        "face": {k: face.card[k] for k in _FACE_KEYS},
        "scoring": to_dict(scoring),
        "aggregation": {},
        "calibration": {  # replaced below, once validation videos are scored
            "temperature": 1.0,
            "threshold": 0.5,
            "uncertain_low": 0.5,
            "uncertain_high": 0.5,
            "val_eer": 0.0,
        },
        "corpora": [str(Path(c).resolve()) for c in corpora],
        "voice_model": _voice_identity(out / "voice"),
    }
    _write_card(out, card)
    det = VideoDetector.from_folder(out)
    items = read_items(corpora, modality="video")
    val = select(items, split="val", exclude_families=excluded)
    test = select(items, split="test")
    for name, part in (("validation", val), ("test", test)):
        if len({it.label for it in part}) < 2:
            raise ValueError(f"the {name} split needs real and synthetic videos")
    val_ev = score_videos(det, val, progress, "score validation videos")
    visual_map, voice_map = fit_maps(
        val,
        val_ev,
        visual_default=own_map(face.card["calibration"]),
        voice_default=own_map(det.voice.card["calibration"]) if det.voice else Affine(),
    )
    det.visual_map, det.voice_map = visual_map, voice_map
    y_val = np.array([it.label for it in val])
    z_val = np.array([det.video_logit(e) for e in val_ev])
    cal = calibrate(z_val, y_val)
    det.calibration = cal
    test_ev = score_videos(det, test, progress, "score test videos")
    z_test = np.array([det.video_logit(e) for e in test_ev])
    card["aggregation"] = {
        "rule": "max(visual, voice) after a logistic map of each; visual = mean of the top "
        f"{scoring.top_fraction:g} of frame logits",
        "visual": {"a": visual_map.a, "b": visual_map.b},
        "voice": {"a": voice_map.a, "b": voice_map.b},
    }
    card["calibration"] = {
        "temperature": cal.temperature,
        "threshold": cal.threshold,
        "uncertain_low": cal.uncertain_low,
        "uncertain_high": cal.uncertain_high,
        "val_eer": cal.val_eer,
    }
    card["generators"] = sorted({it.generator for it in select(items, split="train",
                                 exclude_families=excluded) if it.label})  # fmt: skip
    card["families"] = sorted({it.family for it in items if it.label and it.family not in excluded})
    card["split_sizes"] = {s: _counts(select(items, split=s)) for s in ("train", "val", "test")}
    card["metrics"] = {
        "val": binary_metrics(y_val, cal.probability(z_val), threshold=cal.threshold),
        "test": video_metrics(test, cal.probability(z_test), cal.threshold),
        "test_frames": face.card["metrics"]["test"],  # per face crop: the per-frame view
    }
    card["training_seconds"] = round(time.perf_counter() - t0, 1)
    card["created"] = face.card["created"]
    card["versions"] = face.card["versions"]
    _write_card(out, card)
    return TrainResult(out_dir=out, card=card, history=face.history)


_FACE_KEYS = (
    "architecture",
    "model_config",
    "train_config",
    "calibration",
    "generators",
    "families",
    "split_sizes",
    "metrics",
)


def face_model_folder(video_model: str | Path, scratch: Path) -> Path:
    """The face model of a video model folder as an image model folder: its ``face/``
    when it has one, else one written to ``scratch`` from its card's ``face`` part and
    its weights (a shipped or stored video model keeps only those)."""
    folder = Path(video_model)
    card = json.loads((folder / "card.json").read_text())
    if card.get("modality") != "video" or "face" not in card:
        raise ValueError(f"{folder} is not a video model (its card has no face model)")
    if (folder / "face" / "card.json").is_file() and (folder / "face" / WEIGHTS).is_file():
        return folder / "face"
    scratch.mkdir(parents=True, exist_ok=True)
    face = {**card["face"], "modality": "image"}
    if card.get("version"):
        face["version"] = card["version"]
    (scratch / "card.json").write_text(json.dumps(face, indent=2) + "\n")
    shutil.copyfile(folder / WEIGHTS, scratch / WEIGHTS)
    return scratch


def score_videos(
    det: VideoDetector, items: Sequence[Item], progress: ProgressFn, stage: str
) -> list[VideoEvidence]:
    out = []
    for k, it in enumerate(items):
        out.append(det.evidence(it.path))
        progress(stage, k + 1, len(items), {})
    return out


def own_map(calibration: dict[str, Any]) -> Affine:
    """A model's own calibration as a map: its calibrated logit, zero at its threshold."""
    thr = min(max(calibration["threshold"], 1e-6), 1 - 1e-6)
    return Affine(a=1.0 / calibration["temperature"], b=-float(np.log(thr / (1 - thr))))


def fit_maps(
    items: Sequence[Item],
    evidence: Sequence[VideoEvidence],
    *,
    visual_default: Affine,
    voice_default: Affine,
) -> tuple[Affine, Affine]:
    """Logistic maps of the visual logit (target: a face was changed) and of the voice
    logit (target: the voice was changed), fitted on validation videos. Where the
    validation videos cannot fit one (a single class, or a fit that does not rise with
    the logit), the model's own calibration is kept (``own_map``)."""
    visual_y = np.array([int(it.label == 1 and it.family not in VOICE_FAMILIES) for it in items])
    visual_x = np.array([e.visual for e in evidence])
    voiced = [(it, e) for it, e in zip(items, evidence, strict=True) if e.voice is not None]
    voice_y = np.array([int(it.label == 1 and it.family in VOICE_FAMILIES) for it, _e in voiced])
    voice_x = np.array([e.voice for _it, e in voiced])
    return (
        _logistic(visual_x, visual_y, visual_default),
        _logistic(voice_x, voice_y, voice_default),
    )


def _logistic(x: np.ndarray, y: np.ndarray, default: Affine) -> Affine:
    if len(set(y.tolist())) < 2:
        return default
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=10.0, class_weight="balanced").fit(x.reshape(-1, 1), y)
    a = float(lr.coef_[0, 0])
    return Affine(a=a, b=float(lr.intercept_[0])) if a > 0 else default


def video_metrics(items: Sequence[Item], probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """Video-level metrics overall, per generator and per family (each against all real)."""
    y = np.array([it.label for it in items])
    result: dict[str, Any] = {
        "overall": binary_metrics(y, probs, threshold=threshold),
        "per_generator": {},
        "per_family": {},
    }
    for key, attr in (("per_generator", "generator"), ("per_family", "family")):
        for name in sorted({getattr(it, attr) for it in items if it.label == 1}):
            m = (y == 0) | np.array([getattr(it, attr) == name for it in items])
            result[key][name] = binary_metrics(y[m], probs[m], threshold=threshold)
    return result


def _counts(items: Sequence[Item]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for it in items:
        counts[it.generator] = counts.get(it.generator, 0) + 1
    return dict(sorted(counts.items()))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _copy_voice(voice_model: str | Path | None, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    if voice_model is not None and str(voice_model) == "none":
        return
    src = Path(voice_model) if voice_model is not None else default_model_dir("audio")
    card = json.loads((src / "card.json").read_text())
    if card.get("modality") != "audio":
        raise ValueError(f"{src} is not a voice model (its card says {card.get('modality')!r})")
    dest.mkdir(parents=True)
    for name in ("card.json", "model.safetensors"):
        shutil.copyfile(src / name, dest / name)


def _voice_identity(folder: Path) -> dict[str, str] | None:
    if not (folder / "card.json").is_file():
        return None
    from detector.identity import model_identity

    ident = model_identity(folder, modality="audio")
    return {"name": ident.name, "version": ident.version}


def _write_card(out: Path, card: dict[str, Any]) -> None:
    tmp = out / "card.json.tmp"
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    tmp.replace(out / "card.json")
