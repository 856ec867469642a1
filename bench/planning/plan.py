"""From a grid to planned cells: names checked against the registries, configs resolved, ids.

A cell's id hashes everything that determines its result: method, kind, dataset bundle identity,
seed, profile, resolved config, metric settings and the flow's stage version salts (not the git
commit), plus the per-cell torch thread count when it is not the default (``bench.threads``).
``config_hash`` is the same without the seed: it groups seeds of one setting.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bench.flows.base import flow_metric_settings, method_stage_versions
from bench.grid import DEFAULT_DATASETS, Cell, GridSpec
from bench.planning import bundles
from bench.planning.bundles import BUNDLES, resolve_named_inputs
from bench.results.context import metrics_of
from bench.threads import DEFAULT_THREADS, threads_identity
from core.config import check_field_value, field_names, unknown_field_message
from core.config import check_profile as core_check_profile
from core.errors import BenchError, DataError, SettingError
from core.hashing import SHORT_HASH_CHARS, canonical_json, stable_hash
from core.registry import Registry
from methods.base import METHODS, MethodSpec
from metrics.profiles import metrics_profile
from models.bundle import Bundle

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
    # what the bundle loads (component, one line), for the dry-run; not part of the identity
    sources: tuple[tuple[str, str], ...] = dataclasses.field(default=(), compare=False)

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

    @functools.cached_property
    def id(self) -> str:
        """The hash of ``identity()`` (computed once per plan; ``plan_grid`` fills it in from
        ``seed_ids``, and ``dataclasses.replace`` makes a plan that computes its own)."""
        return stable_hash(self.identity())

    @property
    def config_hash(self) -> str:
        return stable_hash(self.identity(with_seed=False))


_SEED_MARK = "@seed@"


def seed_ids(template: CellPlan, seeds: Iterable[int]) -> Iterator[str]:
    """The ids of ``template``'s cell at each of ``seeds`` without hashing its whole identity
    per seed: the canonical JSON is written once with a mark where the seed goes (canonical
    JSON writes an int as its digits), so each id is one sha256 of a short join. Equal to
    ``CellPlan.id`` (a test holds them together)."""
    identity = template.identity(with_seed=False)
    identity["seed"] = _SEED_MARK
    parts = canonical_json(identity).split(f'"{_SEED_MARK}"')
    if len(parts) != 2:  # the mark also occurs in a config value: hash each identity whole
        for seed in seeds:
            yield dataclasses.replace(template, cell=dataclasses.replace(
                template.cell, seed=int(seed))).id
        return
    head, tail = parts
    head_hash = hashlib.sha256(head.encode("ascii"))
    for seed in seeds:
        sha = head_hash.copy()
        sha.update(f"{int(seed)}{tail}".encode("ascii"))
        yield sha.hexdigest()[:SHORT_HASH_CHARS]


def plain_config(config: Any) -> dict[str, Any]:
    """A frozen config as the JSON dict stored in result.json (tuples become lists)."""
    return json.loads(canonical_json(dataclasses.asdict(config)))


def check_profile(profile: str) -> None:
    """A known profile, with a known metrics profile where it names one (``quick+disco``);
    a SettingError otherwise."""
    core_check_profile(profile)
    metrics_profile(profile)


def _dataset_error(name: str, err: Exception) -> DataError:
    """``err`` as one line naming dataset ``name`` (unless its text starts with the name)."""
    text = str(err)
    return DataError(text if text.startswith(f"{name}:") else f"dataset {name!r}: {text}")


def load_bundle(name: str, data_dir: str | None) -> Bundle:
    """Load a registered bundle; an unknown name is a SettingError (the registry's
    UnknownNameError, raised before any loader runs), a missing or bad data file a DataError
    naming the dataset."""
    try:
        return bundles.load_bundle(name, data_dir)
    # a loader's diagnosis of the data files; the loaders keep FileNotFoundError for a missing
    # file (their callers and tests rely on it), which is always the user's data, never a bug
    except (DataError, FileNotFoundError) as err:
        raise _dataset_error(name, err) from None


def _method_config(spec: MethodSpec, method: str, profile: str, overrides: dict[str, Any]) -> Any:
    try:
        return spec.config(profile, **overrides)
    except SettingError as err:
        raise SettingError(f"method {method!r}: {err}") from None


def _bad_value(grid: GridSpec, scope: str, name: str, what: str,
               err: SettingError) -> SettingError:
    return SettingError(f"bad value for {what} in {grid.origin(scope, name)}: {err}")


def check_overrides(grid: GridSpec, methods_registry: Registry[MethodSpec]
                    ) -> dict[str, dict[str, Any]]:
    """Every override checked against its config field's type before any work, per method.

    Returns ``{method: {field: converted value}}`` for every method an override may reach (the
    grid's methods, else every default method); a shared field (scope "*") that none of them
    has, a method-scoped unknown field or a value of the wrong type is a SettingError naming the
    ``--set`` option or grid-file table and what was expected.
    """
    for scope in grid.overrides:
        if scope != "*" and scope not in methods_registry:
            origin = next((grid.origin(scope, name) for name in grid.overrides[scope]),
                          "--set")
            raise SettingError(f"{origin}: {methods_registry.unknown_message(scope)}")
    for name in grid.methods or []:
        if name not in methods_registry:
            raise SettingError(methods_registry.unknown_message(name))
    if grid.methods is not None:
        candidates = list(grid.methods)
    else:
        candidates = [e.name for e in methods_registry.entries() if e.obj.default]
    candidates += [scope for scope in grid.overrides if scope != "*" and scope not in candidates]
    checked: dict[str, dict[str, Any]] = {}
    shared = grid.overrides.get("*", {})
    all_fields: set[str] = set()
    for method in candidates:
        config_cls = methods_registry.entry(method).obj.config_cls
        fields = field_names(config_cls)
        all_fields.update(fields)
        values: dict[str, Any] = {}
        for name, value in shared.items():
            if name in fields:
                try:
                    values[name] = check_field_value(config_cls, name, value)
                except SettingError as err:
                    raise _bad_value(grid, "*", name, f"{name} ({method})", err) from None
        for name, value in grid.overrides.get(method, {}).items():
            if name not in fields:
                raise SettingError(f"{grid.origin(method, name)}: method {method!r}: "
                                   f"{unknown_field_message(config_cls, name, fields)}")
            try:
                values[name] = check_field_value(config_cls, name, value)
            except SettingError as err:
                raise _bad_value(grid, method, name, f"{method}.{name}", err) from None
        checked[method] = values
    for name in shared:
        if name not in all_fields:
            known = sorted(all_fields)
            close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SettingError(f"{grid.origin('*', name)}: no method in the grid has a config "
                               f"field {name}{hint} (fields: {', '.join(known)})")
    return checked


DEFAULT_MAX_CELLS = 100_000
"""Cells one invocation plans at most unless ``--max-cells`` raises it (a typo such as
``--seeds 0-1000000`` is one error line, not minutes of planning)."""
ANNOUNCE_CELLS = 5_000
"""Grids at least this large say how many cells they plan before planning them."""


def describe_bundle(bundle: Bundle) -> tuple[tuple[str, str], ...]:
    """What ``bundle`` will load, after opening every input the user named (as a cell would);
    a bad input is a BenchError naming it, before any cell starts."""
    try:
        return tuple(bundle.sources().items())
    except (DataError, FileNotFoundError) as err:  # FileNotFoundError: as in ``load_bundle``
        raise _dataset_error(bundle.name, err) from None


def plan_grid(
    grid: GridSpec, data_dir: str | None = None, threads: int = DEFAULT_THREADS, *,
    max_cells: int = DEFAULT_MAX_CELLS, notice: Callable[[str], None] | None = None,
) -> list[CellPlan]:
    """Expand a grid into planned cells (order: dataset, method, seed; duplicates dropped),
    each to run on ``threads`` torch threads.

    Without explicit methods, every registered method that fits the dataset (its ``requires``
    are provided by the bundle) and did not opt out (``MethodSpec.default`` False) runs; an
    explicitly named method that does not fit is an error. Every input a bundle loads is
    opened here (``describe_bundle``), so a bad one stops the grid before its first cell.
    More than ``max_cells`` cells is an error; ``notice`` hears one line before a large grid
    (``ANNOUNCE_CELLS``) is expanded.
    """
    profile = grid.cell_profile
    check_profile(profile)
    resolve_named_inputs(data_dir)
    methods_registry, bundles_registry = METHODS, BUNDLES
    dataset_names = list(grid.datasets) if grid.datasets is not None else list(DEFAULT_DATASETS)
    for name in dataset_names:
        if name not in bundles_registry:
            raise SettingError(bundles_registry.unknown_message(name))
    for name in grid.methods or []:
        if name not in methods_registry:
            raise SettingError(methods_registry.unknown_message(name))
    checked = check_overrides(grid, methods_registry)

    chosen_per_dataset: list[tuple[str, Bundle, list[str]]] = []
    for dataset in dataset_names:
        bundle = load_bundle(dataset, data_dir)
        provides = bundle.provides()
        if grid.methods is None:
            chosen = [
                entry.name
                for entry in methods_registry.entries()
                if entry.obj.default
                and set(entry.obj.requires) <= provides
            ]
        else:
            chosen = list(grid.methods)
        for method in chosen:
            spec = methods_registry.entry(method).obj
            missing = sorted(set(spec.requires) - provides)
            if missing:
                raise BenchError(
                    f"method {method!r} needs {', '.join(missing)}, which dataset {dataset!r} "
                    f"does not provide (it provides: {', '.join(sorted(provides)) or 'nothing'})"
                )
        chosen_per_dataset.append((dataset, bundle, chosen))
    planned_methods = {m for _, _, chosen in chosen_per_dataset for m in chosen}
    for scope in grid.overrides:
        if scope != "*" and scope not in planned_methods:
            origin = next(iter(grid.overrides[scope]), "")
            raise BenchError(f"{grid.origin(scope, origin)}: method {scope!r} is not in the grid "
                             f"(its methods: {', '.join(sorted(planned_methods))})")
    total = sum(len(chosen) for _, _, chosen in chosen_per_dataset) * len(grid.seeds)
    if total > max_cells:
        raise BenchError(f"the grid has {total:,} cells, more than --max-cells {max_cells:,}: "
                         "expected fewer seeds, methods or datasets, or raise --max-cells")
    if notice is not None and total >= ANNOUNCE_CELLS:
        notice(f"planning {total:,} cells")

    plans: list[CellPlan] = []
    seen: set[str] = set()
    used_shared: set[str] = set()
    for dataset, bundle, chosen in chosen_per_dataset:
        sources = describe_bundle(bundle)
        identity = dict(bundle.identity)
        for method in chosen:
            spec = methods_registry.entry(method).obj
            overrides = checked[method]
            used_shared.update(k for k in grid.overrides.get("*", {}) if k in overrides)
            config = plain_config(_method_config(spec, method, profile, overrides))
            stage_versions = method_stage_versions(spec.kind, spec.trained_by)
            settings = flow_metric_settings(spec.kind, profile,
                                            bundle.protocol.get(grid.profile), metrics_of(bundle))
            override_items = tuple(sorted(overrides.items()))
            template = CellPlan(Cell(method, dataset, 0, profile, override_items), spec.kind,
                                config, identity, settings, stage_versions, threads, sources)
            for seed, cell_id in zip(grid.seeds, seed_ids(template, grid.seeds), strict=True):
                if cell_id in seen:
                    continue
                seen.add(cell_id)
                cell = Cell(method, dataset, seed, profile, override_items)
                plan = dataclasses.replace(template, cell=cell)
                plan.__dict__["id"] = cell_id  # the cached_property's slot: seed_ids' equal hash
                plans.append(plan)
    unused = sorted(set(grid.overrides.get("*", {})) - used_shared)
    if unused and plans:
        raise SettingError(f"--set: no method in the grid has a config field "
                           f"{', '.join(unused)}")
    if not plans:
        raise BenchError(
            f"no cells to run: no registered method can run on {', '.join(dataset_names)}"
            " (see `python -m bench list methods`)"
        )
    return plans
