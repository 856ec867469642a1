"""Score one encoder with every registered representation metric on one ground-truth dataset.

One :class:`metrics.bank.SampleBank` is built per call and handed to every metric of
:data:`metrics.registry.METRICS`; each metric gets its settings for the profile and a generator
derived from the caller's ``rng`` and the metric's *name*, so adding, removing or resizing one
metric never changes another's samples. :func:`metric_settings` gives the resolved settings
(they enter a cell's id and its result file).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from core.config import check_profile, resolve_config
from core.hashing import stable_int
from datasets.base import GroundTruthData
from metrics.bank import BANK_PROFILES, BankSettings, Represent, SampleBank
from metrics.profiles import metrics_profile
from metrics.registry import METRICS

BANK = "bank"


def resolved_settings(profile: str = "quick",
                      overrides: Mapping[str, Mapping[str, Any]] | None = None
                      ) -> dict[str, Any]:
    """Settings objects per metric name (plus ``"bank"``) for ``profile`` and ``overrides``.

    A metrics profile in ``profile`` (``quick+disco``, :mod:`metrics.profiles`) replaces the
    settings it names (``overrides`` still come last)."""
    check_profile(profile)
    pinned = metrics_profile(profile)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(METRICS.names()) - {BANK})
    if unknown:
        raise ValueError(f"overrides name unknown metric(s) {unknown}; expected "
                         f"{[BANK, *METRICS.names()]}")
    if pinned is not None:
        missing = sorted(set(pinned.settings) - set(METRICS.names()) - {BANK})
        if missing:
            raise ValueError(f"metrics profile {pinned.name!r} names unregistered metric(s) "
                             f"{missing}")
        overrides = {name: {**pinned.settings.get(name, {}), **overrides.get(name, {})}
                     for name in {*pinned.settings, *overrides}}
    out: dict[str, Any] = {BANK: resolve_config(BankSettings, BANK_PROFILES, profile,
                                                overrides.get(BANK))}
    for entry in METRICS.entries():
        spec = entry.obj
        out[entry.name] = resolve_config(spec.settings_cls, spec.profiles, profile,
                                         overrides.get(entry.name))
    return out


def metric_settings(profile: str = "quick",
                    overrides: Mapping[str, Mapping[str, Any]] | None = None
                    ) -> dict[str, Any]:
    """The resolved settings of :func:`representation_metrics` as JSON-friendly dicts."""
    settings = resolved_settings(profile, overrides)
    return {"profile": profile,
            **{name: dataclasses.asdict(value) for name, value in settings.items()}}


def metric_rng(base: int, name: str) -> np.random.Generator:
    """The generator of one consumer: ``SeedSequence([base, stable_int(name)])``."""
    return np.random.default_rng(np.random.SeedSequence([base, stable_int(name)]))


def representation_metrics(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    profile: str = "quick",
    *,
    n_jobs: int | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    reuse: bool | None = None,
    on_metric: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Every registered metric's scores of one encoder (see the module docstring).

    ``overrides`` maps a metric name (or ``"bank"``) to settings that replace the profile's;
    ``n_jobs`` parallelises the per-factor DCI fits (same numbers as serial); ``reuse`` controls
    the bank's code reuse (default: when ``represent`` declares ``batch_invariant``; the same
    numbers either way); ``on_metric(name)`` is called after each metric (timing hooks).
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a np.random.Generator, got {type(rng).__name__}")
    settings = resolved_settings(profile, overrides)
    base = int(rng.integers(0, 2**63 - 1))
    bank = SampleBank(data, represent, settings[BANK], metric_rng(base, BANK), n_jobs=n_jobs,
                      reuse=reuse)
    scores: dict[str, float] = {}
    for entry in METRICS.entries():
        found = entry.obj.compute(bank, settings[entry.name], metric_rng(base, entry.name))
        declared = {key.key for key in entry.obj.keys}
        if set(found) != declared:
            raise ValueError(f"metric {entry.name!r} returned keys {sorted(found)}, declared "
                             f"{sorted(declared)}")
        scores.update({key: float(value) for key, value in found.items()})
        if on_metric is not None:
            on_metric(entry.name)
    return scores
