"""Direction recovery (``metrics.recovery``): known answers of the statistic and its random
reference, the score a directions cell on an oracle bundle records, ``bench rescore`` filling it
in for a cell run without it (equal to the flow's own value, refused when R differs), and its
view in the leaderboard."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import bench.flows.directions as flow
import distill.group_vae as group_vae
from bench.cli import main
from bench.reports.leaderboard import build_tables, recovery_table, render_markdown
from metrics.bank import BANK_PROFILES
from metrics.discovery import CalibrationConfig, DiscoveryConfig
from metrics.recovery import (
    RANDOM_DRAWS,
    best_cos,
    direction_recovery,
    exact_wplus,
)
from metrics.registry import METRICS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _orthonormal(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return q[:, :rows].T


# -- the statistic ----------------------------------------------------------------------------


def test_exact_directions_recover_fully_and_a_half_set_scores_a_half() -> None:
    true = _orthonormal(6, 32)
    found = np.concatenate([-true[[2, 0, 1]], true[[5, 4, 3]] * 3.0])[:, None, :]
    out = direction_recovery(found, true, None, np.random.default_rng(0))
    assert set(out) == {"w"}  # one W+ row: no W+ reading
    assert out["w"].score == pytest.approx(1.0, abs=1e-12)
    # three of six factors found exactly, the others orthogonal to every found direction
    half = direction_recovery(true[:3, None, :], true, None, np.random.default_rng(0))["w"]
    assert half.per_factor == pytest.approx([1, 1, 1, 0, 0, 0], abs=1e-12)
    assert half.score == pytest.approx(0.5, abs=1e-12)


def test_random_reference_is_the_statistic_of_random_directions() -> None:
    """Six random directions in W (w_dim 32) against six orthonormal ones: the median of the
    mean best |cos| over draws is about 0.29 (docs/peers.md measured 0.29 over 50 draws); the
    95th percentile lies above it; one seed gives one reference."""
    true = _orthonormal(6, 32)
    found = true[:, None, :]
    first = direction_recovery(found, true, None, np.random.default_rng(7))["w"]
    again = direction_recovery(found, true, None, np.random.default_rng(7))["w"]
    other = direction_recovery(found, true, None, np.random.default_rng(8))["w"]
    assert first == again
    assert first.random_median != other.random_median
    assert 0.25 < first.random_median < 0.33
    assert first.random_median < first.random_p95 < 0.45
    # the same by brute force: the median of RANDOM_DRAWS draws of the statistic
    draws = np.random.default_rng(7).standard_normal((RANDOM_DRAWS, 6, 32))
    stats = [best_cos(d, true).mean() for d in draws]
    assert first.random_median == pytest.approx(float(np.median(stats)), rel=1e-12)


def test_layered_reading_rewards_row_selective_edits_only() -> None:
    """On 12 W+ rows, factor j's exact edit is q_j on its home row: the edit itself scores 1 in
    W+, the same direction broadcast to every row 1/sqrt(12), and both read as q_j in W."""
    true, homes, num_ws = _orthonormal(6, 32), [1, 3, 5, 6, 8, 10], 12
    exact = exact_wplus(true, homes, num_ws).reshape(6, num_ws, 32)
    broadcast = np.repeat(true[:, None, :], num_ws, axis=1)
    rng = np.random.default_rng(0)
    on_home = direction_recovery(exact, true, homes, rng)
    spread = direction_recovery(broadcast, true, homes, rng)
    assert on_home["w"].score == pytest.approx(1.0) and spread["w"].score == pytest.approx(1.0)
    assert on_home["wplus"].score == pytest.approx(1.0)
    assert spread["wplus"].score == pytest.approx(1 / math.sqrt(12))
    assert spread["wplus"].random_p95 < 0.2  # 6 random directions in 384 dimensions


def test_a_direction_whose_rows_cancel_matches_nothing_and_shapes_are_checked() -> None:
    true = _orthonormal(6, 8)
    cancel = np.stack([true[0], -true[0]])[None]  # +q0 on row 0, -q0 on row 1: net W edit 0
    out = direction_recovery(cancel, true, [0, 0, 0, 1, 1, 1], np.random.default_rng(0))
    assert out["w"].per_factor == [0.0] * 6
    assert out["wplus"].per_factor[0] == pytest.approx(1 / math.sqrt(2))
    with pytest.raises(ValueError, match="one home row per factor"):
        direction_recovery(cancel, true, None, np.random.default_rng(0))
    with pytest.raises(ValueError, match="same w_dim|one w_dim"):
        direction_recovery(np.ones((2, 1, 5)), true, None, np.random.default_rng(0))


# -- the cells, bench rescore and the leaderboard -----------------------------------------------

TINY_METRICS = {
    "bank": {"num_train": 60, "num_test": 30},
    "fvm": {"batch_size": 8, "num_train": 12, "num_eval": 8, "num_variance_estimate": 64},
    "betavae": {"batch_size": 8, "num_train": 12, "num_eval": 8},
}
GRID = ["--methods", "oracle,random", "--datasets", "shapes3d-oracle,shapes3d-oracle-layered",
        "--seeds", "0", "--threads", "1", "--quiet"]
SCORE_KEYS = ("direction_recovery", "direction_recovery_wplus")


@pytest.fixture
def tiny_oracle_grid(monkeypatch, tmp_path) -> Path:
    """Tiny quick-profile sizes (six scored directions: one per factor) and the four cells of
    oracle and random on both oracle bundles run into a temporary results folder."""
    monkeypatch.setitem(flow.FLOW_PROFILES, "quick", {
        "discovery": DiscoveryConfig(num_samples=8, num_directions=6, batch_size=8),
        "calibration": CalibrationConfig(num_samples=4, spread_samples=100),
        "num_pairs": 24, "pair_batch": 12, "traversal_rows": 3, "traversal_steps": 3,
        "traversal_seeds": 1})
    monkeypatch.setitem(group_vae.GROUP_VAE_PROFILES, "quick",
                        {"steps": 3, "batch_size": 8, "lr": 5e-4})
    METRICS.load_builtins()
    monkeypatch.setitem(BANK_PROFILES, "quick", TINY_METRICS["bank"])
    for name in ("fvm", "betavae"):
        monkeypatch.setitem(METRICS.get(name).profiles, "quick", TINY_METRICS[name])
    results = tmp_path / "results"
    assert main(["run", *GRID, "--results", str(results), "--no-leaderboard"]) == 0
    return results


def _results(root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in root.glob("runs/*/result.json")}


def _strip_score(path: Path) -> None:
    """The result.json of a cell run before the score existed."""
    result = json.loads(path.read_text())
    for key in SCORE_KEYS:
        result["metrics"].pop(key, None)
    del result["direction_recovery"]
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


@pytest.mark.slow
def test_cells_record_the_score_and_rescore_fills_it_in_equal(tiny_oracle_grid, capsys) -> None:
    root = tiny_oracle_grid
    flow_results = _results(root)
    assert len(flow_results) == 4
    for result in flow_results.values():
        record, metrics = result["direction_recovery"], result["metrics"]
        layered = result["dataset"] == "shapes3d-oracle-layered"
        assert record["version"] == 1 and record["directions"] == 6
        assert ("wplus" in record) == layered == ("direction_recovery_wplus" in metrics)
        assert metrics["direction_recovery"] == record["w"]["score"]
        assert record["w"]["random_median"] < record["w"]["random_p95"]
        if result["method"] == "oracle":  # the exact factor directions
            assert metrics["direction_recovery"] == pytest.approx(1.0, abs=1e-6)
            assert record["w"]["score"] > record["w"]["random_p95"]
            if layered:  # each on its home row: the exact W+ edits
                assert metrics["direction_recovery_wplus"] == pytest.approx(1.0, abs=1e-6)
        else:
            assert metrics["direction_recovery"] < 0.9
        if layered and result["method"] == "random":  # broadcast to 12 rows: <= 1/sqrt(12)
            assert metrics["direction_recovery_wplus"] <= 1 / math.sqrt(12) + 1e-6

    # cells run before the score: stripped, and no stage cache (as in a fresh clone)
    for cell_id in flow_results:
        _strip_score(root / "runs" / cell_id / "result.json")
    shutil.rmtree(root / "cache")
    capsys.readouterr()
    assert main(["rescore", *GRID, "--results", str(root), "--dry-run"]) == 0
    assert "4 to rescore" in capsys.readouterr().out
    assert main(["rescore", *GRID, "--results", str(root)]) == 0
    assert "4 rescored, 0 refused" in capsys.readouterr().err
    rescored = _results(root)
    for cell_id, before in flow_results.items():
        after = rescored[cell_id]
        assert after["metrics"] == before["metrics"]  # every number equal to the flow's
        assert after["direction_recovery"] == before["direction_recovery"]
        assert after["rescored"]["scores"] == sorted(
            k for k in SCORE_KEYS if k in before["metrics"])
        assert "git_commit" in after["rescored"]
    assert main(["rescore", *GRID, "--results", str(root)]) == 0
    assert "0 rescored, 0 refused, 4 not needing it" in capsys.readouterr().err

    # an R.json one digit off: refused in one line, result.json left as it was
    oracle_id = next(i for i, r in flow_results.items()
                     if r["method"] == "oracle" and r["dataset"] == "shapes3d-oracle")
    result_path = root / "runs" / oracle_id / "result.json"
    _strip_score(result_path)
    r_path = root / "runs" / oracle_id / "R.json"
    record = json.loads(r_path.read_text())
    committed_value = record["R_absdiff"][0][0]
    record["R_absdiff"][0][0] = float(np.nextafter(committed_value, 1.0))
    r_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    before = result_path.read_bytes()
    assert main(["rescore", *GRID, "--results", str(root)]) == 1
    err = capsys.readouterr().err
    refused = [line for line in err.splitlines() if line.startswith("REFUSED")]
    assert len(refused) == 1 and oracle_id in refused[0]
    assert "R_absdiff differs by up to" in refused[0] and "(1 of " in refused[0]
    assert result_path.read_bytes() == before

    # the leaderboard's recovery view: the stripped cell shows a dash
    assert main(["leaderboard", "--results", str(root)]) == 0
    text = (root / "LEADERBOARD.md").read_text()
    assert text.count("### Direction recovery") == 2
    one_row = text.split("## shapes3d-oracle (")[1]
    oracle_line = next(line for line in one_row.split("### Direction recovery")[1].splitlines()
                       if line.startswith("| oracle"))
    assert oracle_line.split("|")[3].strip() == "–"
    assert main(["report", "--results", str(root)]) == 0
    index = (root / "report" / "index.html").read_text()
    assert index.count('<table class="recovery"') == 2 and "random W+ p95" in index

    # a cell run on another CPU model: its R may differ in the last float32 digits (within
    # CROSS_CPU_R_TOLERANCE), and the proof says so; a larger difference is still refused
    result = json.loads(result_path.read_text())
    result["host"]["cpu_model"] = "Another CPU"
    result_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    for offset, rescored_ok in ((1e-4, False), (5e-7, True)):
        record["R_absdiff"][0][0] = committed_value + offset
        r_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        assert main(["rescore", *GRID, "--results", str(root)]) == (0 if rescored_ok else 1)
        err = capsys.readouterr().err
        if not rescored_ok:
            assert "this host is" in err and "within 1e-05" in err
    after = json.loads(result_path.read_text())
    assert "another CPU model" in after["rescored"]["proof"]
    assert "largest difference 5e-07" in after["rescored"]["proof"]
    assert after["metrics"]["direction_recovery"] == pytest.approx(1.0, abs=1e-6)


def test_rescore_of_a_missing_results_folder_is_one_line(tmp_path, capsys) -> None:
    assert main(["rescore", "--datasets", "shapes3d-oracle", "--results",
                 str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere not found: expected the folder" in err


def _made_up(cell_id: str, method: str, seed: int, score: float | None) -> dict:
    result = {"id": cell_id, "method": method, "dataset": "shapes3d-oracle", "profile": "quick",
              "seed": seed, "config": {}, "config_hash": method, "metrics": {"mig": 0.1}}
    if score is not None:
        result["metrics"]["direction_recovery"] = score
        result["direction_recovery"] = {
            "version": 1, "directions": 10,
            "w": {"score": score, "per_factor": [score] * 6, "random_median": 0.3,
                  "random_p95": 0.4 + seed / 100}}
    return result


def test_leaderboard_recovery_view_shows_reference_and_dashes() -> None:
    results = [_made_up("a0", "recog", 0, 0.56), _made_up("a1", "recog", 1, 0.40),
               _made_up("a2", "recog", 2, 0.60), _made_up("b0", "random", 0, None),
               _made_up("b1", "random", 1, 0.29)]
    (table,) = build_tables(results)
    headers, rows = recovery_table(table)
    assert headers[:6] == ["method", "seeds", "recovery W", "random W median",
                           "random W p95", "above p95 (W)"]
    by_label = {row[0]: row for row in rows}
    # recog: median 0.56 over [0.40, 0.60]; reference p95 0.40 / 0.41 / 0.42 (median 0.41);
    # 0.40 is not above its seed's 0.41
    assert by_label["recog"][2:] == ["0.560 [0.400, 0.600]", "0.300", "0.410", "2 of 3"]
    assert by_label["random"][2:] == ["0.290 (n=1)", "0.300", "0.410", "0 of 1"]
    text = render_markdown(build_tables(results[3:4]))
    assert "Direction recovery" not in text  # no row has the score: no view
    vae = {**_made_up("d0", "beta-vae", 0, None), "kind": "representation"}
    (table,) = build_tables([_made_up("b0", "random", 0, None), _made_up("c0", "sefa", 0, 0.7),
                             vae])
    _, rows = recovery_table(table)
    by_label = {row[0]: row[2:] for row in rows}
    assert by_label["random"] == ["–"] * 4
    assert "beta-vae" not in by_label  # a representation method has no directions: no row
