"""Running a grid's planned cells: serially, in a process pool or on SLURM (one table of
executors), each cell by the worker (``bench.running.worker``).

The parent process holds the results lock for the whole grid; workers only write their own cell's
folder and stage caches (both atomically), so a kill at any moment is safe to resume from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from bench.planning.plan import CellPlan
from bench.results.context import make_progress
from bench.results.store import InvalidResult, ResultStore
from bench.running.worker import CellJob, CellOutcome, collect_versions, run_job
from core.errors import BenchError


def _damage(store: ResultStore, cell_id: str) -> str:
    """What is wrong with a damaged result, in a few words (for the notice)."""
    try:
        store.load(cell_id)
    except InvalidResult as err:
        return err.damage
    except BenchError as err:
        return str(err)
    return f"result {store.result_path(cell_id)}"


def _run_local(cell_jobs: list[CellJob], store: ResultStore, *, jobs: int,
               announce: Callable[[CellPlan], None] | None,
               slurm_options: dict[str, Any]) -> Iterator[CellOutcome]:
    """Each cell in this process (``jobs`` 1), or in a pool of ``jobs`` spawned workers that are
    handed a cell only when one is free (so the announced cells are the running ones)."""
    if jobs == 1 or len(cell_jobs) <= 1:
        for job in cell_jobs:
            if announce is not None:
                announce(job.plan)
            yield run_job(job)
        return
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
                yield future.result()
                start_next()


def _run_slurm(cell_jobs: list[CellJob], store: ResultStore, *, jobs: int,
               announce: Callable[[CellPlan], None] | None,
               slurm_options: dict[str, Any]) -> list[CellOutcome]:
    """Submit every cell as one SLURM array via submitit and wait for them (optional extra)."""
    options = slurm_options
    try:
        from bench.running.slurm import run_slurm
    except ModuleNotFoundError as err:
        if err.name != "submitit":
            raise
        raise BenchError(
            "--executor slurm needs submitit: pip install -e '.[slurm]'"
        ) from None
    return run_slurm(cell_jobs, store.root, options)


Executor = Callable[..., Iterable[CellOutcome]]

# ``--executor`` names (the CLI's choices): how the incomplete cells of a grid are run.
EXECUTORS: dict[str, Executor] = {"local": _run_local, "slurm": _run_slurm}


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
        outcomes: list[CellOutcome] = []
        with make_progress(len(plans), "cells", quiet) as bar:
            bar.update(len(plans) - len(todo))
            for outcome in EXECUTORS[executor](cell_jobs, store, jobs=jobs, announce=announce,
                                               slurm_options=slurm_options or {}):
                outcomes.append(outcome)
                if notice is not None:
                    for line in outcome.notices:
                        notice(line)
                bar.update(1)
                if report is not None:
                    report(outcome)
    return outcomes
