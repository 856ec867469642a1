"""What a method is: a registered runner with a frozen config, profiles and requirements.

Two kinds:
- ``directions``: ``run(bundle, config, seed) -> Directions`` (needs a generator);
- ``representation``: ``run(bundle, config, seed) -> Encoder`` (trains on ground truth directly).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from core.config import resolve_config
from core.registry import Registry

MethodKind = Literal["directions", "representation"]


class Encoder(Protocol):
    """A learned representation: uint8 observations (n, H, W, C) -> codes float (n, D)."""

    def represent(self, observations: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...


@dataclass(frozen=True)
class MethodSpec:
    """Registry metadata of one method."""

    kind: MethodKind
    config_cls: type
    profiles: dict[str, dict[str, Any]]
    requires: tuple[str, ...]
    load_output: Callable[[Path], Any] | None = None
    resumable: bool = False

    def config(self, profile: str, **overrides: Any) -> Any:
        """The frozen config for a profile: paper defaults, then the profile's, then overrides."""
        return resolve_config(self.config_cls, self.profiles, profile, overrides)


METHODS: Registry[Callable[..., Any]] = Registry("method")


def register_method(
    name: str,
    *,
    description: str,
    kind: MethodKind,
    config_cls: type,
    profiles: dict[str, dict[str, Any]] | None = None,
    requires: tuple[str, ...] = ("generator",),
    load_output: Callable[[Path], Any] | None = None,
    resumable: bool = False,
    **meta: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``run(bundle, config, seed, progress=None)`` under ``name``.

    ``profiles`` maps a profile name to overrides of the config defaults (which are the paper's).
    ``load_output`` rebuilds a cached output from the directory its ``save`` wrote.
    ``resumable`` methods take ``checkpoint_dir=``: a folder that survives a killed run (and is
    removed once the output is stored), for periodic checkpoints.
    ``meta`` is free-form registry metadata, e.g. ``default=False`` keeps the method out of the
    default grid of ``python -m bench run``.
    """
    spec = MethodSpec(kind, config_cls, dict(profiles or {}), tuple(requires), load_output,
                      resumable)
    return METHODS.register(name, description=description, spec=spec, **meta)


def method_spec(name: str) -> MethodSpec:
    import_builtin_methods()
    return METHODS.entry(name).meta["spec"]


def import_builtin_methods() -> None:
    """Import the modules whose import registers the built-in methods."""
    import importlib
    import pkgutil

    import methods

    for info in pkgutil.iter_modules(methods.__path__):
        if not info.name.startswith("_") and info.name not in {"base", "directions"}:
            importlib.import_module(f"methods.{info.name}")
