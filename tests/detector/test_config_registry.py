from __future__ import annotations

from dataclasses import dataclass

import pytest

from detector.config import check_choice, config_hash, from_dict, to_dict
from detector.registry import Registry


@dataclass(frozen=True)
class Inner:
    a: int = 1


@dataclass(frozen=True)
class Outer:
    size: int = 64
    scales: tuple[float, ...] = (1.0, 0.5)
    pair: tuple[int, int] = (1, 2)
    lr: float = 1e-3
    inner: Inner = Inner()
    opt: str | None = None


def test_from_dict_round_trips_and_coerces_json_types() -> None:
    cfg = Outer(size=32, scales=(0.25,), inner=Inner(a=5), opt="x")
    back = from_dict(Outer, to_dict(cfg))
    assert back == cfg
    assert from_dict(Outer, {"lr": 1}).lr == 1.0 and isinstance(
        from_dict(Outer, {"lr": 1}).lr, float
    )


def test_unknown_key_is_an_error_listing_valid_fields() -> None:
    with pytest.raises(ValueError, match=r"unknown Outer field.*'nope'.*valid fields"):
        from_dict(Outer, {"nope": 1})


def test_from_dict_with_base_keeps_other_fields() -> None:
    base = Outer(size=16)
    assert from_dict(Outer, {"lr": 0.5}, base=base) == Outer(size=16, lr=0.5)


def test_config_hash_is_stable_and_sensitive() -> None:
    assert config_hash(Outer()) == config_hash(Outer())
    assert config_hash(Outer()) != config_hash(Outer(size=65))
    assert config_hash(Outer(), salt="a") != config_hash(Outer(), salt="b")


def test_check_choice_lists_valid_values() -> None:
    with pytest.raises(ValueError, match=r"valid values: \['a', 'b'\]"):
        check_choice("kind", "c", ["a", "b"])


def test_registry_create_names_and_errors() -> None:
    reg: Registry[str] = Registry("thing")

    @reg.register("x", family="f")
    def build_x(*, suffix: str = "") -> str:
        return "x" + suffix

    assert reg.create("x", suffix="!") == "x!"
    assert reg.names() == ["x"] and reg.meta("x") == {"family": "f"}
    with pytest.raises(ValueError, match="already registered"):
        reg.register("x")(build_x)
    with pytest.raises(ValueError, match=r"unknown thing 'y'; valid names: \['x'\]"):
        reg.create("y")
