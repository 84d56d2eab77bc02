"""A small name -> builder registry, one per family (generators, detectors, front-ends)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[T]):
    """Maps names to builder callables. A duplicate name is an error.

    >>> r: Registry[int] = Registry("numbers")
    >>> @r.register("one")
    ... def one() -> int:
    ...     return 1
    >>> r.create("one"), r.names()
    (1, ['one'])
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}
        self._meta: dict[str, dict[str, str]] = {}

    def register(self, name: str, **meta: str) -> Callable[[F], F]:
        def decorator(builder: F) -> F:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = builder  # type: ignore[assignment]
            self._meta[name] = dict(meta)
            return builder

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._builders[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {self.names()}") from None

    def create(self, name: str, /, **overrides: object) -> T:
        return self.get(name)(**overrides)

    def meta(self, name: str) -> dict[str, str]:
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders
