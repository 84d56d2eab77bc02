"""Shortcut audit: can the file alone (size in bytes, format, JPEG quality) tell the classes?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from generators.corpus.manifest import ManifestRow


def _auc(labels: Sequence[int], values: Sequence[float]) -> float | None:
    y = np.asarray(labels)
    if len(set(y.tolist())) < 2:
        return None
    return float(roc_auc_score(y, np.asarray(values, dtype=float)))


def encoding_audit(rows: Sequence[ManifestRow]) -> dict[str, Any]:
    """AUCs of single file facts between real (0) and synthetic (1) items.

    0.5 means the fact carries no class information; JPEG quality and format are
    assigned label-blind, so they should sit near 0.5. File size also reflects
    image content (smooth generator output compresses better), so it is reported,
    not forced: the detector's own audit measures what it exploits.
    """
    if rows and rows[0].modality == "audio":
        return _audio_audit(rows)
    if rows and rows[0].modality == "video":
        return _video_audit(rows)
    y = [int(r.label == "synthetic") for r in rows]
    jpeg = [r for r in rows if r.format == "jpeg"]
    by_class: dict[str, Any] = {}
    for label in ("real", "synthetic"):
        sub = [r for r in rows if r.label == label]
        if not sub:
            continue
        by_class[label] = {
            "n": len(sub),
            "jpeg_share": round(sum(r.format == "jpeg" for r in sub) / len(sub), 4),
            "mean_jpeg_quality": round(
                float(np.mean([r.encoding["quality"] for r in sub if r.format == "jpeg"] or [0])), 2
            ),
            "sizes": sorted({f"{r.width}x{r.height}" for r in sub}),
            "mean_bytes": round(float(np.mean([r.bytes for r in sub])), 1),
        }
    return {
        "auc_format": _auc(y, [int(r.format == "jpeg") for r in rows]),
        "auc_jpeg_quality": _auc(
            [int(r.label == "synthetic") for r in jpeg], [r.encoding["quality"] for r in jpeg]
        ),
        "auc_dimensions": _auc(y, [r.width * r.height for r in rows]),
        "auc_file_bytes": _auc(y, [r.bytes for r in rows]),
        "by_class": by_class,
    }


def _audio_audit(rows: Sequence[ManifestRow]) -> dict[str, Any]:
    """The same question for clips: codec, bitrate, duration, file size.

    Codec and bitrate are assigned label-blind (near 0.5). Duration is 0.5 for
    copy-synthesis (same length as the real clip) but not for text-to-speech, whose
    sentences are its own: reported, and the detector's audit says what it exploits.
    """
    y = [int(r.label == "synthetic") for r in rows]
    lossy = [r for r in rows if r.encoding.get("bitrate_kbps")]
    by_class: dict[str, Any] = {}
    for label in ("real", "synthetic"):
        sub = [r for r in rows if r.label == label]
        if not sub:
            continue
        by_class[label] = {
            "n": len(sub),
            "formats": {
                f: sum(r.format == f for r in sub) for f in sorted({r.format for r in sub})
            },
            "mean_duration_s": round(float(np.mean([r.duration_s or 0 for r in sub])), 3),
            "mean_bytes": round(float(np.mean([r.bytes for r in sub])), 1),
        }
    return {
        "auc_format": _auc(y, [int(r.format != "flac") for r in rows]),
        "auc_bitrate": _auc(
            [int(r.label == "synthetic") for r in lossy],
            [r.encoding["bitrate_kbps"] for r in lossy],
        ),
        "auc_duration": _auc(y, [r.duration_s or 0.0 for r in rows]),
        "auc_file_bytes": _auc(y, [r.bytes for r in rows]),
        "by_class": by_class,
    }


def _video_audit(rows: Sequence[ManifestRow]) -> dict[str, Any]:
    """For video: the CRF, frame rate and size are the real clip's for every clip made
    from it (0.5 up to how many clips each generator drew from each real one); duration
    and file size are reported."""
    y = [int(r.label == "synthetic") for r in rows]
    by_class: dict[str, Any] = {}
    for label in ("real", "synthetic"):
        sub = [r for r in rows if r.label == label]
        if not sub:
            continue
        by_class[label] = {
            "n": len(sub),
            "mean_crf": round(float(np.mean([r.encoding["crf"] for r in sub])), 2),
            "mean_fps": round(float(np.mean([r.fps or 0 for r in sub])), 2),
            "mean_duration_s": round(float(np.mean([r.duration_s or 0 for r in sub])), 3),
            "with_audio": sum(bool(r.has_audio) for r in sub),
            "mean_bytes": round(float(np.mean([r.bytes for r in sub])), 1),
        }
    return {
        "auc_crf": _auc(y, [r.encoding["crf"] for r in rows]),
        "auc_fps": _auc(y, [r.fps or 0.0 for r in rows]),
        "auc_dimensions": _auc(y, [r.width * r.height for r in rows]),
        "auc_duration": _auc(y, [r.duration_s or 0.0 for r in rows]),
        "auc_file_bytes": _auc(y, [r.bytes for r in rows]),
        "by_class": by_class,
    }
