"""From a grid to planned cells: names checked against the registries, configs resolved, ids.

A cell's id hashes everything that determines its result: method, kind, dataset bundle identity,
seed, profile, resolved config, metric settings and the flow's stage version salts (not the git
commit), plus the per-cell torch thread count when it is not the default (``bench.threads``).
``config_hash`` is the same without the seed: it groups seeds of one setting.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass
from typing import Any

import datasets
from bench import bundles
from bench.bundles import BUNDLES
from bench.flow import flow_metric_settings, flow_stage_versions
from bench.grid import DEFAULT_DATASETS, Cell, GridSpec
from bench.threads import DEFAULT_THREADS, threads_identity
from core.config import check_field_value, field_names, unknown_field_message
from core.config import check_profile as core_check_profile
from core.errors import BenchError
from core.hashing import canonical_json, stable_hash
from core.registry import UnknownNameError
from methods.base import METHODS, import_builtin_methods

PLAN_SCHEMA = 1


@dataclass(frozen=True)
class CellPlan:
    """A cell with everything resolved; plain data, so it can be sent to worker processes."""

    cell: Cell
    kind: str
    config: dict[str, Any]
    bundle_identity: dict[str, Any]
    metric_settings: dict[str, Any]
    stage_versions: dict[str, int]
    threads: int = DEFAULT_THREADS

    def identity(self, *, with_seed: bool = True) -> dict[str, Any]:
        ident = {
            "schema": PLAN_SCHEMA,
            "method": self.cell.method,
            "kind": self.kind,
            "dataset": self.cell.dataset,
            "bundle": self.bundle_identity,
            "profile": self.cell.profile,
            "config": self.config,
            "metric_settings": self.metric_settings,
            "stage_versions": self.stage_versions,
            **threads_identity(self.threads),
        }
        if with_seed:
            ident["seed"] = self.cell.seed
        return ident

    @property
    def id(self) -> str:
        return stable_hash(self.identity())

    @property
    def config_hash(self) -> str:
        return stable_hash(self.identity(with_seed=False))


def plain_config(config: Any) -> dict[str, Any]:
    """A frozen config as the JSON dict stored in result.json (tuples become lists)."""
    return json.loads(canonical_json(dataclasses.asdict(config)))


def _builtin_registries() -> tuple[Any, Any]:
    import_builtin_methods()
    datasets._import_builtin()
    return METHODS, BUNDLES


def check_profile(profile: str) -> None:
    try:
        core_check_profile(profile)
    except ValueError as err:
        raise BenchError(str(err)) from None


def load_bundle(name: str, data_dir: str | None) -> Any:
    """Load a registered bundle; unknown names and missing data files become BenchErrors."""
    try:
        return bundles.load_bundle(name, data_dir)
    except UnknownNameError as err:
        raise BenchError(str(err)) from None
    except (FileNotFoundError, ValueError) as err:  # a loader's diagnosis of the data files
        text = str(err)
        raise BenchError(text if text.startswith(f"{name}:") else f"dataset {name!r}: {text}") \
            from None


def _method_config(spec: Any, method: str, profile: str, overrides: dict[str, Any]) -> Any:
    try:
        return spec.config(profile, **overrides)
    except (ValueError, TypeError) as err:
        raise BenchError(f"method {method!r}: {err}") from None


def _bad_value(grid: GridSpec, scope: str, name: str, what: str, err: ValueError) -> BenchError:
    return BenchError(f"bad value for {what} in {grid.origin(scope, name)}: {err}")


def check_overrides(grid: GridSpec, methods_registry: Any) -> dict[str, dict[str, Any]]:
    """Every override checked against its config field's type before any work, per method.

    Returns ``{method: {field: converted value}}`` for every method an override may reach (the
    grid's methods, else every default method); a shared field (scope "*") that none of them
    has, a method-scoped unknown field or a value of the wrong type is a BenchError naming the
    ``--set`` option or grid-file table and what was expected.
    """
    for scope in grid.overrides:
        if scope != "*" and scope not in methods_registry:
            origin = next((grid.origin(scope, name) for name in grid.overrides[scope]),
                          "--set")
            raise BenchError(f"{origin}: {methods_registry.unknown_message(scope)}")
    for name in grid.methods or []:
        if name not in methods_registry:
            raise BenchError(methods_registry.unknown_message(name))
    if grid.methods is not None:
        candidates = list(grid.methods)
    else:
        candidates = [e.name for e in methods_registry.entries() if e.meta.get("default", True)]
    candidates += [scope for scope in grid.overrides if scope != "*" and scope not in candidates]
    checked: dict[str, dict[str, Any]] = {}
    shared = grid.overrides.get("*", {})
    all_fields: set[str] = set()
    for method in candidates:
        config_cls = methods_registry.entry(method).meta["spec"].config_cls
        fields = field_names(config_cls)
        all_fields.update(fields)
        values: dict[str, Any] = {}
        for name, value in shared.items():
            if name in fields:
                try:
                    values[name] = check_field_value(config_cls, name, value)
                except ValueError as err:
                    raise _bad_value(grid, "*", name, f"{name} ({method})", err) from None
        for name, value in grid.overrides.get(method, {}).items():
            if name not in fields:
                raise BenchError(f"{grid.origin(method, name)}: method {method!r}: "
                                 f"{unknown_field_message(config_cls, name, fields)}")
            try:
                values[name] = check_field_value(config_cls, name, value)
            except ValueError as err:
                raise _bad_value(grid, method, name, f"{method}.{name}", err) from None
        checked[method] = values
    for name in shared:
        if name not in all_fields:
            known = sorted(all_fields)
            close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise BenchError(f"{grid.origin('*', name)}: no method in the grid has a config "
                             f"field {name}{hint} (fields: {', '.join(known)})")
    return checked


def plan_grid(
    grid: GridSpec, data_dir: str | None = None, threads: int = DEFAULT_THREADS
) -> list[CellPlan]:
    """Expand a grid into planned cells (order: dataset, method, seed; duplicates dropped),
    each to run on ``threads`` torch threads.

    Without explicit methods, every registered method that fits the dataset (its ``requires``
    are provided by the bundle) and did not opt out (registry meta ``default=False``) runs; an
    explicitly named method that does not fit is an error.
    """
    check_profile(grid.profile)
    methods_registry, bundles_registry = _builtin_registries()
    dataset_names = list(grid.datasets) if grid.datasets is not None else list(DEFAULT_DATASETS)
    for name in dataset_names:
        if name not in bundles_registry:
            raise BenchError(bundles_registry.unknown_message(name))
    for name in grid.methods or []:
        if name not in methods_registry:
            raise BenchError(methods_registry.unknown_message(name))
    checked = check_overrides(grid, methods_registry)

    plans: list[CellPlan] = []
    seen: set[str] = set()
    used_shared: set[str] = set()
    for dataset in dataset_names:
        bundle = load_bundle(dataset, data_dir)
        provides = bundle.provides()
        if grid.methods is None:
            chosen = [
                entry.name
                for entry in methods_registry.entries()
                if entry.meta.get("default", True)
                and set(entry.meta["spec"].requires) <= provides
            ]
        else:
            chosen = list(grid.methods)
        for method in chosen:
            spec = methods_registry.entry(method).meta["spec"]
            missing = sorted(set(spec.requires) - provides)
            if missing:
                raise BenchError(
                    f"method {method!r} needs {', '.join(missing)}, which dataset {dataset!r} "
                    f"does not provide (it provides: {', '.join(sorted(provides)) or 'nothing'})"
                )
            overrides = checked[method]
            used_shared.update(k for k in grid.overrides.get("*", {}) if k in overrides)
            config = plain_config(_method_config(spec, method, grid.profile, overrides))
            stage_versions = flow_stage_versions(spec.kind)
            settings = flow_metric_settings(spec.kind, grid.profile)
            for seed in grid.seeds:
                cell = Cell(method, dataset, seed, grid.profile, tuple(sorted(overrides.items())))
                plan = CellPlan(cell, spec.kind, config, dict(bundle.identity), settings,
                                stage_versions, threads)
                if plan.id not in seen:
                    seen.add(plan.id)
                    plans.append(plan)
    unused = sorted(set(grid.overrides.get("*", {})) - used_shared)
    if unused and plans:
        raise BenchError(f"--set: no method in the grid has a config field {', '.join(unused)}")
    if not plans:
        raise BenchError(
            f"no cells to run: no registered method can run on {', '.join(dataset_names)}"
            " (see `python -m bench list methods`)"
        )
    return plans
