"""The CLI with its default relative ``results`` folder, run from another working directory, as a
new user runs it: a directions cell on the shipped oracle bundle and a representation cell, each
with tiny sizes, end with complete result files whose artifact paths resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.flows.directions as flow
import distill.group_vae as group_vae
from bench.cli import main
from metrics.bank import BANK_PROFILES
from metrics.discovery import CalibrationConfig, DiscoveryConfig
from metrics.registry import METRICS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_METRICS = {
    "bank": {"num_train": 60, "num_test": 30},
    "fvm": {"batch_size": 8, "num_train": 12, "num_eval": 8, "num_variance_estimate": 64},
    "betavae": {"batch_size": 8, "num_train": 12, "num_eval": 8},
}


@pytest.fixture
def tiny_quick(monkeypatch, tmp_path):
    """Shrink every quick-profile size and run from an empty working directory."""
    monkeypatch.setitem(flow.FLOW_PROFILES, "quick", {
        "discovery": DiscoveryConfig(num_samples=8, num_directions=3, batch_size=8),
        "calibration": CalibrationConfig(num_samples=4, spread_samples=100),
        "num_pairs": 24, "pair_batch": 12, "traversal_rows": 3, "traversal_steps": 3,
        "traversal_seeds": 1})
    monkeypatch.setitem(group_vae.GROUP_VAE_PROFILES, "quick",
                        {"steps": 3, "batch_size": 8, "lr": 5e-4})
    monkeypatch.setitem(BANK_PROFILES, "quick", TINY_METRICS["bank"])
    for name in ("fvm", "betavae"):
        monkeypatch.setitem(METRICS.get(name).profiles, "quick", TINY_METRICS[name])
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def _single_result(workdir: Path) -> dict:
    (path,) = (workdir / "results" / "runs").glob("*/result.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _assert_artifacts_resolve(workdir: Path, result: dict) -> list[str]:
    paths = [rel for group in result["artifacts"].values() for rel in group.values()]
    for rel in paths:
        assert not Path(rel).is_absolute() and rel.startswith("runs/"), rel
        assert (workdir / "results" / rel).is_file(), rel
    return paths


def test_directions_cell_with_default_relative_results(tiny_quick, capsys) -> None:
    code = main(["run", "--methods", "random", "--datasets", "shapes3d-oracle", "--seeds", "0",
                 "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1 run, 0 already done, 0 failed" in err
    result = _single_result(tiny_quick)
    paths = _assert_artifacts_resolve(tiny_quick, result)
    assert any(p.endswith("R_absdiff.npy") for p in paths)
    assert any(p.endswith(".png") for p in paths)
    assert {"disentanglement_score", "attribute_count", "mig"} <= set(result["metrics"])
    assert "| random" in out
    # the leaderboard and a rerun see the same folder, from the same relative name
    assert main(["run", "--methods", "random", "--datasets", "shapes3d-oracle", "--seeds", "0",
                 "--quiet"]) == 0
    assert "0 run, 1 already done" in capsys.readouterr().err
    assert main(["leaderboard"]) == 0
    assert (tiny_quick / "results" / "LEADERBOARD.md").is_file()


def test_representation_cell_with_default_relative_results(tiny_quick, capsys) -> None:
    code = main(["run", "--methods", "beta-vae", "--datasets", "shapes3d-synth", "--seeds", "0",
                 "--set", "beta-vae.steps=2", "--quiet"])
    _, err = capsys.readouterr()
    assert code == 0, err
    result = _single_result(tiny_quick)
    _assert_artifacts_resolve(tiny_quick, result)
    assert {"mig", "fvm_eval_accuracy", "dci_disentanglement"} <= set(result["metrics"])
    assert all(Path(p).is_relative_to(tiny_quick / "results")
               for p in (tiny_quick / "results").rglob("*"))
