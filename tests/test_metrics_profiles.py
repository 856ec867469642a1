"""Metrics profiles: ``disco`` pins DisCo's evaluation settings, enters a cell's id only when
chosen (``--metrics-profile disco`` -> profile ``quick+disco``) and changes nothing else."""

from __future__ import annotations

import re

import pytest
from bench_toys import register_toys, unregister_toys

from bench.cli import build_parser, grid_from_args, main
from bench.grid import GridSpec, load_grid_file
from bench.planning.plan import plan_grid
from core.config import check_profile, split_profile
from core.errors import BenchError, SettingError
from methods.base import method_spec
from metrics.profiles import DISCO, METRICS_PROFILES, metrics_profile
from metrics.sampling import metric_settings

# DisCo's evaluate.py (xrenaa/DisCo @ a3ceda76), the values it binds with gin, written out
# again here so that a change to the profile fails a test.
DISCO_BINDINGS = {
    "bank": {"num_train": 10000, "num_test": 5000},  # dci.num_train/num_test, mig.num_train
    "fvm": {"num_variance_estimate": 10000, "num_train": 10000, "num_eval": 5000,
            "batch_size": 64, "prune_threshold": 0.05},
    "mig": {"num_bins": 20},
    "dci": {"mode": "exact"},  # disentanglement_lib's GradientBoostingClassifier()
    "betavae": {"batch_size": 64, "num_train": 10000, "num_eval": 5000},
}


def test_disco_profile_holds_disco_values_each_with_a_source() -> None:
    assert METRICS_PROFILES == {"disco": DISCO}
    assert {k: dict(v) for k, v in DISCO.settings.items()} == DISCO_BINDINGS
    assert set(DISCO.sources) == {f"{metric}.{field}" for metric, fields in
                                  DISCO_BINDINGS.items() for field in fields}
    for key, source in DISCO.sources.items():
        if key != "dci.mode":
            assert source.startswith("xrenaa/DisCo@a3ceda76 evaluate.py line"), key
    assert "GradientBoostingClassifier()" in DISCO.sources["dci.mode"]


@pytest.mark.parametrize("base", ["quick", "paper"])
def test_pinned_settings_whatever_the_profile(base: str) -> None:
    plain, pinned = metric_settings(base), metric_settings(f"{base}+disco")
    assert pinned["profile"] == f"{base}+disco" and plain["profile"] == base
    for name, values in DISCO_BINDINGS.items():
        assert pinned[name] == values, name
    for name in set(plain) - set(DISCO_BINDINGS) - {"profile"}:
        assert pinned[name] == plain[name], name  # sap, modularity: the profile's own
    if base == "quick":
        assert plain["bank"] == {"num_train": 3000, "num_test": 1500}  # quick is unchanged
        assert plain["dci"] == {"mode": "fast"}
    # overrides still come last
    assert metric_settings(f"{base}+disco", {"mig": {"num_bins": 10}})["mig"]["num_bins"] == 10


def test_profile_names() -> None:
    assert split_profile("quick") == ("quick", None)
    assert split_profile("paper+disco") == ("paper", "disco")
    assert metrics_profile("quick") is None and metrics_profile("quick+disco") is DISCO
    for bad in ("quick+", "fast+disco", "quick+disco+x", "+disco"):
        with pytest.raises(SettingError, match=re.escape(f"unknown profile {bad!r}")):
            check_profile(bad)
    with pytest.raises(SettingError, match="unknown metrics profile 'dlib' in profile "
                                           "'quick\\+dlib' \\(expected one of disco\\)"):
        metric_settings("quick+dlib")
    # methods, flows and the group VAE resolve at the profile before the mark
    spec = method_spec("sefa")
    assert spec.config("quick+disco") == spec.config("quick") != spec.config("paper")


def test_metrics_profile_enters_the_cell_id_only_when_chosen(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BENCH_DATA", raising=False)
    grid = {"methods": ["beta-vae"], "datasets": ["shapes3d-synth"]}
    plain = plan_grid(GridSpec(**grid))
    again = plan_grid(GridSpec(**grid, metrics_profile=None))
    pinned = plan_grid(GridSpec(**grid, metrics_profile="disco"))
    assert [p.id for p in plain] == [p.id for p in again]
    assert pinned[0].cell.profile == "quick+disco" and pinned[0].id != plain[0].id
    assert pinned[0].config == plain[0].config  # the method is the quick one
    assert pinned[0].metric_settings["bank"] == DISCO_BINDINGS["bank"]
    with pytest.raises(BenchError, match="unknown metrics profile 'dlib'"):
        plan_grid(GridSpec(**grid, metrics_profile="dlib"))
    with pytest.raises(BenchError, match="already names a metrics profile"):
        plan_grid(GridSpec(**grid, profile="quick+disco", metrics_profile="disco"))
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text('profile = "paper"\nmetrics_profile = "disco"\n')
    assert load_grid_file(grid_file).cell_profile == "paper+disco"
    grid_file.write_text("metrics_profile = 3\n")
    with pytest.raises(BenchError, match="bad metrics_profile 3: expected a name"):
        load_grid_file(grid_file)
    args = build_parser().parse_args(["run", "--metrics-profile", "disco", "--profile", "paper"])
    assert grid_from_args(args).cell_profile == "paper+disco"


@pytest.fixture
def toy_plugin():
    register_toys()
    yield
    unregister_toys()


def test_a_metrics_profile_cell_reuses_the_trained_encoder(toy_plugin, capsys, tmp_path) -> None:
    """The same grid with and without --metrics-profile: two cells, two leaderboard tables, one
    training (the toy metrics provider stands in for metrics.sampling)."""
    from bench.results.store import ResultStore

    common = ["run", "--methods", "toy-identity", "--datasets", "toy-data", "--results",
              str(tmp_path), "--quiet"]
    assert main(common) == 0
    assert main([*common, "--metrics-profile", "disco"]) == 0
    out = capsys.readouterr().out
    assert "## toy-data (quick+disco)" in out
    results = {r["profile"]: r for r in ResultStore(tmp_path).results()}
    assert set(results) == {"quick", "quick+disco"}
    stages = {profile: {s["name"]: s for s in r["stages"]} for profile, r in results.items()}
    assert stages["quick"]["train"]["key"] == stages["quick+disco"]["train"]["key"]
    assert stages["quick+disco"]["train"]["cache_hit"]
    assert (stages["quick"]["representation-metrics"]["key"]
            != stages["quick+disco"]["representation-metrics"]["key"])
