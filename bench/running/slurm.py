"""``--executor slurm``: every incomplete cell as one task of a submitit job array.

Options come from the grid file's ``[slurm]`` table (``bench.grid.SLURM_KEYS``). A task that
SLURM preempts or that reaches its time limit is checkpointed through submitit's hook
(``CellTask`` is ``Checkpointable``) and requeued; the requeued task runs the cell again, which
resumes from what the killed attempt stored: finished stages come from the stage cache and
resumable trainings from their checkpoints (``ctx.work_dir``). ``cluster = "local"`` or
``"debug"`` runs the same path on this machine (subprocesses, or in this process).

Imported only when used: submitit is an optional dependency (the ``slurm`` extra).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import submitit
from submitit.helpers import Checkpointable

from bench.running.worker import CellJob, CellOutcome, run_job
from core.errors import BenchError

DEFAULT_TIMEOUT_MIN = 240

# grid-file key -> submitit AutoExecutor parameter (slurm_* ones are ignored by other clusters)
PARAMETERS = {
    "partition": "slurm_partition",
    "account": "slurm_account",
    "qos": "slurm_qos",
    "constraint": "slurm_constraint",
    "array_parallelism": "slurm_array_parallelism",
    "setup": "slurm_setup",
    "timeout_min": "timeout_min",
    "gpus_per_node": "gpus_per_node",
    "cpus_per_task": "cpus_per_task",
    "mem_gb": "mem_gb",
}


class CellTask(Checkpointable):
    """One cell as a submitit task. On preemption or timeout submitit calls ``checkpoint``
    (inherited: resubmit this task with the same CellJob), and the cell resumes when it is
    requeued."""

    def __call__(self, job: CellJob) -> CellOutcome:
        return run_job(job)


def executor_parameters(options: dict[str, Any], threads: int) -> dict[str, Any]:
    """The submitit parameters of a grid's ``[slurm]`` options; a task gets as many CPUs as its
    cell's torch threads unless ``cpus_per_task`` says otherwise."""
    params: dict[str, Any] = {"name": "bench", "timeout_min": DEFAULT_TIMEOUT_MIN,
                              "cpus_per_task": threads}
    for key, value in options.items():
        if key in PARAMETERS:
            params[PARAMETERS[key]] = value
    return params


def make_executor(folder: Path, options: dict[str, Any], threads: int) -> Any:
    """A submitit AutoExecutor for ``options`` (cluster ``slurm`` unless they say otherwise)."""
    cluster = options.get("cluster", "slurm")
    kwargs: dict[str, Any] = {}
    if "max_requeues" in options and cluster in ("slurm", "local"):
        kwargs[f"{cluster}_max_num_timeout"] = options["max_requeues"]
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster, **kwargs)
    executor.update_parameters(**executor_parameters(options, threads))
    return executor


def run_slurm(cell_jobs: list[CellJob], root: Path, options: dict[str, Any]) -> list[CellOutcome]:
    """Submit ``cell_jobs`` as one array (logs under ``<results>/slurm/<job id>/``) and wait."""
    if not cell_jobs:
        return []
    if options.get("cluster", "slurm") == "slurm":
        missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
        if missing:
            raise BenchError(f"--executor slurm: {' and '.join(missing)} not found on this "
                             "machine: run from a SLURM login node (cluster = \"local\" in the "
                             "grid file's [slurm] table runs the cells here instead)")
    threads = max(job.plan.threads for job in cell_jobs)
    executor = make_executor(root / "slurm" / "%j", options, threads)
    submitted = executor.map_array(CellTask(), cell_jobs)
    outcomes = []
    for cell_job, task in zip(cell_jobs, submitted, strict=True):
        try:
            outcomes.append(task.result())
        except Exception as err:  # the task died outside the cell (e.g. requeued too often)
            message = " ".join(f"submitit task {task.job_id}: {type(err).__name__}: {err}"
                               .split())
            outcomes.append(CellOutcome(cell_job.plan.id, cell_job.plan.cell.label, False, 0.0,
                                        message[:500]))
    return outcomes
