"""Generators from other packages: entry points of the group ``synthguard.generators``.

The contract. A distribution declares entry points in the group
``synthguard.generators``; each names either

- a module (``noise = my_pkg.generators``): importing it registers its generators, or
- a callable (``noise = my_pkg.generators:setup``): it is called with no arguments
  after import, and registers its generators.

Either way a generator is registered exactly like a built-in one, with
``generators.registry.register(name, family=...)`` on a builder
``builder(*, preset="default", **overrides) -> Generator`` (image generators must
accept an ``image_size`` override: the corpus builder passes its crop size). A minimal
plugin::

    # my_pkg/generators.py
    from dataclasses import dataclass

    import numpy as np

    from generators.base import FitReport, Generator, Samples
    from generators.registry import register


    @dataclass(frozen=True)
    class NoiseConfig:
        image_size: int = 64


    class Noise(Generator):
        family = "noise"

        def fit(self, source, *, on_step=None):
            self.fit_report = FitReport(steps=0, seconds=0.0, n_train=len(source), final={})
            return self.fit_report

        def generate(self, n, *, seed, source=None):
            s = self.config.image_size
            rng = np.random.default_rng(seed)
            images = rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8)
            return Samples(images=images, sources=[None] * n, seeds=[seed] * n)


    @register("noise", family="noise")
    def noise(*, preset="default", **overrides):
        return Noise("noise", NoiseConfig(**overrides))

and in its ``pyproject.toml``::

    [project.entry-points."synthguard.generators"]
    noise = "my_pkg.generators"

Plugins load after the built-ins, once per entry point and process. A plugin that
fails to import, raises, or registers a name that is already taken does not break
anything else: the failure is logged as a warning and kept (``failures()``), and
``synthguard generators list`` shows it. Generators a failing plugin registered
before it failed stay registered. Each generator a plugin registers carries
``origin="plugin:<distribution>"`` in ``GENERATORS.meta(name)``.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from generators.registry import GENERATORS, registering_as

GROUP = "synthguard.generators"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plugin:
    """One entry point of the group, after the attempt to load it."""

    entry_point: str  # the entry point's name
    value: str  # "module" or "module:callable"
    dist: str  # the distribution that declares it ("" when unknown)
    generators: tuple[str, ...] = ()  # names it registered
    error: str | None = None  # why it failed, None when it loaded

    @property
    def origin(self) -> str:
        return f"plugin:{self.dist or self.entry_point}"


@dataclass
class _State:
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    plugins: list[Plugin] = field(default_factory=list)
    scanned_path: tuple[str, ...] | None = None  # sys.path at the last scan


_STATE = _State()
# Re-entrant: a plugin that calls names() while it is imported finds the scan done.
_LOCK = threading.RLock()


def load_plugins(*, rescan: bool = False) -> list[Plugin]:
    """Load every entry point not loaded yet; returns the plugins loaded by this call.

    The entry points are scanned again when ``sys.path`` changed since the last scan
    or when ``rescan`` is true (a package installed while the process runs); an entry
    point is only ever tried once.
    """
    with _LOCK:
        path = tuple(sys.path)
        if not rescan and _STATE.scanned_path == path:
            return []
        if rescan:
            importlib.invalidate_caches()  # also drops importlib.metadata's cached listings
        _STATE.scanned_path = path
        new: list[Plugin] = []
        for ep in entry_points(group=GROUP):
            dist = ep.dist.name if ep.dist is not None else ""
            key = (dist, ep.name, ep.value)
            if key in _STATE.seen:
                continue
            _STATE.seen.add(key)
            new.append(_load(ep, dist))
        _STATE.plugins += new
        return new


def plugins() -> list[Plugin]:
    """Every entry point tried so far, loaded or failed, in load order."""
    return list(_STATE.plugins)


def failures() -> list[Plugin]:
    return [p for p in _STATE.plugins if p.error is not None]


def _load(ep: EntryPoint, dist: str) -> Plugin:
    origin = f"plugin:{dist or ep.name}"
    before = set(GENERATORS.names())
    error = None
    try:
        with registering_as(origin):
            obj = ep.load()
            if ep.attr:  # "module:callable": the callable registers
                if not callable(obj):
                    raise TypeError(f"{ep.value} is not callable")
                obj()
    except Exception as exc:  # a broken plugin must not break the CLI or the built-ins
        error = f"{type(exc).__name__}: {exc}"
        log.warning("generator plugin %r (%s) failed to load: %s", ep.name, ep.value, error)
    added = tuple(sorted(set(GENERATORS.names()) - before))
    return Plugin(entry_point=ep.name, value=ep.value, dist=dist, generators=added, error=error)
