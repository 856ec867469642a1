"""The representation flow: train the method's encoder on ground truth ("train"), then score it
("representation-metrics"). A method ``trained_by`` a directions method (DisCo's encoder) takes
its encoder from that method's "discover" stage instead (``bench.flows.directions``), so that
the directions cell and the encoder cell of one seed share one training."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import metrics.sampling
from bench.flows.base import StepProgress, register_flow, score_encoder
from bench.flows.directions import discover_stage
from bench.results.context import CellContext
from core.errors import BenchError
from methods.base import method_spec
from models.bundle import MetricsProvider

STAGE_VERSIONS: dict[str, int] = {"train": 1, "representation-metrics": 1}


def metric_settings(profile: str, protocol: Mapping[str, Any] | None = None,
                    provider: MetricsProvider = metrics.sampling) -> dict[str, Any]:
    """The settings of ``provider``'s representation metrics under ``profile``. A dataset's
    ``protocol`` holds directions-flow settings; none of them applies here."""
    return dict(provider.metric_settings(profile))


@register_flow("representation", description="train an encoder on ground truth, then score it",
               stage_versions=STAGE_VERSIONS, metric_settings=metric_settings)
def run_representation_flow(ctx: CellContext) -> dict[str, float]:
    """Train the method's encoder on ground truth (stage "train"), or read it from its
    ``trained_by`` method's "discover" stage, then score it."""
    method = ctx.cell.method
    spec = method_spec(method)
    if spec.load_output is None:
        raise BenchError(
            f"method {method!r} registered no load_output: its encoder can't be cached"
        )
    if spec.trained_by is not None:
        if "generator" not in ctx.bundle.provides():
            raise BenchError(f"dataset {ctx.bundle.name!r} has no generator; method {method!r} "
                             f"is trained with {spec.trained_by!r}'s directions on one")
        encoder = discover_stage(ctx, spec.trained_by, spec.load_output)
        return score_encoder(ctx, encoder, "discover")
    run = spec.run
    train_inputs = {
        "method": method,
        "config": dataclasses.asdict(ctx.config),
        "seed": ctx.seed,
        # the data alone: bundles sharing ground truth (shapes3d, shapes3d-oracle) share it
        "data": ctx.bundle.data_identity,
    }

    def train(directory: Path) -> None:
        with StepProgress(ctx, f"{method} train") as progress:
            encoder = run(ctx.bundle, ctx.config, ctx.seed, progress=progress)
        encoder.save(directory)

    encoder = ctx.stage("train", train_inputs, train, spec.load_output)
    return score_encoder(ctx, encoder, "train")
