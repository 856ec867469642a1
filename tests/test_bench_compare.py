"""`bench compare A B`: paired comparisons on made-up result folders with known answers (a clear
difference, none, too few seeds), and its one-line errors."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.reports.compare import compare_results, sentence
from bench.results.store import ResultStore


def write(store: ResultStore, method: str, seed: int, metrics: dict[str, float], *,
          dataset: str = "toy-gen", profile: str = "quick") -> None:
    cell_id = f"{method}-{dataset}-{profile}-s{seed}"
    store.write(cell_id, {"id": cell_id, "method": method, "dataset": dataset,
                          "profile": profile, "seed": seed, "config_hash": f"h-{method}",
                          "config": {}, "overrides": {}, "metrics": metrics})


@pytest.fixture
def results(tmp_path):
    """Six seeds: ganspace+att above ganspace in mig on every seed (by 0.1 + 0.01 s), the same
    attribute counts, and edit_w_plus_displacement (lower is better) higher on every seed;
    recog on seeds 0 and 1 only, sefa on seed 0 only; contrafeat on two datasets."""
    store = ResultStore(tmp_path / "results")
    for seed in range(6):
        write(store, "ganspace", seed, {"mig": 0.3 + 0.02 * seed, "attribute_count": 4.0,
                                        "edit_w_plus_displacement": 1.0})
        write(store, "ganspace+att", seed, {"mig": 0.4 + 0.03 * seed, "attribute_count": 4.0,
                                            "edit_w_plus_displacement": 2.0 + seed})
    for seed in (0, 1):
        write(store, "recog", seed, {"mig": 0.1, "attribute_count": 3.0 + seed})
    write(store, "sefa", 0, {"mig": 0.2})
    for dataset in ("toy-gen", "toy-other"):
        for seed in (0, 1):
            write(store, "contrafeat", seed, {"mig": 0.5}, dataset=dataset)
    write(store, "recog", 0, {"mig": 0.1}, dataset="toy-other")
    write(store, "recog", 1, {"mig": 0.2}, dataset="toy-other")
    return store


def cli(capsys, *args):
    code = main(["compare", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_clear_difference(results, capsys):
    code, out, err = cli(capsys, "ganspace+att", "ganspace", "--results", str(results.root),
                         "--metric", "mig")
    assert code == 0 and err == ""
    assert out.startswith("ganspace+att vs ganspace on toy-gen (quick): seeds both have: "
                          "0, 1, 2, 3, 4, 5\n")
    assert "mig (higher is better)" in out
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert rows[0] == ["0", "0.400", "0.300", "+0.100"]
    assert rows[5] == ["5", "0.550", "0.400", "+0.150"]
    # differences 0.10 .. 0.15: median 0.125; six seeds: the range covers with 1 - 2/64
    assert ("median difference +0.125 [+0.100, +0.150] (the range of the 6 differences: covers "
            "the median difference with probability 96.9 %)") in out
    # all six above: exact two-sided p = 2/2^6
    assert ("ganspace+att above ganspace on 6 of 6 seeds; p = 0.0312 (exact Wilcoxon "
            "signed-rank, two-sided): separable at the 5 % level, ganspace+att better.") in out
    assert "Separable at the 5 % level: mig (of 1 metric(s))." in out


def test_no_difference_and_every_metric_by_default(results, capsys):
    code, out, _ = cli(capsys, "ganspace", "ganspace+att", "--results", str(results.root))
    assert code == 0
    assert [line for line in out.splitlines() if "(higher is better)" in line
            or "(lower is better)" in line] == [
        "attribute_count (higher is better)", "mig (higher is better)",
        "edit_w_plus_displacement (lower is better)"]
    assert ("ganspace equal to ganspace+att on all 6 seeds; p = 1 (exact Wilcoxon signed-rank, "
            "two-sided): not separable at the 5 % level (no seed differs).") in out
    assert "median difference +0.000 [+0.000, +0.000]" in out
    # lower is better: ganspace is below on every seed, so ganspace is the better one
    assert ("ganspace below ganspace+att on 6 of 6 seeds; p = 0.0312 (exact Wilcoxon "
            "signed-rank, two-sided): separable at the 5 % level, ganspace better.") in out
    assert "Separable at the 5 % level: mig, edit_w_plus_displacement (of 3 metric(s))." in out


def test_two_seeds_are_never_separable(results, capsys):
    code, out, _ = cli(capsys, "recog", "ganspace", "--results", str(results.root),
                       "--dataset", "toy-gen")
    assert code == 0
    assert ("recog below ganspace on 2 of 2 seeds; p = 0.5 (exact Wilcoxon signed-rank, "
            "two-sided): not separable at the 5 % level (2 seeds can give no p below 0.5; 6 are "
            "needed for 0.05).") in out
    assert ("recog below ganspace on 1 of 2 seeds (equal on 1); p = 1") in out
    assert "Separable at the 5 % level: none (of 2 metric(s))." in out


@pytest.mark.parametrize(("args", "fragment"), [
    (["sefa", "ganspace"], "sefa and ganspace share 1 seed(s) on toy-gen (quick) (sefa: 0; "
     "ganspace: 0, 1, 2, 3, 4, 5): a paired comparison needs at least 2 seeds both have"),
    (["contrafeat", "recog"], "contrafeat and recog are both in 2 tables: pick one with "
     "--dataset toy-gen --profile quick; --dataset toy-other --profile quick"),
    (["ganspace", "nope"], "no table has both ganspace and nope (ganspace is in toy-gen (quick); "
     "nope is in none of them)"),
    (["ganspace", "recog", "--metric", "sap"], "metric sap is not one that both ganspace and "
     "recog have on toy-gen (quick): expected one of attribute_count, mig"),
    (["ganspace", "recog", "--dataset", "toy-missing"], "no results for --dataset toy-missing: "
     "expected one of --dataset toy-gen --profile quick; --dataset toy-other --profile quick"),
    (["ganspace", "ganspace"], "compare ganspace with itself"),
])
def test_bad_requests_are_one_line_exit_2(results, capsys, args, fragment):
    code, out, err = cli(capsys, *args, "--results", str(results.root))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and fragment in err, err
    assert err.count("\n") == 1


def test_missing_results_folder(tmp_path, capsys):
    code, _, err = cli(capsys, "a", "b", "--results", str(tmp_path / "nowhere"))
    assert code == 2 and err.startswith("error: results folder")


def test_the_other_dataset_and_the_sentence_api(results):
    comparison = compare_results(results.results(), "contrafeat", "recog", dataset="toy-other")
    (mig,) = comparison.metrics
    assert (mig.seeds, mig.differences) == ((0, 1), pytest.approx((0.4, 0.3)))
    assert mig.test.p_value == 0.5 and not mig.separable
    assert sentence("A", "B", mig).startswith("A above B on 2 of 2 seeds; p = 0.5 ")


def test_five_seeds_in_one_direction_are_not_enough_two_sided(tmp_path):
    store = ResultStore(tmp_path)
    for seed in range(5):
        write(store, "a", seed, {"mig": 0.5 + seed})
        write(store, "b", seed, {"mig": 0.1 + seed})
    (mig,) = compare_results(store.results(), "a", "b").metrics
    assert mig.test.p_value == 0.0625 and not mig.separable
    assert sentence("a", "b", mig).endswith(
        "not separable at the 5 % level (5 seeds can give no p below 0.0625; 6 are needed for "
        "0.05).")


def test_tables_of_one_dataset_and_profile_are_picked_by_title(tmp_path, capsys):
    store = ResultStore(tmp_path)
    for source in ("shapes3d", "shapes3d-synth"):
        for method in ("a", "b"):
            for seed in (0, 1):
                cell_id = f"{method}-{source}-{seed}"
                store.write(cell_id, {
                    "id": cell_id, "method": method, "dataset": "shapes3d", "profile": "quick",
                    "seed": seed, "config": {}, "metrics": {"mig": 0.1 * seed},
                    "bundle_identity": {"ground_truth_source": source}})
    code, _, err = cli(capsys, "a", "b", "--results", str(tmp_path))
    assert code == 2 and ("pick one with --table 'shapes3d (quick; ground truth: shapes3d)'; "
                          "--table 'shapes3d (quick; ground truth: shapes3d-synth)'") in err
    code, out, _ = cli(capsys, "a", "b", "--results", str(tmp_path), "--table",
                       "shapes3d (quick; ground truth: shapes3d-synth)")
    assert code == 0 and out.startswith("a vs b on shapes3d (quick; ground truth: "
                                        "shapes3d-synth): seeds both have: 0, 1")
