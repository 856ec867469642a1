"""``--executor slurm`` through the real submitit package: its ``debug`` (in this process) and
``local`` (subprocesses, with the requeue machinery of a cluster) executors run a toy grid to the
serial run's numbers; a preempted cell is checkpointed, requeued and resumes from its stored
stages; the grid file's ``[slurm]`` table reaches the sbatch script."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from bench_toys import register_toys, unregister_toys

from bench.grid import GridSpec, load_grid_file
from bench.planning.plan import plan_grid
from bench.results.store import ResultStore
from bench.running.runner import run_grid
from bench.threads import DEFAULT_THREADS
from core.errors import BenchError

submitit = pytest.importorskip("submitit", reason="the slurm extra (submitit) is not installed")

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
PLUGINS = ["bench_toy_plugin"]


@pytest.fixture
def toys(tmp_path, monkeypatch):
    register_toys()
    counter = tmp_path / "counter.txt"
    monkeypatch.setenv("TOY_COUNTER", str(counter))
    # local tasks are fresh interpreters: they import the toys through the plugin
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}{os.pathsep}{REPO}")
    yield counter
    unregister_toys()


def _plans(seeds=(0, 1, 2)):
    return plan_grid(GridSpec(methods=["toy-identity"], datasets=["toy-data"], seeds=list(seeds)))


def _metrics(store: ResultStore) -> dict[str, dict[str, float]]:
    return {r["id"]: r["metrics"] for r in store.results()}


@pytest.mark.parametrize("cluster", ["debug", "local"])
def test_submitit_executors_match_the_serial_run(toys, tmp_path, cluster):
    plans = _plans()
    serial = ResultStore(tmp_path / "serial")
    run_grid(plans, serial)
    store = ResultStore(tmp_path / cluster)
    outcomes = run_grid(plans, store, executor="slurm", plugins=PLUGINS,
                        slurm_options={"cluster": cluster, "timeout_min": 10})
    assert [o.ok for o in outcomes] == [True] * 3, [o.error for o in outcomes]
    assert _metrics(store) == _metrics(serial) and len(_metrics(store)) == 3
    assert all(r["torch_threads"] == DEFAULT_THREADS for r in store.results())
    assert (store.root / "slurm").is_dir()  # submitit's pickles and logs
    assert run_grid(plans, store, executor="slurm", slurm_options={"cluster": cluster}) == []


def test_signalled_cell_is_requeued_and_resumes(toys, tmp_path, monkeypatch):
    """SIGUSR2 is what SLURM sends a job (through submitit's ``--signal``) before its time limit
    or a preemption: submitit calls the task's checkpoint hook and requeues it; the killed
    attempt's trained stage is reused and the cell ends with the serial run's numbers."""
    ready = tmp_path / "scoring.pid"
    monkeypatch.setenv("TOY_BLOCK_METRICS", str(ready))
    plans = _plans(seeds=[0])
    store = ResultStore(tmp_path / "results")
    outcomes: list = []
    runner = threading.Thread(target=lambda: outcomes.extend(run_grid(
        plans, store, executor="slurm", plugins=PLUGINS,
        slurm_options={"cluster": "local", "timeout_min": 10})))
    runner.start()
    deadline = time.monotonic() + 120
    pid = ""
    while not pid.strip().isdigit():
        assert runner.is_alive() and time.monotonic() < deadline, "scoring never started"
        time.sleep(0.1)
        pid = ready.read_text() if ready.exists() else ""
    os.kill(int(pid), signal.SIGUSR2)
    runner.join(timeout=180)
    assert not runner.is_alive()
    assert [o.ok for o in outcomes] == [True], [o.error for o in outcomes]
    assert toys.read_text().split() == ["0"]  # trained once: the requeued attempt resumed
    result = store.load(plans[0].id)
    assert {s["name"]: s["cache_hit"] for s in result["stages"]} == \
        {"train": True, "representation-metrics": False}
    logs = "".join(p.read_text(errors="replace") for p in (store.root / "slurm").rglob("*.err"))
    # submitit's handler caught it (with a 10-minute limit it counts the signal as the time
    # limit's: the same checkpoint hook, one fewer requeue left) and the task ran again
    assert "Caught signal SIGUSR2" in logs
    monkeypatch.delenv("TOY_BLOCK_METRICS")
    serial = ResultStore(tmp_path / "serial")
    run_grid(plans, serial)
    assert _metrics(store) == _metrics(serial)


def test_grid_file_slurm_table_reaches_the_sbatch_script(tmp_path, monkeypatch):
    from bench.running.slurm import make_executor

    grid_file = tmp_path / "grid.toml"
    grid_file.write_text('profile = "paper"\n[slurm]\npartition = "gpu"\ntimeout_min = 720\n'
                         'gpus_per_node = 1\ncpus_per_task = 8\nmem_gb = 32\nmax_requeues = 5\n'
                         'setup = ["module load cuda"]\n')
    grid = load_grid_file(grid_file)
    assert grid.slurm["partition"] == "gpu" and grid.slurm["setup"] == ["module load cuda"]
    bin_dir = tmp_path / "bin"  # submitit's slurm executor only starts where srun exists
    bin_dir.mkdir()
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    executor = make_executor(tmp_path / "slurm" / "%j", grid.slurm, threads=2)
    assert executor.cluster == "slurm" and executor._executor.max_num_timeout == 5
    script = executor._executor._make_submission_file_text("python -m bench", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=720", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32GB", "#SBATCH --signal=USR2@",
                 "module load cuda"):
        assert line in script, line
    default = make_executor(tmp_path / "slurm" / "%j", {}, threads=3)
    script = default._executor._make_submission_file_text("python -m bench", "uid")
    assert "#SBATCH --cpus-per-task=3" in script and "#SBATCH --time=240" in script


def test_slurm_table_and_cluster_errors(tmp_path, monkeypatch):
    for text, fragment in (('[slurm]\npartitio = "gpu"\n', "unknown key 'partitio'"),
                           ("[slurm]\ngpus_per_node = 0\n", "gpus_per_node = 0: expected a "
                                                            "positive integer"),
                           ('[slurm]\ncluster = "aws"\n', "cluster = 'aws': expected one of"),
                           ('[slurm]\nsetup = "module load cuda"\n', "expected a list")):
        (tmp_path / "grid.toml").write_text(text)
        with pytest.raises(BenchError, match=fragment):
            load_grid_file(tmp_path / "grid.toml")
    register_toys()
    try:
        monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, no srun
        with pytest.raises(BenchError, match="sbatch and srun not found on this machine"):
            run_grid(_plans(seeds=[0]), ResultStore(tmp_path / "results"), executor="slurm")
    finally:
        unregister_toys()
