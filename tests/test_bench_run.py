"""Running grids: stored results, no recomputation on rerun, stage cache, failures, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from bench_toys import ToyConfig, register_toys, unregister_toys

from bench.grid import Cell, GridSpec
from bench.planning.plan import plan_grid
from bench.results.context import CellContext
from bench.results.store import ResultStore
from bench.running.runner import run_grid
from core.errors import BenchError

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def _plans(seeds=(0, 1, 2), methods=("toy-identity",), **kwargs):
    return plan_grid(GridSpec(methods=list(methods), datasets=["toy-data"], seeds=list(seeds),
                              **kwargs))


def _metrics(store):
    return {r["id"]: r["metrics"] for r in store.results()}


def test_run_stores_complete_results(toys, tmp_path):
    store = ResultStore(tmp_path / "results")
    plans = _plans()
    outcomes = run_grid(plans, store)
    assert [o.ok for o in outcomes] == [True] * 3
    result = store.load(plans[1].id)
    for key in ("config", "seed", "metrics", "stages", "versions", "host", "peak_rss_mib",
                "started", "finished", "metric_settings", "config_hash", "profile"):
        assert key in result, key
    assert result["seed"] == 1 and result["config"] == {"scale": 1.0, "steps": 4, "mix": 0.0}
    assert result["metrics"]["mig"] == pytest.approx(1.0)  # identity codes: perfect score
    assert [s["name"] for s in result["stages"]] == ["train", "representation-metrics"]
    assert not any(s["cache_hit"] for s in result["stages"])
    assert result["versions"]["numpy"] == np.__version__
    text = store.result_path(plans[1].id).read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert toys.read_text().split() == ["0", "1", "2"]


def test_rerun_does_no_work_and_gives_identical_numbers(toys, tmp_path):
    store = ResultStore(tmp_path / "results")
    plans = _plans()
    run_grid(plans, store)
    first = _metrics(store)
    assert run_grid(plans, store) == []  # every cell complete: nothing runs
    assert toys.read_text().split() == ["0", "1", "2"]
    # results lost but stage cache kept: cells are rebuilt from cache without training
    for plan in plans:
        store.result_path(plan.id).unlink()
    run_grid(plans, store)
    assert toys.read_text().split() == ["0", "1", "2"]
    assert _metrics(store) == first
    assert all(s["cache_hit"] for r in store.results() for s in r["stages"])
    # a fresh folder recomputes everything and still gets the same numbers (determinism)
    fresh = ResultStore(tmp_path / "fresh")
    run_grid(plans, fresh)
    assert _metrics(fresh) == first
    assert len(set(json.dumps(m, sort_keys=True) for m in first.values())) == 3  # seeds differ


def test_stage_shared_between_grids(toys, tmp_path):
    store = ResultStore(tmp_path / "results")
    run_grid(_plans(seeds=[0]), store)
    # a different profile changes the metrics stage but shares the training stage only if the
    # resolved config is the same: "paper" steps differ, so force the same steps
    other = _plans(seeds=[0], profile="paper", overrides={"*": {"steps": 4}})
    run_grid(other, store)
    stages = store.load(other[0].id)["stages"]
    assert [s["cache_hit"] for s in stages] == [True, False]
    assert toys.read_text().split() == ["0"]


def test_representation_training_is_shared_by_bundles_of_the_same_data(toys, tmp_path):
    """A representation method trains on ground truth alone: a bundle with the same data and
    a generator reuses the training stage; the cells stay distinct."""
    store = ResultStore(tmp_path / "results")
    plans = plan_grid(GridSpec(methods=["toy-identity"], seeds=[0],
                               datasets=["toy-data", "toy-data-with-generator"]))
    assert len({plan.id for plan in plans}) == 2
    run_grid(plans, store)
    assert toys.read_text().split() == ["0"]  # trained once
    hits = [{s["name"]: s["cache_hit"] for s in store.load(plan.id)["stages"]} for plan in plans]
    assert hits == [{"train": False, "representation-metrics": False},
                    {"train": True, "representation-metrics": True}]
    first, second = (store.load(plan.id)["metrics"] for plan in plans)
    assert first == second


def test_failing_cell_is_reported_and_others_run(toys, tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_FAIL_SEED", "1")
    store = ResultStore(tmp_path / "results")
    plans = _plans()
    outcomes = {o.cell_id: o for o in run_grid(plans, store)}
    assert outcomes[plans[1].id].ok is False
    assert "toy training failed for seed 1" in outcomes[plans[1].id].error
    assert not store.is_complete(plans[1].id)
    assert (store.run_dir(plans[1].id) / "error.txt").is_file()
    assert store.is_complete(plans[0].id) and store.is_complete(plans[2].id)
    assert not list((store.cache_dir / "train").glob(".tmp-*"))
    monkeypatch.delenv("TOY_FAIL_SEED")
    assert [o.ok for o in run_grid(plans, store)] == [True]


def test_nan_metric_fails_the_cell(toys, tmp_path):
    store = ResultStore(tmp_path / "results")
    (outcome,) = run_grid(_plans(seeds=[0], methods=["toy-nan"]), store)
    assert not outcome.ok and "not finite" in outcome.error
    assert store.results() == []


def _context(tmp_path, versions=None):
    store = ResultStore(tmp_path)
    return CellContext(cell=Cell("m", "d", 7, "quick"), bundle=None, config=ToyConfig(),
                       store=store, artifacts_dir=store.prepare_run_dir("x"),
                       stage_versions=versions or {"s": 1})


def test_a_stage_records_its_cpu_time_beside_its_wall_time(tmp_path):
    """A stage that waits costs wall time and almost no CPU; one that computes costs both."""
    ctx = _context(tmp_path, {"wait": 1, "work": 1})

    def busy(directory):
        start = time.process_time()
        while time.process_time() - start < 0.3:
            pass

    ctx.json_stage("wait", {}, lambda: time.sleep(0.3))
    ctx.stage("work", {}, busy, lambda directory: None)
    wait, work = (record.as_dict() for record in ctx.stages)
    assert wait["seconds"] >= 0.3 and wait["cpu_seconds"] < 0.2
    assert work["cpu_seconds"] >= 0.3 and work["seconds"] >= 0.3
    ctx.json_stage("wait", {}, lambda: time.sleep(0.3))  # served by the cache: no wait
    assert ctx.stages[-1].cache_hit and ctx.stages[-1].cpu_seconds < 0.2


def test_named_streams(tmp_path):
    ctx = _context(tmp_path)
    assert ctx.rng("a").integers(1 << 30, size=4).tolist() == \
        ctx.rng("a").integers(1 << 30, size=4).tolist()
    assert ctx.rng("a").integers(1 << 30) != ctx.rng("b").integers(1 << 30)
    seed = ctx.torch_seed("a")
    assert seed == ctx.torch_seed("a") and seed != ctx.torch_seed("b") and 0 <= seed < 2**63


def test_stage_cache_and_errors(tmp_path):
    ctx = _context(tmp_path)
    calls = []

    def compute(directory):
        calls.append(1)
        (directory / "out.txt").write_text("42")

    def load(directory):
        return (directory / "out.txt").read_text()

    assert ctx.stage("s", {"a": 1}, compute, load) == "42"
    assert ctx.stage("s", {"a": 1}, compute, load) == "42"
    assert len(calls) == 1 and [r.cache_hit for r in ctx.stages] == [False, True]
    ctx.stage("s", {"a": 2}, compute, load)
    assert len(calls) == 2
    salted = _context(tmp_path, {"s": 2})  # bumping the salt invalidates the cache
    salted.stage("s", {"a": 1}, compute, load)
    assert len(calls) == 3

    def broken(directory):
        (directory / "half").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        ctx.stage("s", {"a": 3}, broken, load)
    assert sorted(p.name for p in (tmp_path / "cache" / "s").iterdir()) == \
        sorted(r.key for r in ctx.stages + salted.stages if r.cache_hit is False)
    with pytest.raises(ValueError, match="no version salt"):
        ctx.stage("unknown", {}, compute, load)


def test_artifacts_are_recorded_relative_to_results(tmp_path):
    ctx = _context(tmp_path)
    (ctx.artifacts_dir / "traversal.png").write_bytes(b"png")
    ctx.add_artifact("figures", "traversal", "traversal.png")
    assert ctx.artifacts == {"figures": {"traversal": "runs/x/traversal.png"}}
    with pytest.raises(FileNotFoundError):
        ctx.add_artifact("figures", "missing", "nope.png")


def test_missing_directions_flow_is_a_clear_error(monkeypatch):
    from bench.flows import base as flow

    flow.FLOWS.load_builtins()
    monkeypatch.delitem(flow.FLOWS._entries, "directions")
    with pytest.raises(BenchError, match="directions flow is not available"):
        flow.flow_stage_versions("directions")


def _bench(args, results, **env):
    full_env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{REPO}",
                "BENCH_PLUGINS": "bench_toy_plugin", **env}
    return ["python", "-m", "bench", "run", "--methods", "toy-identity", "--datasets",
            "toy-data", "--results", str(results), "--quiet", *args], full_env


def test_sigkill_mid_grid_leaves_no_partial_result_and_resumes(tmp_path):
    """Kill a run while it trains seed 1; the rerun (in a process pool) redoes only 1 and 2."""
    results, counter, ready = tmp_path / "results", tmp_path / "counter", tmp_path / "ready"
    cmd, env = _bench(["--seeds", "0-2"], results, TOY_COUNTER=str(counter),
                      TOY_BLOCK_SEED="1", TOY_READY=str(ready))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "toy training never started"
            time.sleep(0.05)
        # another run on the same folder is refused while the first holds the lock
        with pytest.raises(BenchError, match=f"in use by another bench run \\(PID {proc.pid}\\)"):
            with ResultStore(results).lock():
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    finished = sorted(results.glob("runs/*/result.json"))
    assert len(finished) == 1 and json.loads(finished[0].read_text())["seed"] == 0
    assert list(results.glob("cache/train/.tmp-*"))  # the killed stage's temporary folder
    cmd, env = _bench(["--seeds", "0-2", "--jobs", "2", "--no-leaderboard"], results,
                      TOY_COUNTER=str(counter))
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "3 cell(s): 2 run, 1 already done, 0 failed" in done.stderr
    assert sorted(counter.read_text().split()) == ["0", "1", "1", "2"]  # seed 0 not retrained
    assert sorted(json.loads(p.read_text())["seed"]
                  for p in results.glob("runs/*/result.json")) == [0, 1, 2]
    assert not list(results.glob("cache/*/.tmp-*"))
    # the resumed, partly parallel run gives the numbers of one serial run
    register_toys()
    try:
        serial = ResultStore(tmp_path / "serial")
        run_grid(_plans(), serial)
    finally:
        unregister_toys()
    assert _metrics(ResultStore(results)) == _metrics(serial)
