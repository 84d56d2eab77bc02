"""Shared CLI option parsing."""

from __future__ import annotations

import json
from typing import Any


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
