"""Face crops of a video corpus, as an image corpus the image detector trains on.

The video detector's visual half is an image detector of the image registry, trained
by the image training path on face crops. This module cuts those crops: frames are
sampled from every clip of a video corpus, faces found by the one face detector
(``detector.media.faces``), and each crop written losslessly (PNG) with a manifest row
in the image corpus format, next to the video corpus (``<corpus>/faces``).

Labels follow the manifest's ``boxes``: a face in a real clip is real; a face in a
synthetic clip is synthetic when it overlaps a face the generator changed in that
frame. A face a generator left alone (the other people in the frame, every face of a
voice swap) is a copy of a real face, so it is left out rather than mislabeled; a clip
from a ``--fakes`` folder (no boxes known) counts every face as synthetic.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detector.config import check_preset, from_dict, to_dict

FACES_DIR = "faces"
# on_progress(stage, done, total, metrics)
ProgressFn = Callable[[str, int, int, dict[str, float]], None]


@dataclass(frozen=True)
class FaceCropConfig:
    """How face crops are taken: in training, in evaluation and at scan time alike."""

    fps: float = 4.0  # frames sampled per second of video (building the face corpus)
    max_frames: int = 16  # per clip (spread evenly) when building the face corpus
    size: int = 128  # crop side in pixels
    margin: float = 0.3  # of the face's side, on each side
    max_faces: int = 4  # per frame, the surest first
    min_face: float = 0.06  # smallest face side, as a fraction of the frame's shorter side
    match_iou: float = 0.3  # a found face is "changed" when it overlaps a changed box this much

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.max_frames < 1 or self.max_faces < 1:
            raise ValueError("fps must be > 0; max_frames and max_faces at least 1")
        if self.size < 16:
            raise ValueError(f"size must be at least 16 pixels, got {self.size}")
        if not 0 <= self.margin <= 1 or not 0 < self.match_iou <= 1:
            raise ValueError("margin must be in [0, 1] and match_iou in (0, 1]")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> FaceCropConfig:
        check_preset(name)
        base = cls() if name == "default" else cls(fps=2.0, max_frames=4, size=64)
        return from_dict(cls, dict(overrides), base=base)


def iou(a: list[int] | tuple[int, ...], b: list[int] | tuple[int, ...]) -> float:
    """Intersection over union of two ``[x, y, w, h]`` boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def frame_faces(pixels: np.ndarray, config: FaceCropConfig) -> list[tuple[list[int], np.ndarray]]:
    """The faces of one frame: ``(box, crop)`` pairs, surest first."""
    from detector.media.faces import detect_faces, face_crop

    boxes = detect_faces(pixels, max_faces=config.max_faces, min_size=config.min_face)
    return [
        (b.to_list(), face_crop(pixels, b, margin=config.margin, size=config.size)) for b in boxes
    ]


def face_label(
    box: list[int], changed: list[list[int]] | None, synthetic: bool, match_iou: float
) -> int | None:
    """1 (synthetic), 0 (real) or ``None`` (a real face in a synthetic clip: left out)."""
    if not synthetic:
        return 0
    if changed is None:  # a --fakes clip: what changed is not known, every face counts
        return 1
    return 1 if any(iou(box, c) >= match_iou for c in changed) else None


def extract_face_corpus(
    corpus_dir: str | Path,
    *,
    config: FaceCropConfig | None = None,
    on_progress: ProgressFn | None = None,
) -> Path:
    """Write (or reuse) ``<corpus>/faces``: an image corpus of the video corpus's faces.

    Reused as it is when the video manifest and the crop settings are unchanged;
    otherwise rebuilt. Returns the face corpus folder.
    """
    from detector.media.video import SamplingConfig, sample_frames

    config = config or FaceCropConfig()
    root = Path(corpus_dir).resolve()
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise ValueError(f"{root} is not a corpus: no manifest.jsonl")
    out = root / FACES_DIR
    fingerprint = {
        "config": to_dict(config),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
    }
    meta_path = out / "corpus.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("source") == fingerprint:
        return out
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["modality"] == "video"]
    if not rows:
        raise ValueError(f"{root} holds no video items")
    progress = on_progress or (lambda *_a: None)
    for kind in ("real", "synthetic"):  # crops of an earlier extraction
        shutil.rmtree(out / kind, ignore_errors=True)
    sampling = SamplingConfig(mode="fps", fps=config.fps, max_frames=config.max_frames)
    face_rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {"clips_without_faces": 0, "faces_left_out": 0}
    for n, row in enumerate(rows):
        synthetic = row["label"] == "synthetic"
        boxes = row.get("boxes")
        if synthetic and boxes is not None and not any(boxes):
            progress("faces", n + 1, len(rows), {})
            continue  # nothing visual changed (a voice swap): no face of it is synthetic
        found = 0
        for frame in sample_frames(root / row["path"], sampling):
            changed = None if boxes is None else boxes[min(frame.index, len(boxes) - 1)]
            for k, (box, crop) in enumerate(frame_faces(frame.pixels, config)):
                label = face_label(box, changed, synthetic, config.match_iou)
                if label is None:
                    counts["faces_left_out"] += 1
                    continue
                found += 1
                face_rows.append(_write_crop(out, row, frame.index, k, box, crop, label))
        counts["clips_without_faces"] += found == 0
        progress("faces", n + 1, len(rows), {"crops": len(face_rows)})
    _write_corpus(out, face_rows, fingerprint, config, counts)
    return out


def _write_crop(
    out: Path, row: dict[str, Any], frame: int, k: int, box: list[int], crop: np.ndarray, label: int
) -> dict[str, Any]:
    import io

    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    item_id = f"{row['id']}-f{frame:05d}-{k}"
    kind = "synthetic" if label else "real"
    rel = f"{kind}/{row['split']}/{item_id}.png"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_bytes(data)
    return {
        "id": item_id,
        "path": rel,
        "label": kind,
        "modality": "image",
        "split": row["split"],
        "generator_family": row["generator_family"] if label else None,
        "generator_name": row["generator_name"] if label else None,
        "config_hash": row["config_hash"] if label else None,
        "seed": row["seed"],
        "index": frame,
        "source_item": row["id"],  # the video clip: evaluation groups crops by it
        "format": "png",
        "width": crop.shape[1],
        "height": crop.shape[0],
        "encoding": {"format": "png", "quality": None, "encoder": "pillow", "box": box},
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _write_corpus(
    out: Path,
    rows: list[dict[str, Any]],
    fingerprint: dict[str, Any],
    config: FaceCropConfig,
    counts: dict[str, int],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "manifest.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    tmp.replace(out / "manifest.jsonl")
    per: dict[str, dict[str, int]] = {}
    for r in rows:
        per.setdefault(r["generator_name"] or "real", {}).setdefault(r["split"], 0)
        per[r["generator_name"] or "real"][r["split"]] += 1
    meta = {
        "format": 1,
        "kind": "face_crops",
        "source": fingerprint,
        "size": config.size,
        "crop": asdict(config),
        "per_generator": per,
        **counts,
    }
    tmp = out / "corpus.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    tmp.replace(out / "corpus.json")
