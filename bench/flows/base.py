"""Flows: what runs inside a cell, one registered ``Flow`` per method kind.

A flow's ``run(ctx)`` returns the cell's metrics. Its stage version salts and metric settings
enter the cell id: bump a salt when a stage's semantics change so that old results and caches
are not reused. A key the flow computes itself (not a registered metric's) is declared in its
``keys`` when it registers (:class:`metrics.registry.ScoreKey`: direction, tolerance,
description), so that :func:`score_metadata` knows every key a cell can write. The built-in
flows are the modules of ``bench.flows`` (one per kind), found by the registry on its first
lookup. Representations are scored by the cell's metrics provider, ``ctx.metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.results.context import CellContext
from bench.results.store import check_metrics
from core.errors import BenchError
from core.registry import Registry
from methods.base import Encoder
from metrics.registry import ScoreKey, score_keys
from models.bundle import MetricsProvider

RunFlow = Callable[[CellContext], dict[str, float]]
MetricSettings = Callable[[str, Mapping[str, Any] | None, MetricsProvider], dict[str, Any]]
"""``metric_settings(profile, protocol, provider)``: the settings that fix a flow's numbers
under ``profile`` (they enter the cell id), given the dataset's own ``protocol`` for that
profile (``Bundle.protocol``; None for most) and the cell's metrics provider. The profile may
name a metrics profile after the base one (``quick+disco``, ``core.config.split_profile``)."""


@dataclass(frozen=True)
class Flow:
    """The flow of one method kind: ``run(ctx) -> metrics``, the version salt of every stage it
    may run, ``metric_settings`` (:data:`MetricSettings`), and ``keys``, the metadata of the
    score keys it computes itself."""

    kind: str
    run: RunFlow
    stage_versions: dict[str, int]
    metric_settings: MetricSettings
    keys: tuple[ScoreKey, ...] = field(default=())


FLOWS: Registry[Flow] = Registry("flow", package="bench.flows", skip=("base", "figures"))


def register_flow(
    kind: str,
    *,
    description: str,
    stage_versions: dict[str, int],
    metric_settings: MetricSettings,
    keys: tuple[ScoreKey, ...] = (),
) -> Callable[[RunFlow], RunFlow]:
    """Register ``run(ctx)`` as the flow of method kind ``kind``; ``keys`` declares the score
    keys it computes itself (those of registered metrics are declared with the metric)."""

    def decorator(run: RunFlow) -> RunFlow:
        FLOWS.add(kind, Flow(kind, run, stage_versions, metric_settings, tuple(keys)),
                  description=description)
        return run

    return decorator


def score_metadata() -> dict[str, ScoreKey]:
    """Every score key a cell can write, with its metadata: the flows' own keys (in flow
    order), then the metric registry's (``metrics.registry.score_keys``: ``describe``d keys and
    registered metrics'); headline keys first (the leaderboard's column order). A key without
    an entry here cannot be checked for regressions (``bench check`` refuses it)."""
    known = [key for entry in FLOWS.entries() for key in entry.obj.keys] + list(
        score_keys().values())
    ordered = [k for k in known if k.headline] + [k for k in known if not k.headline]
    found: dict[str, ScoreKey] = {}
    for key in ordered:
        found.setdefault(key.key, key)
    return found


def get_flow(kind: str) -> Flow:
    """The registered flow of method kind ``kind``."""
    if kind not in FLOWS:
        raise BenchError(f"no flow for method kind {kind!r}: the {kind} flow is not available "
                         f"(known: {', '.join(FLOWS.names())})")
    return FLOWS.get(kind)


def flow_stage_versions(kind: str) -> dict[str, int]:
    """The version salts of every stage the flow of ``kind`` may run."""
    return dict(get_flow(kind).stage_versions)


def method_stage_versions(kind: str, trained_by: str | None = None) -> dict[str, int]:
    """The version salts of every stage a method's cells may run: its flow's, and for a
    representation method ``trained_by`` a directions method (``MethodSpec.trained_by``) also
    the "discover" stage's, which its cells run (so a new discover version changes their ids
    too). Without ``trained_by`` the same as ``flow_stage_versions``."""
    versions = flow_stage_versions(kind)
    if trained_by is not None:
        versions["discover"] = flow_stage_versions("directions")["discover"]
    return versions


def flow_metric_settings(kind: str, profile: str, protocol: Mapping[str, Any] | None,
                         provider: MetricsProvider) -> dict[str, Any]:
    """The metric settings of a flow under a profile (they enter the cell id): ``protocol`` is
    the dataset's own values for this profile (``Bundle.protocol``; an empty one is none),
    ``provider`` the cell's metrics provider (``bench.results.context.metrics_of``)."""
    return dict(get_flow(kind).metric_settings(profile, protocol or None, provider))


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

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def score_encoder(ctx: CellContext, encoder: Encoder, upstream_stage: str) -> dict[str, float]:
    """Stage "representation-metrics": the metrics provider's scores of ``encoder`` on the
    bundle's ground truth; keyed by the stage ``upstream_stage`` that made the encoder."""
    provider = ctx.metrics
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
