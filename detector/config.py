"""Typed dataclass configs: presets, strict loading from dicts, stable hashes.

Every model, generator and front-end is built from a frozen dataclass. A config
class offers ``tiny`` (tests, seconds) and ``default`` presets through
:func:`preset`; JSON/YAML only fills fields, and an unknown key is an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from typing import Any, TypeVar

C = TypeVar("C")

PRESETS = ("tiny", "default")


def _coerce(tp: Any, value: Any) -> Any:
    """Turn JSON values back into the field's type (lists into tuples, nested configs)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)  # type: ignore[arg-type]
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_coerce(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(arg, value)
            except (TypeError, ValueError):
                continue
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_dict(cls: type[C], data: dict[str, Any], *, base: C | None = None) -> C:
    """Build ``cls`` from ``data``; fields missing from ``data`` come from ``base`` (or defaults).

    Raises ``ValueError`` naming any unknown key and listing the valid ones.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    values = {k: _coerce(hints[k], v) for k, v in data.items()}
    if base is not None:
        return dataclasses.replace(base, **values)  # type: ignore[type-var]
    return cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_hash(config: Any, *, salt: str = "") -> str:
    """A short stable hash of a config's resolved values (and an optional salt, e.g. a name)."""
    blob = json.dumps({"salt": salt, "config": to_dict(config)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {list(PRESETS)}")
    return preset


def check_choice(option: str, value: str, valid: typing.Iterable[str]) -> str:
    """Raise a ``ValueError`` listing the valid values when ``value`` is not one of them."""
    valid = list(valid)
    if value not in valid:
        raise ValueError(f"unknown {option} {value!r}; valid values: {valid}")
    return value
