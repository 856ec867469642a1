"""Registered representation metrics: one file per metric, one decorator, metadata beside it.

A metric is ``compute(bank, settings, rng) -> dict[str, float]``: ``bank`` is a
:class:`metrics.bank.SampleBank` (the ground truth, the encoder and one encoded train/test set
shared by every metric), ``settings`` a frozen dataclass whose defaults are the reference
study's, overridden per profile, and ``rng`` a generator derived from the metric's *name* (adding
or removing a metric never changes another's samples). Each metric declares the keys it reports
(:class:`ScoreKey`: direction, range, regression tolerance, headline); the leaderboard, the
regression check and ``bench list metrics`` read them through :func:`score_keys`. A flow declares
the keys it computes itself when it registers (``bench.flows.base.register_flow``); a key a
plugin's metrics provider adds is declared with :func:`describe`. The built-in metrics are the
public modules of this package, imported on the registry's first lookup (``core.registry``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.registry import Registry


@dataclass(frozen=True)
class ScoreKey:
    """Metadata of one reported number."""

    key: str
    description: str
    higher_is_better: bool = True
    low: float = 0.0
    high: float = 1.0
    tolerance: float = 0.05  # absolute; a change worse than this is a regression
    headline: bool = False  # one of the numbers the papers report


@dataclass(frozen=True)
class MetricSpec:
    """Registry metadata of one metric."""

    name: str
    compute: Callable[..., Mapping[str, float]]
    settings_cls: type
    profiles: Mapping[str, Mapping[str, Any]]
    keys: tuple[ScoreKey, ...]


METRICS: Registry[MetricSpec] = Registry("metric", package="metrics")
_DESCRIBED: dict[str, ScoreKey] = {}


def register_metric(
    name: str,
    *,
    description: str,
    settings: type,
    keys: tuple[ScoreKey, ...],
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[Callable[..., Mapping[str, float]]], Callable[..., Mapping[str, float]]]:
    """Register ``compute(bank, settings, rng)`` under ``name`` (see the module docstring)."""

    def decorator(compute: Callable[..., Mapping[str, float]]
                  ) -> Callable[..., Mapping[str, float]]:
        spec = MetricSpec(name, compute, settings, dict(profiles or {}), tuple(keys))
        METRICS.add(name, spec, description=description)
        return compute

    return decorator


def describe(key: str, description: str, **kwargs: Any) -> ScoreKey:
    """Declare a score key computed outside the registries (a plugin metrics provider's own)."""
    info = ScoreKey(key, description, **kwargs)
    _DESCRIBED[key] = info
    return info


def score_keys() -> dict[str, ScoreKey]:
    """Every known score key, headline keys first: described (discovery) keys, then registered
    metrics' keys in registry order; the order of the leaderboard's columns."""
    known = list(_DESCRIBED.values()) + [key for entry in METRICS.entries()
                                         for key in entry.obj.keys]
    ordered = [k for k in known if k.headline] + [k for k in known if not k.headline]
    return {k.key: k for k in ordered}
