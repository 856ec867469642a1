"""Flows: what runs inside a cell, one registered ``Flow`` per method kind.

A flow's ``run(ctx)`` returns the cell's metrics. Its stage version salts and metric settings
enter the cell id: bump a salt when a stage's semantics change so that old results and caches
are not reused. A key the flow computes itself (not a registered metric's) is declared in its
``keys`` (:class:`metrics.registry.ScoreKey`: direction, tolerance, description), so that
:func:`score_metadata` knows every key a cell can write. The built-in flows live in
modules of ``bench.flows`` (one per kind); importing one registers it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import bench.flows
import metrics.sampling
from bench.results.context import CellContext
from bench.results.store import check_metrics
from core.errors import BenchError
from core.registry import Registry
from methods.base import Encoder
from metrics.registry import ScoreKey, score_keys

# An object with ``representation_metrics(data, represent, rng, profile)`` and
# ``metric_settings(profile)``; None means ``metrics.sampling``. Plugins may replace it. The
# profile may name a metrics profile after the base one (``quick+disco``,
# ``core.config.split_profile``).
METRICS_PROVIDER: Any = None

RunFlow = Callable[[CellContext], dict[str, float]]


@dataclass(frozen=True)
class Flow:
    """The flow of one method kind: ``run(ctx) -> metrics``, the version salt of every stage it
    may run, ``metric_settings(profile)``, the settings that fix its numbers (called as
    ``metric_settings(profile, protocol)`` for a dataset with its own protocol, see
    ``flow_metric_settings``), and ``keys``, the metadata of the score keys it computes
    itself."""

    kind: str
    run: RunFlow
    stage_versions: dict[str, int]
    metric_settings: Callable[..., dict[str, Any]]
    keys: tuple[ScoreKey, ...] = field(default=())


FLOWS: Registry[Flow] = Registry("flow")


def register_flow(
    kind: str,
    *,
    description: str,
    stage_versions: dict[str, int],
    metric_settings: Callable[..., dict[str, Any]],
    keys: tuple[ScoreKey, ...] = (),
) -> Callable[[RunFlow], RunFlow]:
    """Register ``run(ctx)`` as the flow of method kind ``kind``; ``keys`` declares the score
    keys it computes itself (those of registered metrics are declared with the metric)."""

    def decorator(run: RunFlow) -> RunFlow:
        FLOWS.add(kind, Flow(kind, run, stage_versions, metric_settings, tuple(keys)),
                  description=description)
        return run

    return decorator


def import_builtin_flows() -> None:
    """Import the modules of ``bench.flows`` whose import registers the built-in flows."""
    for info in pkgutil.iter_modules(bench.flows.__path__):
        if info.name not in ("base", "figures"):
            importlib.import_module(f"bench.flows.{info.name}")


def score_metadata() -> dict[str, ScoreKey]:
    """Every score key a cell can write, with its metadata: the metric registry's
    (``metrics.registry.score_keys``: registered metrics and ``describe``d keys), then the
    flows' own keys; headline keys first (the leaderboard's column order). A key without an
    entry here cannot be checked for regressions (``bench check`` refuses it)."""
    import_builtin_flows()
    known = list(score_keys().values()) + [key for entry in FLOWS.entries()
                                           for key in entry.obj.keys]
    ordered = [k for k in known if k.headline] + [k for k in known if not k.headline]
    found: dict[str, ScoreKey] = {}
    for key in ordered:
        found.setdefault(key.key, key)
    return found


def get_flow(kind: str) -> Flow:
    """The registered flow of method kind ``kind``."""
    import_builtin_flows()
    if kind not in FLOWS:
        raise BenchError(f"no flow for method kind {kind!r}: the {kind} flow is not available "
                         f"(known: {', '.join(FLOWS.names())})")
    return FLOWS.get(kind)


def flow_stage_versions(kind: str) -> dict[str, int]:
    """The version salts of every stage the flow of ``kind`` may run."""
    return dict(get_flow(kind).stage_versions)


def flow_metric_settings(kind: str, profile: str,
                         protocol: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The metric settings of a flow under a profile (they enter the cell id). ``protocol`` is
    the dataset's own values for this profile (``Bundle.protocol``); a flow is asked
    ``metric_settings(profile, protocol)`` only when there is one, so the settings of datasets
    without one (and flows that take none) stay as they were."""
    flow = get_flow(kind)
    if not protocol:
        return dict(flow.metric_settings(profile))
    return dict(flow.metric_settings(profile, protocol))


def metrics_provider() -> Any:
    """``METRICS_PROVIDER`` if set, else ``metrics.sampling``."""
    return METRICS_PROVIDER if METRICS_PROVIDER is not None else metrics.sampling


class StepProgress:
    """The ``progress(done, total, losses)`` callback representation methods call per step,
    drawn as a ``ctx.progress`` bar (silent unless on a terminal and not ``--quiet``)."""

    def __init__(self, ctx: CellContext, desc: str) -> None:
        self.ctx, self.desc, self.bar = ctx, desc, None

    def __call__(self, done: int, total: int, losses: dict[str, float] | None = None) -> None:
        if self.bar is None:
            self.bar = self.ctx.progress(total, self.desc)
        self.bar.update(done - self.bar.n)
        if losses and done % 20 == 0:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def score_encoder(ctx: CellContext, encoder: Encoder, upstream_stage: str) -> dict[str, float]:
    """Stage "representation-metrics": the metrics provider's scores of ``encoder`` on the
    bundle's ground truth; keyed by the stage ``upstream_stage`` that made the encoder."""
    provider = metrics_provider()
    inputs = {
        upstream_stage: ctx.stage_keys[upstream_stage],
        "settings": provider.metric_settings(ctx.profile),
        "profile": ctx.profile,
        "seed": ctx.seed,
    }

    def score() -> dict[str, float]:
        scores = provider.representation_metrics(
            ctx.bundle.ground_truth, encoder.represent, ctx.rng("metrics"), ctx.profile
        )
        return check_metrics(scores, f"representation metrics of {ctx.cell.label}")

    scores = ctx.json_stage("representation-metrics", inputs, score)
    return {k: float(v) for k, v in scores.items()}
