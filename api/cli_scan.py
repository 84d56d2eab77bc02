"""``synthguard scan``: score images and recordings (told apart by content) with the
shipped or given models; a bad file gets its error code and the scan goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api._progress import console, stage_bars, user_errors


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
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="One JSON object per file on stdout.")
    ] = False,
    batch: Annotated[int, typer.Option(help="Files decoded and scored together.")] = 64,
) -> None:
    """Score images and recordings: verdict, score, where the evidence is.

    The evidence is the top crop of an image or the top segment of a recording; bad
    files get an error code and the scan goes on.
    """
    import sys

    from detector.inference import Detector
    from detector.media.audio import sniff_audio_format

    files = _expand(paths)
    detectors: dict[str, Any] = {}

    def detector_for(kind: str) -> Any:
        if kind not in detectors:
            folder = audio_model if kind == "audio" else model
            detectors[kind] = Detector.load(folder, modality=kind)
        return detectors[kind]

    def kind_of(path: Path) -> str:
        try:
            with path.open("rb") as f:
                return "audio" if sniff_audio_format(f.read(16)) else "image"
        except OSError:
            return "image"  # the image decoder reports the missing or unreadable file

    table = Table("file", "verdict", "score", "evidence", "error")
    counts: dict[str, int] = {}
    with stage_bars() as bars:
        for start in range(0, len(files), batch):
            part = files[start : start + batch]
            kinds = [kind_of(f) for f in part]
            scored: dict[int, Any] = {}
            for kind in sorted(set(kinds)):
                idx = [i for i, k in enumerate(kinds) if k == kind]
                for i, res in zip(
                    idx, detector_for(kind).score([part[i] for i in idx]), strict=True
                ):
                    scored[i] = res
            for i in range(len(part)):
                res = scored[i]
                key = res.verdict or (res.error or {}).get("code", "error")
                counts[key] = counts.get(key, 0) + 1
                if jsonl:
                    sys.stdout.write(json.dumps(_scan_row(res)) + "\n")
                else:
                    table.add_row(
                        res.source,
                        res.verdict or "-",
                        f"{res.score:.4f}" if res.score is not None else "-",
                        _evidence(res),
                        f"{res.error['code']}: {res.error['message']}" if res.error else "",
                    )
            bars.update("scan", min(start + batch, len(files)), len(files), {})
    if not jsonl:
        console.print(table)
    used = ", ".join(f"{d.modality} {d.name} {d.version}" for d in detectors.values())
    console.print(
        f"{len(files)} files with {used or 'no model'}: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    )


def _scan_row(res: Any) -> dict[str, Any]:
    return {
        "path": res.source,
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


def _evidence(res: Any) -> str:
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
