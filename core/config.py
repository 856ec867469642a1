"""The one config mechanism: a frozen dataclass whose defaults are the paper's settings, named
profiles that override some fields, and per-run overrides on top, resolved by one function.

Methods, the group VAE, the directions-flow sizes and the metrics all resolve their settings
here, so a profile name is checked in one place and an unknown field fails the same way
everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

PROFILES: tuple[str, ...] = ("quick", "paper")
"""``quick``: sized for 2 CPU cores, minutes per cell; ``paper``: the papers' settings."""


def check_profile(profile: str) -> str:
    """``profile`` if it is a known profile name, else a one-line ValueError."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (expected one of {', '.join(PROFILES)})")
    return profile


def resolve_config(
    config_cls: type[T],
    profiles: Mapping[str, Mapping[str, Any]],
    profile: str,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """``config_cls`` with its defaults, then the profile's values, then ``overrides``."""
    check_profile(profile)
    overrides = dict(overrides or {})
    fields = {f.name for f in dataclasses.fields(config_cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown config field(s) {', '.join(unknown)} for {config_cls.__name__}"
            f" (fields: {', '.join(sorted(fields))})"
        )
    return config_cls(**{**profiles.get(profile, {}), **overrides})
