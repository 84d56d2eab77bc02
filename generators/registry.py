"""The generator registry: ``register``, ``create(name, preset=..., **overrides)``, ``names()``.

Built-in families register when first needed; generators from other packages (entry
points of the group ``synthguard.generators``, see ``generators.plugins``) load right
after them. ``GENERATORS.meta(name)["origin"]`` says where a generator came from:
``"builtin"`` or ``"plugin:<distribution>"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from detector.config import check_preset
from detector.registry import Registry
from generators.base import Generator

F = TypeVar("F", bound=Callable[..., object])

GENERATORS: Registry[Generator] = Registry("generator")
BUILTIN = "builtin"
_origin = BUILTIN  # what register() records as origin; a plugin load changes it


def register(name: str, **meta: str) -> Callable[[F], F]:
    """Register a generator builder under ``name`` (``family=...`` and other metadata).

    A duplicate name is an error. ``origin`` is recorded for you: ``"builtin"``, or
    the plugin being loaded.
    """
    meta.setdefault("origin", _origin)
    return GENERATORS.register(name, **meta)


@contextmanager
def registering_as(origin: str) -> Iterator[None]:
    """Within the block, ``register`` records ``origin`` (used while loading a plugin)."""
    global _origin
    before, _origin = _origin, origin
    try:
        yield
    finally:
        _origin = before


def create(name: str, /, preset: str = "default", **overrides: Any) -> Generator:
    """Build a registered generator from a preset, with field overrides.

    >>> create("gan_tconv", preset="tiny").family
    'gan'
    """
    check_preset(preset)
    _load()
    return GENERATORS.create(name, preset=preset, **overrides)


def names() -> list[str]:
    _load()
    return GENERATORS.names()


def family(name: str) -> str:
    _load()
    return GENERATORS.meta(name).get("family", "")


def origin(name: str) -> str:
    """``"builtin"`` or ``"plugin:<distribution>"``."""
    from generators.plugins import plugins

    _load()
    recorded = GENERATORS.meta(name).get("origin")
    if recorded:
        return recorded
    # Registered straight on GENERATORS (not through register()): ask the plugin records.
    for p in plugins():
        if name in p.generators:
            return p.origin
    return BUILTIN


def reload_plugins() -> list[Any]:
    """Scan the entry points again (a package installed while the process runs) and load
    those not tried yet; returns the newly tried plugins (``generators.plugins.Plugin``)."""
    from generators.plugins import load_plugins

    _load_builtins()
    return load_plugins(rescan=True)


def _load() -> None:
    from generators.plugins import load_plugins

    _load_builtins()
    load_plugins()  # cheap when sys.path has not changed since the last scan


def _load_builtins() -> None:
    # Importing the families registers them; done lazily to keep the CLI quick to start.
    # Before any plugin: a plugin cannot take a built-in's name.
    import generators.audio
    import generators.image
    import generators.video  # noqa: F401
