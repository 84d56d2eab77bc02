"""Shared CLI options and option parsing."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

RealOpt = Annotated[
    str,
    typer.Option("--real", help="'starter' (photos bundled with installed packages) or a folder"),
]
PresetOpt = Annotated[str, typer.Option(help="Config preset: tiny (seconds) or default.")]
ModalityOpt = Annotated[str, typer.Option(help="Media modality: image, audio or video.")]
FakesOpt = Annotated[
    list[str],
    typer.Option(
        help="NAME=DIR[:FAMILY]: a folder of media another tool made, used as generator "
        "NAME (family: NAME unless given); repeatable."
    ),
]


def parse_sets(pairs: list[str], *, option: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a dict; a VALUE that is JSON is decoded (numbers, lists)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} expects KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
