"""Same cell, same numbers: every cell runs on the same torch thread count whatever ``--jobs`` is;
a count other than the unmarked one (2) is part of the cell id and the stage keys; the default
layout is one thread a cell and as many cells at once as the cores and memory hold."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from bench_toys import register_toys, unregister_toys

from bench.grid import Cell, GridSpec
from bench.planning.plan import plan_grid
from bench.results.context import CellContext
from bench.results.store import ResultStore
from bench.running.runner import run_grid
from bench.threads import (
    CELL_MEMORY_BYTES,
    DEFAULT_THREADS,
    UNMARKED_THREADS,
    default_jobs,
    oversubscription_warning,
    resolve_jobs,
    resolve_threads,
    usable_cores,
)
from core.errors import BenchError
from core.hashing import stable_hash

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def toys(tmp_path, monkeypatch):
    register_toys()
    log = tmp_path / "threads.txt"
    monkeypatch.setenv("TOY_THREADS", str(log))
    yield log
    unregister_toys()


def _plans(threads=DEFAULT_THREADS, seeds=(0, 1)):
    grid = GridSpec(methods=["toy-identity"], datasets=["toy-data"], seeds=list(seeds))
    return plan_grid(grid, threads=threads)


def test_every_cell_runs_on_the_fixed_count_whatever_jobs(toys, tmp_path):
    before = torch.get_num_threads()
    serial, pooled = ResultStore(tmp_path / "serial"), ResultStore(tmp_path / "pooled")
    run_grid(_plans(), serial, jobs=1)
    assert torch.get_num_threads() == before  # the serial run restores the caller's count
    run_grid(_plans(), pooled, jobs=2, plugins=["bench_toy_plugin"])
    count = DEFAULT_THREADS
    assert sorted(toys.read_text().splitlines()) == [f"0 {count}", f"0 {count}", f"1 {count}",
                                                     f"1 {count}"]
    for store in (serial, pooled):
        assert [r["torch_threads"] for r in store.results()] == [DEFAULT_THREADS] * 2
    assert [r["metrics"] for r in serial.results()] == [r["metrics"] for r in pooled.results()]
    three = ResultStore(tmp_path / "three")
    run_grid(_plans(threads=3, seeds=[0]), three)
    assert toys.read_text().splitlines()[-1] == "0 3"
    assert three.results()[0]["torch_threads"] == 3


def test_a_pool_announces_a_cell_only_when_a_worker_takes_it(toys, tmp_path):
    """With --jobs 2, "start" lines are the running cells: never more than two started and not
    yet reported, and the third starts only after one has ended."""
    events = []
    run_grid(_plans(seeds=(0, 1, 2)), ResultStore(tmp_path), jobs=2, plugins=["bench_toy_plugin"],
             announce=lambda plan: events.append(("start", plan.cell.seed)),
             report=lambda outcome: events.append(("done", outcome.ok)))
    assert [kind for kind, _ in events][:3] == ["start", "start", "done"]
    running = 0
    for kind, value in events:
        running += 1 if kind == "start" else -1
        assert 0 <= running <= 2
        assert value is not False
    assert sorted(seed for kind, seed in events if kind == "start") == [0, 1, 2]


def test_the_unmarked_count_keeps_ids_and_stage_keys_other_counts_change_them(toys, tmp_path):
    (unmarked,), (one,) = _plans(threads=UNMARKED_THREADS, seeds=[0]), _plans(threads=1, seeds=[0])
    identity = unmarked.identity()
    assert "torch_threads" not in identity  # ids made before the count was fixed stay valid
    assert unmarked.id == stable_hash(identity)
    assert one.id != unmarked.id and one.config_hash != unmarked.config_hash
    assert one.identity()["torch_threads"] == 1
    assert _plans(seeds=[0])[0].id == one.id  # the default count, one thread, is marked
    store = ResultStore(tmp_path)

    def context(threads):
        return CellContext(cell=Cell("m", "d", 0, "quick"), bundle=None, config=None,
                           store=store, artifacts_dir=tmp_path, stage_versions={"s": 1},
                           threads=threads)

    key = context(UNMARKED_THREADS).stage_key("s", {"a": 1})
    assert key == stable_hash({"stage": "s", "version": 1, "inputs": {"a": 1}})
    assert context(1).stage_key("s", {"a": 1}) != key


def test_thread_count_from_option_environment_or_default(monkeypatch):
    monkeypatch.delenv("BENCH_THREADS", raising=False)
    assert resolve_threads() == DEFAULT_THREADS == 1
    monkeypatch.setenv("BENCH_THREADS", "4")
    assert resolve_threads() == 4 and resolve_threads("3") == 3
    for bad, origin in (("0", "--threads"), ("two", "--threads"), ("-1", "--threads")):
        with pytest.raises(BenchError, match=f"bad {origin} '{bad}': expected a positive"):
            resolve_threads(bad)
    monkeypatch.setenv("BENCH_THREADS", "1.5")
    with pytest.raises(BenchError, match=r"bad \$BENCH_THREADS '1.5'"):
        resolve_threads()


def test_jobs_from_option_environment_or_the_cores_and_memory(monkeypatch):
    monkeypatch.delenv("BENCH_JOBS", raising=False)
    assert resolve_jobs(None, 1) == default_jobs(1)
    monkeypatch.setenv("BENCH_JOBS", "3")
    assert resolve_jobs(None, 1) == 3 and resolve_jobs("5", 1) == 5
    for bad in ("0", "two", "-1", "1.5"):
        with pytest.raises(BenchError, match=f"bad --jobs '{bad}': expected a positive integer"):
            resolve_jobs(bad, 1)
    monkeypatch.setenv("BENCH_JOBS", "0")
    with pytest.raises(BenchError, match=r"bad \$BENCH_JOBS '0'"):
        resolve_jobs(None, 1)
    plenty = 64 * CELL_MEMORY_BYTES
    assert default_jobs(1, cores=2, memory=plenty) == 2  # one cell a core
    assert default_jobs(2, cores=2, memory=plenty) == 1  # two threads a cell: one at a time
    assert default_jobs(3, cores=8, memory=plenty) == 2
    assert default_jobs(4, cores=2, memory=plenty) == 1  # never none
    assert default_jobs(1, cores=16, memory=3 * CELL_MEMORY_BYTES + 1) == 3  # memory caps it
    assert default_jobs(1, cores=16, memory=CELL_MEMORY_BYTES // 2) == 1
    assert default_jobs(1, cores=4, memory=0) == 4  # the OS did not say: cores alone


def test_a_layout_over_the_usable_cores_is_one_warning_line():
    assert oversubscription_warning(1, 2, cores=2) is None
    assert oversubscription_warning(2, 1, cores=2) is None
    assert oversubscription_warning(1, 1, cores=1) is None
    assert oversubscription_warning(2, 2, cores=2) == (
        "warning: --jobs 2 x --threads 2 = 4 threads on 2 usable core(s): the threads wait for "
        "each other (slower, same numbers); keep --jobs x --threads <= 2")
    assert "= 3 threads on 2 usable" in oversubscription_warning(1, 3, cores=2)
    if hasattr(os, "sched_getaffinity"):  # the process's share, not the machine's count
        assert usable_cores() == len(os.sched_getaffinity(0))


def _run_cli(results: Path, jobs: int) -> None:
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{REPO}"}
    env.pop("BENCH_THREADS", None)
    done = subprocess.run(
        ["python", "-m", "bench", "run", "--methods", "beta-vae", "--datasets", "shapes3d-synth",
         "--seeds", "0,1", "--set", "beta-vae.steps=6", "--set", "beta-vae.batch_size=16",
         "--plugins", "bench_tiny_plugin", "--jobs", str(jobs), "--results", str(results),
         "--quiet", "--no-leaderboard"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "2 cell(s): 2 run" in done.stderr


def test_real_training_gives_identical_result_files_with_jobs_1_and_2(tmp_path):
    """A β-VAE trained (a few Adam steps of convolutions) serially and in a pool of two: the
    same cell ids, the same trained weights, byte-identical metric values."""
    serial, pooled = tmp_path / "jobs1", tmp_path / "jobs2"
    _run_cli(serial, 1)
    _run_cli(pooled, 2)

    def cells(results: Path) -> dict[str, dict]:
        return {p.parent.name: json.loads(p.read_text())
                for p in results.glob("runs/*/result.json")}

    one, two = cells(serial), cells(pooled)
    assert sorted(one) == sorted(two) and len(one) == 2
    for cell_id in one:
        assert one[cell_id]["torch_threads"] == two[cell_id]["torch_threads"] == DEFAULT_THREADS
        assert json.dumps(one[cell_id]["metrics"]) == json.dumps(two[cell_id]["metrics"])
        keys = [(s["name"], s["key"]) for s in one[cell_id]["stages"]]
        assert keys == [(s["name"], s["key"]) for s in two[cell_id]["stages"]]
        (train,) = [key for name, key in keys if name == "train"]
        weights = [sorted((results / "cache" / "train" / train).glob("*.safetensors"))
                   for results in (serial, pooled)]
        assert weights[0], "the trained encoder is stored as safetensors"
        assert [p.read_bytes() for p in weights[0]] == [p.read_bytes() for p in weights[1]]


def test_the_cell_context_also_limits_the_blas_pools():
    """numpy / sklearn reductions run on the cell's count too (BLAS and OpenMP pools)."""
    from threadpoolctl import threadpool_info

    from bench.threads import torch_threads

    blas_before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    if not blas_before:
        pytest.skip("no BLAS pool visible to threadpoolctl")
    with torch_threads(3):
        assert {p["num_threads"] for p in threadpool_info()} == {3}
        assert torch.get_num_threads() == 3
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == blas_before
