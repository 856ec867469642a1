"""What a method is: a registered runner with a frozen config, profiles and requirements.

Two kinds:
- ``directions``: ``run(bundle, config, seed) -> Directions`` (needs a generator);
- ``representation``: ``run(bundle, config, seed) -> Encoder`` (trains on ground truth directly,
  or, with ``trained_by``, is the encoder a directions method trains beside its directions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from core.config import resolve_config
from core.registry import Registry
from models.directions import Directions

MethodKind = Literal["directions", "representation"]


class Encoder(Protocol):
    """A learned representation: uint8 observations (n, H, W, C) -> codes float (n, D)."""

    def represent(self, observations: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...


MethodOutput = Directions | Encoder
MethodRun = Callable[..., MethodOutput]
"""``run(bundle, config, seed, progress=None)``: ``progress`` is a ``core.progress.BarFactory``
for a directions method and a ``core.progress.StepCallback`` for a representation method;
a ``resumable`` method also takes ``checkpoint_dir=``."""


@dataclass(frozen=True)
class MethodSpec:
    """One registered method: its runner and everything the planner and the flows read."""

    name: str
    run: MethodRun
    kind: MethodKind
    config_cls: type
    profiles: dict[str, dict[str, Any]]
    requires: tuple[str, ...]
    load_output: Callable[[Path], MethodOutput] | None = None
    resumable: bool = False
    default: bool = True  # False keeps it out of the default grid of ``python -m bench run``
    trained_by: str | None = None  # the directions method whose training makes this encoder

    def config(self, profile: str, **overrides: Any) -> Any:
        """The frozen config for a profile: paper defaults, then the profile's, then overrides."""
        return resolve_config(self.config_cls, self.profiles, profile, overrides)


METHODS: Registry[MethodSpec] = Registry("method", package="methods", skip=("base",))


def register_method(
    name: str,
    *,
    description: str,
    kind: MethodKind,
    config_cls: type,
    profiles: dict[str, dict[str, Any]] | None = None,
    requires: tuple[str, ...] = ("generator",),
    load_output: Callable[[Path], MethodOutput] | None = None,
    resumable: bool = False,
    default: bool = True,
    trained_by: str | None = None,
) -> Callable[[MethodRun], MethodRun]:
    """Register ``run(bundle, config, seed, progress=None)`` under ``name``.

    ``profiles`` maps a profile name to overrides of the config defaults (which are the paper's).
    ``load_output`` rebuilds a cached output from the directory its ``save`` wrote.
    ``resumable`` methods take ``checkpoint_dir=``: a folder that survives a killed run (and is
    removed once the output is stored), for periodic checkpoints.
    ``default=False`` keeps the method out of the default grid of ``python -m bench run``.
    ``trained_by`` names a registered directions method that trains this representation
    method's encoder beside its directions (DisCo): the two share the config class and
    profiles, and this method's cells run that method's "discover" stage (one cache entry, one
    checkpoint folder, so a seed trains once) and score the encoder ``load_output`` reads from
    the stage's folder.
    """

    def decorator(run: MethodRun) -> MethodRun:
        spec = MethodSpec(name, run, kind, config_cls, dict(profiles or {}), tuple(requires),
                          load_output, resumable, default, trained_by)
        check_trained_by(spec)
        METHODS.add(name, spec, description=description)
        return run

    return decorator


def check_trained_by(spec: MethodSpec) -> None:
    """A ``trained_by`` pairing that can share one training (or none), else a ValueError
    saying why not: a representation method with a ``load_output``, trained by a registered
    directions method of the same config class and profiles."""
    if spec.trained_by is None:
        return
    name, trained_by = spec.name, spec.trained_by
    if spec.kind != "representation":
        raise ValueError(f"method {name!r}: trained_by is for representation methods, not "
                         f"{spec.kind}")
    if trained_by not in METHODS:
        raise ValueError(f"method {name!r}: trained_by {trained_by!r} is not a registered "
                         "method (register it first)")
    base = METHODS.get(trained_by)
    if base.kind != "directions":
        raise ValueError(f"method {name!r}: trained_by {trained_by!r} is a {base.kind} method, "
                         "expected a directions method")
    if base.config_cls is not spec.config_cls or base.profiles != spec.profiles:
        raise ValueError(f"method {name!r}: config class and profiles must be those of "
                         f"{trained_by!r}, whose training it shares")
    if spec.load_output is None:
        raise ValueError(f"method {name!r}: trained_by needs a load_output that reads the "
                         f"encoder from {trained_by!r}'s discover folder")


def method_spec(name: str) -> MethodSpec:
    """The registered spec of method ``name`` (an UnknownNameError names close ones)."""
    return METHODS.get(name)
