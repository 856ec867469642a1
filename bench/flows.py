"""Flows: what runs inside a cell, one per method kind.

A flow is ``(ctx: CellContext) -> dict[str, float]`` (the cell's metrics). Its stage version salts
(``STAGE_VERSIONS``) and metric settings enter the cell id: bump a salt when a stage's semantics
change so that old results and caches are not reused.

The directions flow lives in ``bench.flow_directions`` and must define
``run_directions_flow(ctx)``, ``STAGE_VERSIONS: dict[str, int]`` and optionally
``metric_settings(profile) -> dict``.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.context import CellContext
from bench.store import check_metrics
from core.errors import BenchError

REPRESENTATION_STAGE_VERSIONS: dict[str, int] = {"train": 1, "representation-metrics": 1}
DIRECTIONS_MODULE = "bench.flow_directions"

# An object with ``representation_metrics(data, represent, rng, profile)`` and
# ``metric_settings(profile)``; None means ``metrics.sampling``. Plugins may replace it.
METRICS_PROVIDER: Any = None


def _import_optional(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name == module:
            raise BenchError(f"{what} is not available: module {module} is missing") from None
        raise


def metrics_provider() -> Any:
    if METRICS_PROVIDER is not None:
        return METRICS_PROVIDER
    return _import_optional("metrics.sampling", "representation metrics")


def directions_module() -> ModuleType:
    module = _import_optional(DIRECTIONS_MODULE, "the directions flow")
    if not hasattr(module, "run_directions_flow") or not hasattr(module, "STAGE_VERSIONS"):
        raise BenchError(
            f"{DIRECTIONS_MODULE} must define run_directions_flow(ctx) and STAGE_VERSIONS"
        )
    return module


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


def run_representation_flow(ctx: CellContext) -> dict[str, float]:
    """Train the method's encoder on ground truth (stage "train"), then score it."""
    from methods.base import method_spec

    method = ctx.cell.method
    spec = method_spec(method)
    if spec.load_output is None:
        raise BenchError(
            f"method {method!r} registered no load_output: its encoder can't be cached"
        )
    run = spec_runner(method)
    train_inputs = {
        "method": method,
        "config": dataclasses.asdict(ctx.config),
        "seed": ctx.seed,
        "dataset": ctx.bundle.identity,
    }

    def train(directory: Path) -> None:
        progress = StepProgress(ctx, f"{method} train")
        try:
            encoder = run(ctx.bundle, ctx.config, ctx.seed, progress=progress)
        finally:
            progress.close()
        encoder.save(directory)

    encoder = ctx.stage("train", train_inputs, train, spec.load_output)
    provider = metrics_provider()
    metric_inputs = {
        "train": ctx.stage_keys["train"],
        "settings": provider.metric_settings(ctx.profile),
        "profile": ctx.profile,
        "seed": ctx.seed,
    }

    def score() -> dict[str, float]:
        scores = provider.representation_metrics(
            ctx.bundle.ground_truth, encoder.represent, ctx.rng("metrics"), ctx.profile
        )
        return check_metrics(scores, f"representation metrics of {ctx.cell.label}")

    return ctx.json_stage("representation-metrics", metric_inputs, score)


def run_directions_flow(ctx: CellContext) -> dict[str, float]:
    """Forward to ``bench.flow_directions.run_directions_flow`` (imported lazily)."""
    return directions_module().run_directions_flow(ctx)


FLOWS: dict[str, Callable[[CellContext], dict[str, float]]] = {
    "representation": run_representation_flow,
    "directions": run_directions_flow,
}


def spec_runner(method: str) -> Callable[..., Any]:
    from methods.base import METHODS

    return METHODS.get(method)


def flow_stage_versions(kind: str) -> dict[str, int]:
    """The version salts of every stage the flow of ``kind`` may run."""
    if kind == "representation":
        return dict(REPRESENTATION_STAGE_VERSIONS)
    if kind == "directions":
        return dict(directions_module().STAGE_VERSIONS)
    raise BenchError(f"no flow for method kind {kind!r} (known: {', '.join(FLOWS)})")


def flow_metric_settings(kind: str, profile: str) -> dict[str, Any]:
    """The metric settings of a flow under a profile (they enter the cell id)."""
    if kind == "representation":
        return dict(metrics_provider().metric_settings(profile))
    if kind == "directions":
        module = directions_module()
        settings = getattr(module, "metric_settings", None)
        return dict(settings(profile)) if settings is not None else {}
    raise BenchError(f"no flow for method kind {kind!r} (known: {', '.join(FLOWS)})")
