"""Regression check of metric scores against committed baselines (``results/baselines/*.json``).

A baseline cell is keyed by (method, dataset, seed, profile, hash of the resolved method config);
library versions and metric settings are deliberately not part of the key, so a fresh CI install
with other library versions still finds its baselines and the tolerance absorbs the noise.

A score that moved in its bad direction by more than its tolerance (the metadata of every score
key: ``bench.flows.base.score_metadata``), a lost metric, or a baseline cell without a current
result is a failure. A key without metadata cannot be checked, so it stops the check (and
``--update``) with one line naming it, unless ``allow_unchecked`` (``--allow-unchecked``): then
it is left out with one warning line per key.

A baseline also records the numerics it was made with (CPU model, vector features, instruction-set
caps). Trained weights differ in their last bits between CPU models even under the caps, and
training turns that into a spread like the one between seeds, so a result from other numerics is
compared with ``CROSS_HOST_FACTOR`` times the tolerance (and a note says so): there the check
catches broken code, not small drifts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.flows.base import score_metadata
from bench.results.store import record_schema
from core.errors import BenchError
from core.hashing import stable_hash
from core.io import atomic_write_json, read_json
from metrics.registry import ScoreKey

BASELINE_SCHEMA = 1  # the version written
BASELINE_SCHEMAS = (1,)  # the versions read (a file without "schema" is version 1)
BASELINE_FIELDS = ("id", "method", "dataset", "seed", "profile", "config", "metrics")
CROSS_HOST_FACTOR = 4.0


def numerics(result: dict[str, Any]) -> dict[str, Any] | None:
    """What besides the config decides a result's last bits: CPU model, vector features and
    instruction-set caps (None for a result that does not record them)."""
    host, versions = result.get("host") or {}, result.get("versions") or {}
    if "cpu_model" not in host:
        return None
    return {"cpu_model": host["cpu_model"], "cpu_features": host.get("cpu_features"),
            "cpu_isa_caps": versions.get("cpu_isa_caps")}


def _identity(cell: dict[str, Any]) -> tuple[str, str, int, str]:
    return (cell["method"], cell["dataset"], int(cell["seed"]), cell["profile"])


def baseline_key(cell: dict[str, Any]) -> tuple[str, str, int, str, str]:
    """What a baseline cell is matched by: identity plus the hash of the method config."""
    return (*_identity(cell), stable_hash(cell["config"]))


def ambiguous_results(results: Iterable[dict[str, Any]],
                      key: Any = baseline_key) -> dict[tuple, list[str]]:
    """Keys that more than one result matches (e.g. cells of an older shipped generator beside
    the current ones in one folder), with their ids: such a folder has no single answer for a
    baseline, and the grid that made the wanted cells (``--grid``) picks them."""
    ids: dict[tuple, list[str]] = defaultdict(list)
    for result in results:
        ids[key(result)].append(str(result["id"]))
    return {k: sorted(v) for k, v in ids.items() if len(set(v)) > 1}


def _ambiguity_text(ids: list[str]) -> str:
    return (f"{len(ids)} results match it (ids {', '.join(ids)}: made on other bundles or "
            "settings, e.g. an older generator); pass --grid to pick the cells a grid runs now")


def _label(cell: dict[str, Any]) -> str:
    return f"{cell['method']} / {cell['dataset']} / seed {cell['seed']} / {cell['profile']}"


def baseline_file_name(dataset: str, profile: str) -> str:
    return f"{dataset}--{profile}.json"


def load_baselines(directory: Path) -> list[dict[str, Any]]:
    """Every baseline cell from ``directory/*.json``; malformed files are BenchErrors, a file of
    a schema version this release does not read an UnknownSchema."""
    cells = []
    for path in sorted(Path(directory).glob("*.json")):
        data = read_json(path)
        if not isinstance(data, dict):
            raise BenchError(f"{path}: not a baseline file (expected an object with 'cells')")
        if record_schema(data, path, "baseline file", BASELINE_SCHEMAS) is None:
            raise BenchError(f"{path}: 'schema' is {data['schema']!r}: expected an integer "
                             "(a baseline file written by `bench check --update`)")
        if not isinstance(data.get("cells"), list):
            raise BenchError(f"{path}: not a baseline file (expected an object with 'cells')")
        for index, cell in enumerate(data["cells"]):
            cells.append(_check_baseline_cell(cell, f"{path}: cell {index}"))
    return cells


_FIELD_TYPES: dict[str, type] = {"id": str, "method": str, "dataset": str, "seed": int,
                                 "profile": str, "config": dict, "metrics": dict}


def _check_baseline_cell(cell: Any, where: str) -> dict[str, Any]:
    """A baseline cell with every field of the right JSON type and finite metrics."""
    expected = f"expected an object with {', '.join(BASELINE_FIELDS)}"
    if not isinstance(cell, dict):
        raise BenchError(f"{where} is not an object: {expected}")
    missing = [k for k in BASELINE_FIELDS if k not in cell]
    if missing:
        raise BenchError(f"{where} lacks {', '.join(missing)}: {expected}")
    for key, kind in _FIELD_TYPES.items():
        value = cell[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BenchError(f"{where}: {key!r} is {value!r}: expected {kind.__name__}")
    for metric, value in cell["metrics"].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise BenchError(f"{where}: metric {metric!r} is {value!r}: expected a finite number")
    if cell.get("numerics") is not None and not isinstance(cell["numerics"], dict):
        raise BenchError(f"{where}: 'numerics' is {cell['numerics']!r}: expected an object")
    return cell


def unchecked_keys(cells: Iterable[dict[str, Any]],
                   info: dict[str, ScoreKey]) -> dict[str, int]:
    """The score keys of ``cells`` (results or baseline cells) without metadata in ``info``,
    each with the number of cells that have it."""
    counts: dict[str, int] = defaultdict(int)
    for cell in cells:
        for key in cell["metrics"]:
            if key not in info:
                counts[key] += 1
    return dict(sorted(counts.items()))


def check_score_keys(cells: Iterable[dict[str, Any]], info: dict[str, ScoreKey],
                     allow_unchecked: bool = False) -> list[str]:
    """A BenchError naming the score keys of ``cells`` that have no metadata (direction,
    tolerance), which no check can compare, unless ``allow_unchecked``: then one warning line
    per such key (empty when every key has metadata)."""
    unknown = unchecked_keys(cells, info)
    if unknown and not allow_unchecked:
        raise BenchError(
            f"score key(s) {', '.join(unknown)} have no metadata (direction, tolerance), so a "
            "change in them cannot be checked: declare them where they are computed (the "
            "metric's keys, metrics.registry.describe or the flow's keys), or pass "
            "--allow-unchecked to check the other scores")
    return [f"unchecked score {key}: no metadata (direction, tolerance); left out of the check "
            f"in {count} cell(s) (--allow-unchecked)" for key, count in unknown.items()]


@dataclass
class CheckReport:
    checked_cells: int = 0
    checked_metrics: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one per score key without metadata

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        lines = [*self.failures, *self.notes]
        verdict = "OK" if self.ok else f"FAILED: {len(self.failures)} problem(s)"
        lines.append(f"check: {verdict} in {self.checked_cells} baseline cell(s), "
                     f"{self.checked_metrics} metric(s) compared")
        return "\n".join(lines)


def compare(baselines: Iterable[dict[str, Any]], results: Iterable[dict[str, Any]],
            info: dict[str, Any] | None = None, *,
            allow_unchecked: bool = False) -> CheckReport:
    """Compare baseline cells with current results (matched by ``baseline_key``). A score key
    of a baseline cell or of its result without metadata in ``info`` (default: every known
    key's, ``score_metadata``) is a BenchError naming it, unless ``allow_unchecked``: then it is
    left out, with one line per key in ``warnings``."""
    if info is None:
        info = score_metadata()
    baselines, results = list(baselines), list(results)
    ambiguous = ambiguous_results(results)
    current = {baseline_key(r): r for r in results}
    by_identity: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for result in current.values():
        by_identity[_identity(result)].append(result)
    matched = [current[baseline_key(b)] for b in baselines
               if baseline_key(b) in current and baseline_key(b) not in ambiguous]
    report = CheckReport()
    report.warnings = check_score_keys([*baselines, *matched], info, allow_unchecked)
    for base in sorted(baselines, key=_identity):
        report.checked_cells += 1
        if baseline_key(base) in ambiguous:
            report.failures.append(f"AMBIGUOUS  {_label(base)}: "
                                   f"{_ambiguity_text(ambiguous[baseline_key(base)])}")
            continue
        result = current.get(baseline_key(base))
        if result is None:
            twins = by_identity.get(_identity(base), [])
            why = (f"; a result with another method config exists (id {twins[0]['id']}): "
                   "if the change is intended, run `bench check --update`" if twins else
                   ": run its grid first")
            report.failures.append(f"MISSING    {_label(base)}: no current result with the "
                                   f"baseline's config{why}")
            continue
        scale, here = 1.0, numerics(result)
        if base.get("numerics") != here:
            scale = CROSS_HOST_FACTOR
            made_on = (base.get("numerics") or {}).get("cpu_model", "unrecorded numerics")
            here_model = (here or {}).get("cpu_model", "unrecorded numerics")
            report.notes.append(f"other CPU  {_label(base)}: baseline from {made_on}, result "
                                f"from {here_model}: tolerances x{CROSS_HOST_FACTOR:g} (trained "
                                "scores spread across CPU models as across seeds)")
        for metric, old in sorted(base["metrics"].items()):
            new = result["metrics"].get(metric)
            if new is None:
                report.failures.append(f"MISSING    {_label(base)}: metric {metric} not reported "
                                       f"any more (baseline {old:.4f})")
                continue
            meta = info.get(metric)
            if meta is None:  # named in report.warnings (--allow-unchecked)
                continue
            report.checked_metrics += 1
            tolerance = meta.tolerance * scale
            delta = new - old
            worse = -delta if meta.higher_is_better else delta
            direction = "higher" if meta.higher_is_better else "lower"
            text = (f"{_label(base)}: {metric} {old:.4f} -> {new:.4f} ({delta:+.4f}, tolerance "
                    f"{tolerance:g}, {direction} is better)")
            if not math.isfinite(new) or worse > tolerance + 1e-12:
                report.failures.append(f"REGRESSED  {text}")
            elif -worse > tolerance + 1e-12:
                report.notes.append(f"improved   {text}; consider `bench check --update`")
        for metric in sorted(set(result["metrics"]) - set(base["metrics"])):
            report.notes.append(f"new metric {_label(base)}: {metric} = "
                                f"{result['metrics'][metric]:.4f} (not in the baseline)")
    return report


def baseline_cell(result: dict[str, Any]) -> dict[str, Any]:
    cell = {key: result[key] for key in BASELINE_FIELDS}
    recorded = numerics(result)
    if recorded is not None:
        cell["numerics"] = recorded
    return cell


def update_baselines(directory: Path, results: Iterable[dict[str, Any]]) -> list[Path]:
    """Write baseline files (one per dataset and profile) from ``results``.

    The given cells replace baseline cells of the same (method, dataset, seed, profile); every
    other baseline cell and file is kept (the current results may cover only part of them).
    """
    directory = Path(directory)
    results = list(results)
    ambiguous = ambiguous_results(results, _identity)
    if ambiguous:
        (method, dataset, seed, profile), ids = min(ambiguous.items())
        raise BenchError(f"cannot update the baseline of {method} / {dataset} / seed {seed} / "
                         f"{profile}: {_ambiguity_text(ids)}")
    cells = {_identity(c): c for c in load_baselines(directory)}
    touched = set()
    for result in results:
        cell = baseline_cell(result)
        cells[_identity(cell)] = cell
        touched.add(baseline_file_name(cell["dataset"], cell["profile"]))
    files: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for identity in sorted(cells):
        cell = cells[identity]
        files[baseline_file_name(cell["dataset"], cell["profile"])].append(cell)
    written = []
    for name in sorted(touched):
        path = directory / name
        atomic_write_json(path, {"schema": BASELINE_SCHEMA, "cells": files[name]})
        written.append(path)
    return written
