"""The one config mechanism: a frozen dataclass whose defaults are the paper's settings, named
profiles that override some fields, and per-run overrides on top, resolved by one function.

Methods, the group VAE, the directions-flow sizes and the metrics all resolve their settings
here, so a profile name is checked in one place and an unknown field fails the same way
everywhere. ``check_field_value`` checks a user's value against a field's type before any work.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

from core.errors import SettingError

T = TypeVar("T")

PROFILES: tuple[str, ...] = ("quick", "paper")
"""``quick``: sized for 2 CPU cores, minutes per cell; ``paper``: the papers' settings."""

METRICS_PROFILE_MARK = "+"
"""``<profile>+<metrics profile>`` (e.g. ``quick+disco``): the methods, flows and group VAE at
``<profile>``, the representation metrics at a published protocol's settings
(``metrics.profiles``). A profile without the mark is resolved exactly as before."""

NONE_WORDS = ("none", "null")
"""Strings that mean "no value" for an optional field (TOML has no null)."""


RANGES_ATTR = "RANGES"
"""The class attribute of a config dataclass mapping each numeric field to its ``Range``."""

_INTERVAL = re.compile(r"^\s*([\[(])\s*(-?inf|[-+0-9.e]+)\s*,\s*(-?inf|[-+0-9.e]+)\s*([\])])\s*$")


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval a numeric setting (or each number of a tuple setting) must lie in, written
    as in mathematics: ``Range("[1, inf)")``, ``Range("(0, 1]")``."""

    text: str

    def __post_init__(self) -> None:
        match = _INTERVAL.match(self.text)
        if match is None:
            raise ValueError(f"bad range {self.text!r}: expected e.g. '[1, inf)' or '(0, 1]'")
        low, high = float(match.group(2)), float(match.group(3))
        if low > high:
            raise ValueError(f"bad range {self.text!r}: its low end is above its high end")

    def _parts(self) -> tuple[bool, float, float, bool]:
        match = _INTERVAL.match(self.text)
        assert match is not None  # checked in __post_init__
        return (match.group(1) == "[", float(match.group(2)), float(match.group(3)),
                match.group(4) == "]")

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        low_closed, low, high, high_closed = self._parts()
        above = value >= low if low_closed else value > low
        below = value <= high if high_closed else value < high
        return bool(above and below)

    def __str__(self) -> str:
        return self.text


def field_ranges(config_cls: type) -> dict[str, Range]:
    """Field name -> Range of a config dataclass (its ``RANGES`` and those of its bases; a
    subclass's entry wins)."""
    ranges: dict[str, Range] = {}
    for klass in reversed(config_cls.__mro__):
        for name, value in vars(klass).get(RANGES_ATTR, {}).items():
            ranges[name] = value if isinstance(value, Range) else Range(str(value))
    return ranges


def numeric_fields(config_cls: type) -> list[str]:
    """The fields holding numbers (int, float, optional or tuples of them): each must have a
    Range in ``RANGES``."""
    def numeric(tp: Any) -> bool:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp in (int, float):
            return True
        if origin in (Union, types.UnionType, tuple):
            inner = [a for a in args if a not in (type(None), Ellipsis)]
            return bool(inner) and all(numeric(a) for a in inner)
        return False

    return sorted(name for name, tp in field_types(config_cls).items() if numeric(tp))


def check_range(config_cls: type, name: str, value: Any) -> None:
    """A one-line SettingError when ``value`` (or a number in it) is outside field ``name``'s
    declared Range; None and fields without a Range pass."""
    bounds = field_ranges(config_cls).get(name)
    if bounds is None or value is None:
        return
    numbers = value if isinstance(value, (tuple, list)) else (value,)
    for number in numbers:
        if number not in bounds:
            raise SettingError(f"{name}: expected a value in {bounds}, got {_show(value)}")


def check_ranges(config: Any) -> None:
    """Every field of ``config`` within its declared Range (call from ``__post_init__``)."""
    for name in field_ranges(type(config)):
        check_range(type(config), name, getattr(config, name))


def split_profile(profile: str) -> tuple[str, str | None]:
    """(profile, metrics profile or None) of ``quick`` or ``quick+disco``."""
    base, mark, metrics = profile.partition(METRICS_PROFILE_MARK)
    return base, (metrics if mark else None)


def check_profile(profile: str) -> str:
    """``profile`` if it is a known profile name, optionally with ``+<metrics profile>`` (a
    name the metrics layer checks), else a one-line SettingError."""
    base, metrics = split_profile(profile)
    if base not in PROFILES or metrics == "" or (metrics and METRICS_PROFILE_MARK in metrics):
        raise SettingError(f"unknown profile {profile!r} (expected one of {', '.join(PROFILES)}, "
                         f"optionally followed by {METRICS_PROFILE_MARK}<metrics profile>)")
    return profile


def field_names(config_cls: type) -> list[str]:
    """The sorted field names of a config dataclass."""
    return sorted(f.name for f in dataclasses.fields(config_cls))


def unknown_field_message(config_cls: type, names: list[str] | str,
                          known: list[str] | None = None) -> str:
    """One line naming unknown field(s), the closest known names and every known field."""
    names = [names] if isinstance(names, str) else list(names)
    known = field_names(config_cls) if known is None else known
    close = sorted({c for n in names for c in difflib.get_close_matches(n, known, n=2,
                                                                        cutoff=0.6)})
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (f"unknown config field(s) {', '.join(names)} for {config_cls.__name__}{hint}"
            f" (fields: {', '.join(known)})")


def resolve_config(
    config_cls: type[T],
    profiles: Mapping[str, Mapping[str, Any]],
    profile: str,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """``config_cls`` with its defaults, then the profile's values, then ``overrides``; a
    metrics profile after the profile (``quick+disco``) does not change them."""
    check_profile(profile)
    overrides = dict(overrides or {})
    fields = field_names(config_cls)
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise SettingError(unknown_field_message(config_cls, unknown, fields))
    return config_cls(**{**profiles.get(split_profile(profile)[0], {}), **overrides})


def replace_fields(config: T, values: Mapping[str, Any]) -> T:
    """``config`` with ``values`` in place of its fields; a mapping given for a field that holds
    a config dataclass replaces that one's fields in turn (so ``{"discovery":
    {"num_samples": 500}}`` keeps the other discovery settings). An unknown name is a one-line
    SettingError, as in ``resolve_config``."""
    unknown = sorted(set(values) - set(field_names(type(config))))
    if unknown:
        raise SettingError(unknown_field_message(type(config), unknown))
    changes: dict[str, Any] = {}
    for name, value in values.items():
        current = getattr(config, name)
        nested = dataclasses.is_dataclass(current) and isinstance(value, Mapping)
        changes[name] = replace_fields(current, value) if nested else value
    return dataclasses.replace(config, **changes)


def field_types(config_cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a config dataclass."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_cls)}


def check_field_value(config_cls: type, name: str, value: Any) -> Any:
    """``value`` converted to the type of field ``name`` (an int for a float field becomes a
    float, a list for a tuple field a tuple, "none" for an optional field None); a one-line
    SettingError ``expected <what>, got <value>`` otherwise; a number outside the field's
    declared Range (``RANGES``) is refused the same way.

    Integer fields refuse booleans, strings and non-integral numbers; number fields refuse
    booleans, NaN and infinities.
    """
    types_ = field_types(config_cls)
    if name not in types_:
        raise SettingError(unknown_field_message(config_cls, name))
    converted = _convert(types_[name], value)
    check_range(config_cls, name, converted)
    return converted


def describe_type(tp: Any) -> str:
    """A short description of what a field of type ``tp`` accepts."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        parts = [describe_type(a) for a in args if a is not type(None)]
        if type(None) in args:
            parts.append("none")
        return " or ".join(parts)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a finite number"
    if tp is str:
        return "a string"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        return f"a list of {len(args)} {_plural(args[0]) if len(set(args)) == 1 else 'values'}"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    return {int: "integers", float: "finite numbers", bool: "booleans", str: "strings"}.get(
        tp, describe_type(tp))


class _Mismatch(ValueError):
    pass


def _convert(tp: Any, value: Any) -> Any:
    try:
        return _convert_inner(tp, value)
    except _Mismatch:
        raise SettingError(f"expected {describe_type(tp)}, got {_show(value)}") from None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert_inner(tp: Any, value: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if type(None) in args and (value is None or (
                isinstance(value, str) and value.strip().lower() in NONE_WORDS)):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert_inner(arg, value)
            except _Mismatch:
                continue
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch
        number = float(value)
        if not math.isfinite(number):
            raise _Mismatch
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert_inner(args[0], item) for item in value)
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_convert_inner(a, item) for a, item in zip(args, value, strict=True))
    if origin is typing.Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _Mismatch
    if isinstance(tp, type):
        if isinstance(value, tp) and not (isinstance(value, bool) and tp is not bool):
            return value
        raise _Mismatch
    return value
