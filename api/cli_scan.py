"""``synthguard scan``: score images, recordings and videos (told apart by content) with
the shipped or given models; a bad file gets its error code and the scan goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api._progress import console, stage_bars, user_errors
from detector.identity import default_model_dir


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_cmd)


@user_errors
def scan_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to scan.")],
    model: Annotated[
        Path | None, typer.Option(help="Image model folder (default: the shipped model).")
    ] = None,
    audio_model: Annotated[
        Path | None, typer.Option(help="Voice model folder (default: the shipped model).")
    ] = None,
    video_model: Annotated[
        Path | None,
        typer.Option(
            help="Video model folder (default: the shipped one; without one, videos get "
            "the error unsupported_media)."
        ),
    ] = None,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One JSON object per file on stdout.")
    ] = False,
    batch: Annotated[int, typer.Option(help="Files decoded and scored together.")] = 64,
) -> None:
    """Score images, recordings and videos: verdict, score, where the evidence is.

    The evidence is the top crop of an image, the top segment of a recording, or the
    most synthetic frame of a video (its time and top face box); ``--jsonl`` gives whole
    results (a video's frame timeline and voice segments too). Bad files get an error
    code and the scan goes on.
    """
    import sys

    from detector.inference import Detector, ScoreResult
    from detector.media import MediaError

    for option, folder in (("--model", model), ("--audio-model", audio_model),
                           ("--video-model", video_model)):  # fmt: skip
        if folder is not None and not (folder / "card.json").is_file():
            raise ValueError(f"{option} {folder} is not a model folder (no card.json)")
    files = _expand(paths)
    detectors: dict[str, Any] = {}

    def detector_for(kind: str) -> Any:
        if kind not in detectors:
            folder = {"audio": audio_model, "video": video_model}.get(kind, model)
            if kind == "video" and folder is None:
                shipped = default_model_dir("video")
                folder = shipped if (shipped / "card.json").is_file() else None
                if folder is None:  # refused per file, like a server without a video model
                    detectors[kind] = None
                    return None
            det = Detector.load(folder, modality=kind)
            if det.modality != kind:
                raise ValueError(f"{folder} holds a {det.modality} model, not a {kind} model")
            detectors[kind] = det
        return detectors[kind]

    def score(kind: str, group: list[Path]) -> list[Any]:
        det = detector_for(kind)
        if det is None:
            error = MediaError(
                "unsupported_media", "no video model: give --video-model PATH (none is shipped)"
            ).to_dict()
            return [ScoreResult(source=str(p), sha256=None, error=error) for p in group]
        return list(det.score(group))

    table = Table("file", "kind", "verdict", "score", "evidence", "error")
    counts: dict[str, int] = {}
    with stage_bars() as bars:
        done = 0
        for start in range(0, len(files), batch):
            part = files[start : start + batch]
            kinds = [_kind_of(f) for f in part]
            scored: dict[int, Any] = {}
            for kind in sorted(set(kinds)):
                idx = [i for i, k in enumerate(kinds) if k == kind]
                # A video takes seconds: one at a time, so that the bar moves with each.
                step = 1 if kind == "video" else len(idx)
                for s in range(0, len(idx), step):
                    some = idx[s : s + step]
                    scored.update(zip(some, score(kind, [part[i] for i in some]), strict=True))
                    done += len(some)
                    bars.update("scan", done, len(files), {})
            for i in range(len(part)):
                res = scored[i]
                key = res.verdict or (res.error or {}).get("code", "error")
                counts[key] = counts.get(key, 0) + 1
                if jsonl:
                    sys.stdout.write(json.dumps(_scan_row(res, kinds[i])) + "\n")
                else:
                    table.add_row(
                        res.source,
                        kinds[i],
                        res.verdict or "-",
                        f"{res.score:.4f}" if res.score is not None else "-",
                        _evidence(res),
                        f"{res.error['code']}: {res.error['message']}" if res.error else "",
                    )
    if not jsonl:
        console.print(table)
    used = ", ".join(
        f"{d.modality} {d.name} {d.version}" for d in detectors.values() if d is not None
    )
    console.print(
        f"{len(files)} files with {used or 'no model'}: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    )


def _kind_of(path: Path) -> str:
    """By content, as the service tells them apart (``worker.media.media_kind``)."""
    from worker.media import media_kind

    try:
        with path.open("rb") as f:
            return media_kind(f.read(1024))
    except OSError:
        return "image"  # the image decoder reports the missing or unreadable file


def _scan_row(res: Any, kind: str) -> dict[str, Any]:
    row = {
        "path": res.source,
        "kind": kind,
        "sha256": res.sha256,
        "verdict": res.verdict,
        "score": res.score,
        "model": res.model,
        "media": res.media,
        "top_crop": res.crops[res.top_crop] if res.top_crop is not None else None,
        "segments": res.segments,
        "top_segment": res.segments[res.top_segment] if res.top_segment is not None else None,
        "error": res.error,
    }
    if kind == "video":
        row |= {
            "frames": res.frames,
            "top_frame": res.frames[res.top_frame] if res.top_frame is not None else None,
            "parts": res.parts or None,
        }
    return row


def _evidence(res: Any) -> str:
    if res.top_frame is not None:
        frame = res.frames[res.top_frame]
        text = f"frame at {frame['t']:.1f} s ({frame['score']:.2f})"
        if frame["faces"]:
            face = max(frame["faces"], key=lambda f: f["score"])
            text += f", face {face['box']}"
        elif frame["whole_frame"]:
            text += ", no face: whole frame"
        return text
    if res.top_crop is not None:
        return f"crop {res.crops[res.top_crop]['box']}"
    if res.top_segment is not None:
        seg = res.segments[res.top_segment]
        return f"{seg['start_s']:.1f}-{seg['end_s']:.1f} s ({seg['score']:.2f})"
    return "-"


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        else:
            files.append(p)  # a missing file is reported per file, not fatal
    return files
