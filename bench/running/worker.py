"""The worker side of running a cell: one planned cell executed in this process, its outcome,
and the versions and host it records (``execute_cell``, ``run_job``).

Every executor (serial, a process pool, a SLURM array) hands a worker the same ``CellJob``; a
worker writes only its own cell's folder and stage caches (atomically), so a kill at any moment
is safe to resume from.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench
from bench.flows.base import get_flow
from bench.planning.plan import CellPlan, load_bundle, plain_config
from bench.plugins import import_plugins
from bench.results.context import CellContext, metrics_of
from bench.results.store import RESULT_SCHEMA, ResultStore, check_metrics
from bench.threads import torch_threads
from core.cpu_isa import cpu_features, cpu_model, pin_cpu_isa
from core.errors import BenchError
from core.io import atomic_write_text
from core.thread_wait import WAIT_POLICY_ENV
from methods.base import method_spec


@dataclass(frozen=True)
class CellJob:
    """What a worker needs to run one cell (picklable)."""

    plan: CellPlan
    results: str
    data_dir: str | None = None
    plugins: tuple[str, ...] = ()
    quiet: bool = True
    versions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CellOutcome:
    cell_id: str
    label: str
    ok: bool
    seconds: float
    error: str | None = None
    details: str | None = None
    metrics: dict[str, float] | None = None
    notices: tuple[str, ...] = ()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("disentangle-bench")
    except Exception:  # not installed: fall back to the source tree's version
        return bench.__version__


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def collect_versions() -> dict[str, Any]:
    """Library versions, this package's version and the git commit (plus dirty flag) if any."""
    import numpy
    import scipy
    import sklearn
    import torch

    root = Path(__file__).resolve().parents[2]
    commit = _git(["rev-parse", "HEAD"], root)
    status = _git(["status", "--porcelain", "--untracked-files=no"], root) if commit else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "disentangle_bench": _package_version(),
        "git_commit": commit,
        "git_dirty": bool(status) if commit else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_isa_caps": pin_cpu_isa(),
        "omp_wait_policy": os.environ.get(WAIT_POLICY_ENV),
    }


def host_info() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "cpu_model": cpu_model(), "cpu_features": cpu_features(), "cpu_count": os.cpu_count()}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 / (1024 * 1024) if sys.platform == "darwin" else 1 / 1024
    return round(peak * scale, 1)


def execute_cell(job: CellJob, notices: list[str] | None = None) -> dict[str, Any]:
    """Run one cell on its plan's torch thread count and write its result.json; returns the
    result. Errors propagate. Lines about damaged stage caches moved aside go to ``notices``."""
    import_plugins(job.plugins)
    with torch_threads(job.plan.threads):
        return _execute_cell(job, [] if notices is None else notices)


def _execute_cell(job: CellJob, notices: list[str]) -> dict[str, Any]:
    plan, cell = job.plan, job.plan.cell
    store = ResultStore(job.results)
    bundle = load_bundle(cell.dataset, job.data_dir)
    if dict(bundle.identity) != plan.bundle_identity:
        raise BenchError(f"dataset {cell.dataset!r} changed since the grid was planned")
    config = method_spec(cell.method).config(cell.profile, **dict(cell.overrides))
    if plain_config(config) != plan.config:
        raise BenchError(f"method {cell.method!r}: config changed since the grid was planned")
    started, start = _now(), time.perf_counter()
    run_dir = store.prepare_run_dir(plan.id)
    ctx = CellContext(cell=cell, bundle=bundle, config=config, store=store, artifacts_dir=run_dir,
                      stage_versions=plan.stage_versions, quiet=job.quiet,
                      threads=plan.threads, notices=notices, metrics=metrics_of(bundle))
    metrics = check_metrics(get_flow(plan.kind).run(ctx), f"cell {cell.label}")
    result = {
        "schema": RESULT_SCHEMA,
        "id": plan.id,
        "config_hash": plan.config_hash,
        "method": cell.method,
        "kind": plan.kind,
        "dataset": cell.dataset,
        "bundle_identity": plan.bundle_identity,
        "seed": cell.seed,
        "profile": cell.profile,
        "overrides": dict(cell.overrides),
        "config": plan.config,
        "metric_settings": plan.metric_settings,
        "stage_versions": plan.stage_versions,
        "torch_threads": plan.threads,
        "metrics": metrics,
        "stages": [record.as_dict() for record in ctx.stages],
        "artifacts": ctx.artifacts,
        "wall_seconds": round(time.perf_counter() - start, 3),
        "peak_rss_mib": peak_rss_mib(),
        "versions": job.versions,
        "host": host_info(),
        "started": started,
        "finished": _now(),
    }
    clash = sorted(set(ctx.records) & set(result))
    if clash:
        raise BenchError(f"flow {plan.kind!r} records {', '.join(clash)}, which result.json "
                         "already has")
    result.update(ctx.records)
    store.write(plan.id, result)
    return result


def run_job(job: CellJob) -> CellOutcome:
    """``execute_cell`` that never raises: failures become an outcome (and ``error.txt``)."""
    label, start = job.plan.cell.label, time.perf_counter()
    notices: list[str] = []
    try:
        result = execute_cell(job, notices)
    except Exception as err:  # reported per cell; the grid goes on
        details = traceback.format_exc()
        message = str(err) if isinstance(err, BenchError) else f"{type(err).__name__}: {err}"
        try:
            atomic_write_text(ResultStore(job.results).run_dir(job.plan.id) / "error.txt", details)
        except OSError:
            pass
        return CellOutcome(job.plan.id, label, False, time.perf_counter() - start, message, details,
                           notices=tuple(notices))
    return CellOutcome(job.plan.id, label, True, time.perf_counter() - start,
                       metrics=result["metrics"], notices=tuple(notices))
