"""The generator registry: ``register``, ``create(name, preset=..., **overrides)``, ``names()``."""

from __future__ import annotations

from typing import Any

from detector.config import check_preset
from detector.registry import Registry
from generators.base import Generator

GENERATORS: Registry[Generator] = Registry("generator")
register = GENERATORS.register


def create(name: str, /, preset: str = "default", **overrides: Any) -> Generator:
    """Build a registered generator from a preset, with field overrides.

    >>> create("gan_tconv", preset="tiny").family
    'gan'
    """
    check_preset(preset)
    _load_builtins()
    return GENERATORS.create(name, preset=preset, **overrides)


def names() -> list[str]:
    _load_builtins()
    return GENERATORS.names()


def family(name: str) -> str:
    _load_builtins()
    return GENERATORS.meta(name).get("family", "")


def _load_builtins() -> None:
    # Importing the families registers them; done lazily to keep the CLI quick to start.
    import generators.audio
    import generators.image  # noqa: F401
