"""Running planned cells: one cell in a worker, a grid serially, in a process pool or on SLURM.

The parent process holds the results lock for the whole grid; workers only write their own cell's
folder and stage caches (both atomically), so a kill at any moment is safe to resume from.
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
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench
from bench.context import CellContext, make_progress
from bench.flow import get_flow
from bench.plan import CellPlan, load_bundle, plain_config
from bench.plugins import import_plugins
from bench.store import RESULT_SCHEMA, ResultStore, check_metrics
from bench.threads import torch_threads
from core.cpu_isa import cpu_features, cpu_model, pin_cpu_isa
from core.errors import BenchError
from core.io import atomic_write_text
from core.thread_wait import WAIT_POLICY_ENV
from methods.base import method_spec

EXECUTORS = ("local", "slurm")


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

    root = Path(__file__).resolve().parent.parent
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
                      threads=plan.threads, notices=notices)
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


def run_grid(
    plans: Sequence[CellPlan],
    store: ResultStore,
    *,
    jobs: int = 1,
    executor: str = "local",
    data_dir: str | None = None,
    plugins: Sequence[str] = (),
    quiet: bool = True,
    report: Callable[[CellOutcome], None] | None = None,
    announce: Callable[[CellPlan], None] | None = None,
    slurm_options: dict[str, Any] | None = None,
    notice: Callable[[str], None] | None = None,
) -> list[CellOutcome]:
    """Run every incomplete cell of ``plans`` (complete ones are skipped) under the lock.

    Each cell runs on its plan's torch thread count (``CellPlan.threads``) whatever ``jobs`` and
    ``executor`` are, so a cell's numbers do not depend on how it was scheduled.
    ``announce(plan)`` is called when a cell starts: with ``jobs`` > 1 a worker is handed a cell
    only when one is free, so the announced cells are the running ones;
    ``report(outcome)`` when it ends; ``notice(line)`` when a damaged result is moved aside to
    be recomputed, or a damaged stage cache was (reported when its cell ends). A grid whose
    cells are all complete writes nothing (no lock either), so it also works on a read-only
    results folder.
    """
    if jobs < 1:
        raise BenchError(f"--jobs must be >= 1, got {jobs}")
    if executor not in EXECUTORS:
        raise BenchError(f"unknown executor {executor!r} (expected one of {', '.join(EXECUTORS)})")
    store.check_folder()
    if all(store.is_complete(plan.id) for plan in plans):
        return []
    with store.lock():
        store.clean_stale_temporaries()
        todo = []
        for plan in plans:
            status = store.status(plan.id)
            if status == "damaged":
                problem = _damage(store, plan.id)
                moved = store.move_aside(plan.id)
                if notice is not None:
                    notice(f"moved aside {problem} to {moved}; the cell is recomputed")
            if status != "done":
                todo.append(plan)
        versions = collect_versions() if todo else {}
        cell_jobs = [
            CellJob(plan, str(store.root), data_dir, tuple(plugins), quiet or jobs > 1, versions)
            for plan in todo
        ]
        bar = make_progress(len(plans), "cells", quiet)
        bar.update(len(plans) - len(todo))
        outcomes: list[CellOutcome] = []

        def done(outcome: CellOutcome) -> None:
            outcomes.append(outcome)
            if notice is not None:
                for line in outcome.notices:
                    notice(line)
            bar.update(1)
            if report is not None:
                report(outcome)

        try:
            if executor == "slurm":
                for outcome in _run_slurm(cell_jobs, store, slurm_options or {}):
                    done(outcome)
            elif jobs == 1 or len(cell_jobs) <= 1:
                for job in cell_jobs:
                    if announce is not None:
                        announce(job.plan)
                    done(run_job(job))
            else:
                import multiprocessing

                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                    waiting = iter(cell_jobs)
                    running: set[Future[CellOutcome]] = set()

                    def start_next() -> None:
                        job = next(waiting, None)
                        if job is not None:
                            if announce is not None:
                                announce(job.plan)
                            running.add(pool.submit(run_job, job))

                    for _ in range(jobs):
                        start_next()
                    while running:
                        finished, _ = wait(running, return_when=FIRST_COMPLETED)
                        for future in finished:
                            running.discard(future)
                            done(future.result())
                            start_next()
        finally:
            bar.close()
    return outcomes


def _damage(store: ResultStore, cell_id: str) -> str:
    """What is wrong with a damaged result, in a few words (for the notice)."""
    try:
        store.load(cell_id)
    except BenchError as err:
        return str(err).split(": expected a result.json")[0]
    return f"result {store.result_path(cell_id)}"


def _run_slurm(
    cell_jobs: list[CellJob], store: ResultStore, options: dict[str, Any]
) -> list[CellOutcome]:
    """Submit every cell as one SLURM array via submitit and wait for them (optional extra)."""
    try:
        from bench.slurm import run_slurm
    except ModuleNotFoundError as err:
        if err.name != "submitit":
            raise
        raise BenchError(
            "--executor slurm needs submitit: pip install -e '.[slurm]'"
        ) from None
    return run_slurm(cell_jobs, store.root, options)
