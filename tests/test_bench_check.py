"""Regression check against baselines, and ``check --update``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.cli import main
from bench.flows.base import score_metadata
from bench.reports.regress import (
    BASELINE_SCHEMA,
    CROSS_HOST_FACTOR,
    baseline_cell,
    check_score_keys,
    compare,
    load_baselines,
    update_baselines,
)
from bench.results.store import ResultStore, UnknownSchema
from core.errors import BenchError
from metrics.registry import ScoreKey, score_keys

REPO = Path(__file__).resolve().parent.parent


def result(seed=0, **metrics):
    return {"id": f"id{seed}", "config_hash": "c", "method": "m", "dataset": "d", "seed": seed,
            "profile": "quick", "config": {"steps": 10}, "metrics": metrics or {"mig": 0.5}}


def baseline(seed=0, config=None, **metrics):
    cell = result(seed, **metrics)
    cell["config"] = config or cell["config"]
    return cell


INFO = {**score_keys(), "err": ScoreKey("err", "an error rate", higher_is_better=False)}


def test_regression_beyond_tolerance_fails():
    report = compare([baseline(mig=0.6)], [result(mig=0.5)], INFO)
    assert not report.ok
    (line,) = report.failures
    assert line.startswith("REGRESSED") and "mig 0.6000 -> 0.5000 (-0.1000" in line
    assert "FAILED: 1 problem" in report.render()


def test_within_tolerance_or_better_passes():
    assert compare([baseline(mig=0.52)], [result(mig=0.5)], INFO).ok
    report = compare([baseline(mig=0.3)], [result(mig=0.5)], INFO)
    assert report.ok and report.notes[0].startswith("improved")
    assert report.checked_metrics == 1 and "check: OK" in report.render()


def test_direction_comes_from_metric_info():
    assert not compare([baseline(err=0.1)], [result(err=0.2)], INFO).ok
    assert compare([baseline(err=0.2)], [result(err=0.1)], INFO).ok


def test_a_baseline_that_two_results_match_is_ambiguous(tmp_path):
    older = {**result(mig=0.9), "id": "older"}  # e.g. the same cell on an older generator
    report = compare([baseline(mig=0.5)], [older, result(mig=0.5)], INFO)
    (line,) = report.failures
    assert line.startswith("AMBIGUOUS") and "ids id0, older" in line and "--grid" in line
    assert compare([baseline(mig=0.5)], [result(mig=0.5), result(mig=0.5)], INFO).ok
    with pytest.raises(BenchError, match="cannot update the baseline of m / d / seed 0 / quick"):
        update_baselines(tmp_path, [older, result(mig=0.5)])
    assert not list(tmp_path.iterdir())


def test_missing_cell_and_missing_metric_fail():
    report = compare([baseline(seed=0), baseline(seed=1)], [result(seed=0)], INFO)
    assert len(report.failures) == 1 and "MISSING" in report.failures[0]
    assert "seed 1" in report.failures[0]
    report = compare([baseline(mig=0.5, sap=0.4)], [result(mig=0.5)], INFO)
    assert "metric sap not reported" in report.failures[0]
    # same (method, dataset, seed, profile) but another config: say so
    report = compare([baseline(config={"steps": 11})], [result()], INFO)
    assert "another method config exists (id id0)" in report.failures[0]
    # other ids (library versions, metric settings) with the same method config still match
    assert compare([{**baseline(), "id": "other"}], [result()], INFO).ok


def test_a_score_without_metadata_stops_the_check_unless_allowed():
    """A key without direction and tolerance cannot be checked (0.9 -> 0.5 would pass
    unseen): it is an error naming the keys and the flag, in a baseline cell or its result;
    --allow-unchecked leaves it out with one warning per key."""
    for base, current in (([baseline(mig=0.5, odd=0.9)], [result(mig=0.5, odd=0.5)]),
                          ([baseline(mig=0.5)], [result(mig=0.5, odd=0.5)]),
                          ([baseline(mig=0.5, odd=0.9, zzz=1.0)], [result(mig=0.5)])):
        with pytest.raises(BenchError, match=r"score key\(s\) odd.* have no metadata "
                           r"\(direction, tolerance\).*--allow-unchecked"):
            compare(base, current, INFO)
    report = compare([baseline(0, mig=0.5, odd=0.9, zzz=1.0), baseline(1, mig=0.5, odd=0.9)],
                     [result(0, mig=0.5, odd=0.5, zzz=1.0), result(1, mig=0.5, odd=0.5)],
                     INFO, allow_unchecked=True)
    assert report.ok and report.checked_metrics == 2
    assert report.warnings == [
        "unchecked score odd: no metadata (direction, tolerance); left out of the check in 4 "
        "cell(s) (--allow-unchecked)",
        "unchecked score zzz: no metadata (direction, tolerance); left out of the check in 2 "
        "cell(s) (--allow-unchecked)"]
    # keys of results that no baseline cell matches are not compared, so not asked for
    assert compare([baseline(0)], [result(0), {**result(5), "metrics": {"odd": 1.0}}], INFO).ok
    assert check_score_keys([result(mig=0.5)], INFO) == []


def test_every_committed_score_key_has_metadata():
    """Every key in results/baselines/*.json and results/papers/runs/*/result.json, the flows'
    own keys included (pairs_kept_fraction), has direction, tolerance and description."""
    info = score_metadata()
    keys = set()
    for path in sorted((REPO / "results" / "baselines").glob("*.json")):
        keys |= {k for cell in json.loads(path.read_text())["cells"] for k in cell["metrics"]}
    runs = sorted((REPO / "results" / "papers" / "runs").glob("*/result.json"))
    assert len(runs) > 50
    for path in runs:
        keys |= set(json.loads(path.read_text())["metrics"])
    assert "pairs_kept_fraction" in keys and sorted(keys - set(info)) == []
    for key in keys:
        assert info[key].description and info[key].tolerance > 0
    assert "pairs_kept_fraction" not in score_keys()  # declared by the directions flow
    assert "the configured dedup_threshold, 0.95 by default" in \
        info["pairs_kept_fraction"].description


def test_committed_baselines_pass_against_themselves():
    """The CI grid's committed baseline cells, taken as the current results, pass the check
    with every score compared (no key without metadata, none left out)."""
    cells = load_baselines(REPO / "results" / "baselines")
    assert {c["method"] for c in cells} == {"beta-vae", "sefa"}
    results = [{**c, "host": {"cpu_model": (c.get("numerics") or {}).get("cpu_model"),
                              "cpu_features": (c.get("numerics") or {}).get("cpu_features")},
                "versions": {"cpu_isa_caps": (c.get("numerics") or {}).get("cpu_isa_caps")}}
               for c in cells]
    report = compare(cells, results)
    assert report.ok and not report.warnings and not report.notes, report.render()
    assert report.checked_metrics == sum(len(c["metrics"]) for c in cells)
    # pairs_kept_fraction is checked: a drop beyond its tolerance (0.2) is a regression
    (sefa,) = [r for r in results if r["method"] == "sefa"]
    worse = {**sefa, "metrics": {**sefa["metrics"],
                                 "pairs_kept_fraction": sefa["metrics"]["pairs_kept_fraction"]
                                 - 0.3}}
    report = compare(cells, [r for r in results if r is not sefa] + [worse])
    (line,) = report.failures
    assert line.startswith("REGRESSED") and "pairs_kept_fraction" in line


def test_update_roundtrip(tmp_path):
    update_baselines(tmp_path, [result(0), result(1)])
    assert [p.name for p in tmp_path.iterdir()] == ["d--quick.json"]
    cells = load_baselines(tmp_path)
    assert compare(cells, [result(0), result(1)], INFO).ok
    newer = {**result(1), "id": "new1", "config": {"steps": 3}, "metrics": {"mig": 0.9}}
    update_baselines(tmp_path, [newer])  # replaces the same cell only
    cells = load_baselines(tmp_path)
    assert sorted(c["id"] for c in cells) == ["id0", "new1"]
    (tmp_path / "bad.json").write_text(json.dumps({"cells": [{"id": "x"}]}))
    with pytest.raises(Exception, match="lacks"):
        load_baselines(tmp_path)


def test_check_cli(tmp_path, capsys):
    store = ResultStore(tmp_path / "results")
    store.write("id0", {**result(0), "metrics": {"mig": 0.5}})
    args = ["check", "--results", str(store.root)]
    assert main(args) == 2  # no baselines yet
    assert "check --update" in capsys.readouterr().err
    assert main([*args, "--update"]) == 0
    assert main(args) == 0
    baseline_file = store.root / "baselines" / "d--quick.json"
    data = json.loads(baseline_file.read_text())
    data["cells"][0]["metrics"]["mig"] = 0.6  # baseline 0.1 better than the result
    baseline_file.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "REGRESSED  m / d / seed 0 / quick: mig 0.6000 -> 0.5000" in out
    data["cells"][0]["metrics"]["mig"] = 0.53  # within tolerance 0.05
    baseline_file.write_text(json.dumps(data))
    assert main(args) == 0
    data["cells"].append({**data["cells"][0], "seed": 1})
    baseline_file.write_text(json.dumps(data))
    assert main(args) == 1
    assert "MISSING" in capsys.readouterr().out


def test_check_cli_unchecked_scores(tmp_path, capsys):
    """The issue's case: a score without metadata moved from 0.9 to 0.5. `check` and
    `check --update` stop with one line (nothing written); --allow-unchecked warns once per
    key and checks the rest."""
    store = ResultStore(tmp_path / "results")
    store.write("id0", {**result(0), "metrics": {"mig": 0.5, "odd": 0.9}})
    args = ["check", "--results", str(store.root)]
    assert main([*args, "--update"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: score key(s) odd have no metadata") and "--allow-unchecked" in err
    assert len(err.splitlines()) == 1 and not (store.root / "baselines").exists()
    assert not (store.root / ".lock").exists()
    assert main([*args, "--update", "--allow-unchecked"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "warning: unchecked score odd: no metadata (direction, tolerance); left out of the "
        "check in 1 cell(s) (--allow-unchecked)"]
    store.write("id0", {**result(0), "metrics": {"mig": 0.5, "odd": 0.5}})
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: score key(s) odd have no metadata")
    assert len(captured.err.splitlines()) == 1 and captured.out == ""
    assert main([*args, "--allow-unchecked"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "warning: unchecked score odd: no metadata (direction, tolerance); left out of the "
        "check in 2 cell(s) (--allow-unchecked)"]
    assert "check: OK in 1 baseline cell(s), 1 metric(s) compared" in captured.out


def test_update_never_deletes_uncovered_baselines(tmp_path):
    other = {**result(0), "dataset": "e"}
    update_baselines(tmp_path, [result(0), result(1), other])
    update_baselines(tmp_path, [{**result(1), "metrics": {"mig": 0.7}}])
    cells = {(c["dataset"], c["seed"]): c["metrics"]["mig"] for c in load_baselines(tmp_path)}
    assert cells == {("d", 0): 0.5, ("d", 1): 0.7, ("e", 0): 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d--quick.json", "e--quick.json"]


@pytest.mark.parametrize(("cells", "fragment"), [
    ([5], "cell 0 is not an object"), ([{**result(0), "seed": "0"}], "'seed' is '0'"),
    ([{**result(0), "metrics": {"mig": "x"}}], "expected a finite number"),
    ([{**result(0), "config": []}], "'config' is []"),
    ([{**result(0), "numerics": "AMD"}], "'numerics' is 'AMD': expected an object")])
def test_baseline_cells_are_type_checked(tmp_path, cells, fragment):
    (tmp_path / "d--quick.json").write_text(json.dumps({"cells": cells}))
    with pytest.raises(BenchError, match=re.escape(fragment)):
        load_baselines(tmp_path)


def on_cpu(model: str, cell: dict) -> dict:
    """``cell`` as a result.json made on a CPU ``model`` records it."""
    return {**cell, "host": {"cpu_model": model, "cpu_features": ["avx2", "fma"]},
            "versions": {"cpu_isa_caps": {"MKL_CBWR": "AVX2,STRICT"}}}


def test_a_result_from_another_cpu_is_compared_with_wider_tolerances(tmp_path):
    base = baseline_cell(on_cpu("AMD EPYC", result(mig=0.6)))
    assert base["numerics"] == {"cpu_model": "AMD EPYC", "cpu_features": ["avx2", "fma"],
                                "cpu_isa_caps": {"MKL_CBWR": "AVX2,STRICT"}}
    # the same numerics: the registry's tolerance (0.05)
    assert not compare([base], [on_cpu("AMD EPYC", result(mig=0.5))], INFO).ok
    # another CPU model: 4 x 0.05, said in a note
    assert CROSS_HOST_FACTOR == 4.0
    report = compare([base], [on_cpu("Xeon", result(mig=0.5))], INFO)
    assert report.ok, report.failures
    assert report.notes[0].startswith("other CPU") and "AMD EPYC" in report.notes[0]
    assert "Xeon" in report.notes[0]
    # broken code still fails there
    report = compare([base], [on_cpu("Xeon", result(mig=0.35))], INFO)
    assert "tolerance 0.2," in report.failures[0]
    # other features or caps on the same model are other numerics too
    other_caps = on_cpu("AMD EPYC", result(mig=0.5))
    other_caps["versions"] = {"cpu_isa_caps": {}}
    assert compare([base], [other_caps], INFO).ok
    # a baseline made before numerics were recorded counts as another CPU
    assert compare([baseline(mig=0.6)], [on_cpu("Xeon", result(mig=0.5))], INFO).ok
    # check --update records them
    update_baselines(tmp_path, [on_cpu("Xeon", result(mig=0.5))])
    (cell,) = load_baselines(tmp_path)
    assert cell["numerics"]["cpu_model"] == "Xeon"


def test_baseline_schema_versions(tmp_path):
    """A baseline file without "schema" is version 1; one of another version is named with the
    versions this release reads; a written file records the version."""
    cell = baseline_cell({**result(0), "metrics": {"mig": 0.5}})
    path = tmp_path / "d--quick.json"
    path.write_text(json.dumps({"cells": [cell]}))
    assert load_baselines(tmp_path) == [cell]
    path.write_text(json.dumps({"schema": 2, "cells": [cell]}))
    with pytest.raises(UnknownSchema, match=re.escape(
            f"baseline file {path} has schema 2: this release reads schema 1 (")):
        load_baselines(tmp_path)
    path.write_text(json.dumps({"schema": "one", "cells": [cell]}))
    with pytest.raises(BenchError, match="'schema' is 'one': expected an integer"):
        load_baselines(tmp_path)
    path.unlink()
    update_baselines(tmp_path, [result(0)])
    assert json.loads(path.read_text())["schema"] == BASELINE_SCHEMA == 1
