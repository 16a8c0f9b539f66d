"""A registry of the decoder's parts: objective terms, image parameterisations, per-step transforms.

Like Lucent's `optvis`, the parts are kept apart and combined by the one loop in `core.engine`;
unlike Lucent's closures, each part is a small frozen dataclass registered by name, so a preset
that combines them is plain data: it validates, round-trips through JSON (`spec`/`build`) and
is part of the run cache's key.

    @register("objective", "tv")
    @dataclass(frozen=True)
    class TotalVariation(Component): ...

    build("objective", {"name": "tv", "weight": 0.1})  # -> TotalVariation(weight=0.1)
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from typing import Any, ClassVar

from core.errors import UserError

KINDS = ("objective", "param", "transform")
_REGISTRY: dict[str, dict[str, type]] = {k: {} for k in KINDS}


class Component:
    """Base of every registered part; subclasses are frozen dataclasses and validate in `check`."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def __post_init__(self):
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    problems.append(f"{f.name} must be a finite number (got {value!r})")
            elif f.type in ("int", int):
                if isinstance(value, bool) or not isinstance(value, int):
                    problems.append(f"{f.name} must be an integer (got {value!r})")
            elif f.type in ("bool", bool) and not isinstance(value, bool):
                problems.append(f"{f.name} must be true or false (got {value!r})")
        if not problems:
            problems = self.check()
        if problems:
            raise UserError(f"invalid {self.kind} {self.name!r}: " + "; ".join(problems))

    def check(self) -> list[str]:
        """Problems with the parameters' values (types are checked already)."""
        return []


def register(kind: str, name: str):
    """Class decorator: make a Component dataclass buildable by `name` under `kind`."""
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}")

    def deco(cls):
        cls.kind, cls.name = kind, name
        _REGISTRY[kind][name] = cls
        return cls

    return deco


def names(kind: str) -> list[str]:
    return sorted(_REGISTRY[kind])


def build(kind: str, spec: Any) -> Component:
    """A component from its spec (`{"name": ..., **params}`), or the component itself.

    Raises:
        UserError: unknown name or parameter, or an invalid value; the message lists what exists.
    """
    if isinstance(spec, Component):
        if spec.kind != kind:
            raise UserError(f"{spec.name!r} is a {spec.kind}, not a {kind}")
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise UserError(f"a {kind} is given as {{'name': ..., parameters...}} (got {spec!r})")
    params = dict(spec)
    name = params.pop("name")
    cls = _REGISTRY[kind].get(name)
    if cls is None:
        raise UserError(f"unknown {kind} {name!r}: choose one of {', '.join(names(kind))}")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise UserError(f"unknown parameter(s) {', '.join(unknown)} for {kind} {name!r}: "
                        f"it takes {', '.join(sorted(allowed)) or 'none'}")
    return cls(**params)


def spec(component: Component) -> dict:
    """The JSON form of a component: its name and every parameter."""
    return {"name": component.name, **asdict(component)}

