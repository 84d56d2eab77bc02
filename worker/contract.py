"""The result contract (DESIGN.md): what a client reads about one scan.

status (queued/running/done/failed/canceled), media facts, verdict (synthetic /
uncertain / authentic / not_applicable), calibrated score, model name and version,
where the evidence is, timings (queue, decode, model), and on failure an error code and
message. The evidence, by kind (the other kinds' fields are empty lists or null):

- image: ``crops`` ``[{box: [x, y, w, h], score}]`` and ``top_crop`` (an index);
- audio: ``segments`` ``[{start_s, end_s, score}]`` and ``top_segment``;
- video: ``frames``, the timeline of sampled frames ``[{t, score, faces: [{box, score}],
  whole_frame}]`` (``t`` in seconds, increasing; ``whole_frame``: no face was found and
  the frame was scored whole), ``top_frame`` (its most synthetic frame), ``segments`` and
  ``top_segment`` of its voice track (empty without one), and ``parts``: the calibrated
  score of each kind of evidence, ``{visual, voice}`` (``voice`` null without a voice
  track; the video's score is the larger). ``media`` has ``format`` (the container),
  ``codec``, ``width``, ``height`` (as displayed), ``fps``, ``duration_s``, ``rotation``
  and ``has_audio``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worker.db import Scan


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _ms(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a).total_seconds() * 1000, 3)


def scan_view(scan: Scan) -> dict[str, Any]:
    res = scan.result
    media: dict[str, Any] = {"sha256": scan.sha256, "kind": None, "format": None, "bytes": None}
    view: dict[str, Any] = {
        "id": scan.id,
        "status": scan.status,
        "filename": scan.filename,
        "batch_id": scan.batch_id,
        "position": scan.position,
        "created_at": _iso(scan.created_at),
        "finished_at": _iso(scan.finished_at),
        "media": media,
        "verdict": None,
        "score": None,
        "model": None,
        "crops": [],
        "top_crop": None,
        "segments": [],
        "top_segment": None,
        "frames": [],
        "top_frame": None,
        "parts": None,
        "cached": scan.cached,
        "attempts": scan.attempts,
        "timings": {
            "queue_ms": _ms(scan.created_at, scan.started_at),
            "decode_ms": None,
            "model_ms": None,
            "total_ms": _ms(scan.created_at, scan.finished_at),
        },
        "error": None,
    }
    if res is not None:
        media.update({"kind": res.kind, "duration_s": None, **res.media})
        media["sha256"] = res.sha256
        view.update(
            verdict=res.verdict,
            score=res.score,
            model={"name": res.model_name, "version": res.model_version},
            crops=res.evidence.get("crops", []),
            top_crop=res.evidence.get("top_crop"),
            segments=res.evidence.get("segments", []),
            top_segment=res.evidence.get("top_segment"),
            frames=res.evidence.get("frames", []),
            top_frame=res.evidence.get("top_frame"),
            parts=res.evidence.get("parts"),
        )
        view["timings"].update(decode_ms=res.decode_ms, model_ms=res.model_ms)
    if scan.status == "failed":
        view["verdict"] = "not_applicable"
        view["error"] = {"code": scan.error_code, "message": scan.error_message}
    elif scan.status == "canceled":
        view["verdict"] = "not_applicable"
    return view
