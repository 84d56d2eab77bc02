"""Where the evidence is: how well a voice model's timeline finds the synthetic part of
partially synthetic clips (the manifest's segments)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from detector.data.corpus import Item


def overlap_share(segment: dict[str, float], parts: Sequence[Sequence[float]]) -> float:
    """The share of a timeline segment that lies inside the synthetic parts."""
    a, b = segment["start_s"], segment["end_s"]
    inside = sum(max(0.0, min(b, end) - max(a, start)) for start, end in parts)
    return inside / max(b - a, 1e-9)


def localisation(det: Any, items: Sequence[Item]) -> dict[str, Any] | None:
    """On the spliced items: ``top_hit``, the share whose top segment overlaps the
    synthetic part; ``segment_auc``, how well segment scores tell segments that overlap
    it from those that do not (within the spliced clips); and the segments' mean length.
    None when no item has segments."""
    spliced = [it for it in items if it.label == 1 and it.segments]
    if not spliced:
        return None
    results = det.score([str(it.path) for it in spliced])
    hits, labels, scores, lengths = 0, [], [], []
    for it, res in zip(spliced, results, strict=True):
        if res.error is not None or not res.segments:
            continue
        assert it.segments is not None
        shares = [overlap_share(s, it.segments) for s in res.segments]
        hits += int(res.top_segment is not None and shares[res.top_segment] > 0)
        labels += [int(v > 0) for v in shares]
        scores += [s["score"] for s in res.segments]
        lengths += [s["end_s"] - s["start_s"] for s in res.segments]
    scored = len(set(labels)) == 2
    return {
        "n": len(spliced),
        "top_hit": hits / len(spliced),
        "segment_auc": float(roc_auc_score(labels, scores)) if scored else None,
        "mean_segment_s": float(np.mean(lengths)) if lengths else None,
    }
