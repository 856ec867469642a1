"""Finished directions cells made cheaply for the ``bench edit`` tests: only the "calibrate"
stage is computed (through ``CellContext.stage``, so its cache entry is what a real run writes),
and a result.json records it as a real cell's would. No discovery metrics, pairs or group VAE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.flows.directions import STAGE_VERSIONS, flow_settings, metric_settings
from bench.grid import Cell
from bench.planning.bundles import load_bundle
from bench.results.context import CellContext
from bench.results.store import RESULT_SCHEMA, ResultStore
from core.hashing import stable_hash
from metrics.discovery import calibrate_scales
from models.directions import Directions


def oracle_directions(generator: Any) -> Directions:
    """The oracle's true factor directions named after their factors, calibrated with the quick
    profile's edit-scale protocol (as an ``oracle`` cell's calibrate stage makes them)."""
    from methods.oracle_dirs import OracleDirectionsConfig, run_oracle

    class _Bundle:
        name = "shapes3d-oracle"

    bundle = _Bundle()
    bundle.generator = generator  # type: ignore[attr-defined]
    found = run_oracle(bundle, OracleDirectionsConfig(), seed=0)
    return calibrate_scales(generator, found, flow_settings("quick").calibration)


def make_cell(root: Path | str, dataset: str, directions: Directions, *, method: str = "oracle",
              seed: int = 0, profile: str = "quick", kind: str = "directions",
              bundle: Any = None, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a done cell of ``method`` on ``dataset`` whose calibrated directions are
    ``directions`` into the results folder ``root``; returns its result."""
    store = ResultStore(root)
    bundle = bundle if bundle is not None else load_bundle(dataset)
    identity = dict(identity if identity is not None else bundle.identity)
    cell = Cell(method, dataset, seed, profile, ())
    cell_id = stable_hash({"test-cell": [method, dataset, seed, profile, identity, kind]})
    ctx = CellContext(cell=cell, bundle=bundle, config=None, store=store,
                      artifacts_dir=store.run_dir(cell_id), stage_versions=STAGE_VERSIONS)
    ctx.stage("calibrate", {"test-cell": cell_id}, directions.save, Directions.load)
    result = {"schema": RESULT_SCHEMA, "id": cell_id, "method": method, "kind": kind,
              "dataset": dataset, "bundle_identity": identity, "seed": seed, "profile": profile,
              "overrides": {}, "config": {}, "metric_settings": metric_settings(profile),
              "stage_versions": STAGE_VERSIONS, "metrics": {},
              "stages": [record.as_dict() for record in ctx.stages], "artifacts": {}}
    store.run_dir(cell_id).mkdir(parents=True, exist_ok=True)
    store.write(cell_id, result)
    return result
