"""Leaderboard rendering from hand-made result files: Markdown, CSV and LaTeX; medians with the
interval the seeds support, bold only where the best row's seeds beat the runner-up's."""

from __future__ import annotations

import csv
import io
import math

import pytest
from scipy import stats

from bench.reports.leaderboard import (
    build_tables,
    bundle_differences,
    cell_text,
    latex_escape,
    render_csv,
    render_latex,
    render_markdown,
    summarize,
    write_leaderboard,
)
from bench.results.store import ResultStore


def result(method, seed, metrics, *, dataset="toy", profile="quick", config_hash="c1",
           overrides=None, artifacts=None):
    return {"id": f"{method}-{dataset}-{profile}-{config_hash}-{seed}", "method": method,
            "dataset": dataset, "profile": profile, "seed": seed, "config_hash": config_hash,
            "config": {}, "overrides": overrides or {}, "metrics": metrics,
            "artifacts": artifacts or {}}


# Five seeds: alpha beats beta on every seed in mig (separable); in attribute_count alpha has the
# better median but beta is above it on two seeds (overlapping: no bold); in
# edit_w_plus_displacement (lower is better) beta is below alpha on every seed.
FIVE = [result(method, seed, {"mig": mig, "attribute_count": count,
                              "edit_w_plus_displacement": shift}, dataset="five")
        for method, table in {
            "alpha": [(0.50, 6.0, 2.0), (0.61, 2.0, 2.1), (0.55, 5.0, 2.2), (0.58, 4.0, 2.3),
                      (0.52, 3.0, 2.4)],
            "beta": [(0.40, 3.0, 1.0), (0.60, 4.0, 1.1), (0.50, 3.0, 1.2), (0.41, 3.0, 1.3),
                     (0.51, 4.0, 1.4)],
            "gamma": [(0.1, 1.0, 5.0)] * 5}.items()
        for seed, (mig, count, shift) in enumerate(table)]

RESULTS = [
    result("alpha", 0, {"mig": 0.5, "attribute_count": 3.0, "custom_score": 9.0}),
    result("alpha", 1, {"mig": 0.6, "attribute_count": 4.0, "custom_score": 1.0}),
    result("alpha", 2, {"mig": 0.7, "attribute_count": 5.0, "custom_score": 1.0}),
    result("beta", 0, {"mig": 0.2, "attribute_count": 6.0}, artifacts={
        "figures": {"traversal": "runs/b0/traversal.png"}}),
    result("beta", 1, {"mig": 0.3, "attribute_count": 6.0}),
    result("alpha", 0, {"mig": 0.9}, profile="paper"),
]


def test_summary_t_interval():
    s = summarize([0.5, 0.6, 0.7])
    half = stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)
    assert (s.n, s.mean, s.std) == (3, pytest.approx(0.6), pytest.approx(0.1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    one = summarize([0.4])
    assert one.mean == 0.4 and math.isnan(one.std) and math.isnan(one.ci_low)
    with pytest.raises(ValueError):
        summarize([])


def test_tables_split_by_dataset_and_profile():
    tables = build_tables(RESULTS)
    assert [(t.dataset, t.profile) for t in tables] == [("toy", "paper"), ("toy", "quick")]
    quick = tables[1]
    assert [r.label for r in quick.rows] == ["alpha", "beta"]
    assert [r.seeds for r in quick.rows] == [[0, 1, 2], [0, 1]]
    assert quick.metrics[:2] == ["attribute_count", "mig"]  # headline keys first, in key order
    # two seeds in common: alpha is above beta on both in mig, yet nothing is bold
    assert quick.best["mig"] == set() and quick.best["attribute_count"] == set()
    mig = quick.separations["mig"]
    assert (mig.best, mig.runner_up, mig.seeds, mig.separable) == (0, 1, (0, 1), False)
    assert mig.test is not None and mig.test.p_value == 0.25
    assert quick.separations["attribute_count"].best == 1  # beta's median 6 over alpha's 4
    assert quick.best["custom_score"] == set()  # no metadata: never marked
    assert "custom_score" not in quick.separations


def test_bold_needs_seeds_that_separate():
    (table,) = build_tables(FIVE)
    assert [r.label for r in table.rows] == ["alpha", "beta", "gamma"]
    assert table.best["mig"] == {0}  # above beta on all 5 seeds: p = 1/32
    assert table.separations["mig"].test.p_value == pytest.approx(1 / 32)
    # alpha's median count (4) beats beta's (3), but beta is above it on seeds 1 and 3
    count = table.separations["attribute_count"]
    assert (count.best, count.runner_up, count.separable) == (0, 1, False)
    assert table.best["attribute_count"] == set()
    assert table.best["edit_w_plus_displacement"] == {1}  # lower is better
    text = render_markdown([table])
    alpha = next(line for line in text.splitlines() if line.startswith("| alpha"))
    assert "**0.550 [0.500, 0.610]**" in alpha and "| 4.000 [2.000, 6.000]" in alpha
    assert "**" not in next(line for line in text.splitlines() if line.startswith("| gamma"))
    assert "5 seeds: the seeds' range, which covers the median with probability 93.8 %" in text
    assert "2 of 3 column(s) separable." in text
    section = text.split("### Best vs runner-up")[1]
    line = next(x for x in section.splitlines() if x.startswith("| attribute_count"))
    assert "alpha (4.000)" in line and "beta (3.000)" in line and "3 of 5" in line
    # differences 3, -2, 2, 1, -1: mid-ranks 5, 3.5, 3.5, 1.5, 1.5, W+ = 10; 11 of the 32 sign
    # patterns reach it
    assert "not separable: p = 0.344 > 0.05" in line
    assert "**separable**: p = 0.0312" in section
    rows = list(csv.DictReader(io.StringIO(render_csv([table]))))
    assert [(r["mig_best"], r["attribute_count_best"], r["edit_w_plus_displacement_best"])
            for r in rows] == [("1", "0", "0"), ("0", "0", "1"), ("0", "0", "0")]
    assert float(rows[0]["mig_p"]) == pytest.approx(1 / 32) and rows[1]["mig_p"] == ""
    assert float(rows[0]["attribute_count_p"]) == 11 / 32
    latex = render_latex([table])
    assert "\\textbf{0.550 [0.500, 0.610]}" in latex and "\\textbf{4.000" not in latex
    assert "one-sided exact Wilcoxon signed-rank test at the 5 \\% level" in latex
    assert "bold in 2 column(s)" in latex


def test_markdown(tmp_path):
    (tmp_path / "runs" / "b0").mkdir(parents=True)
    (tmp_path / "runs" / "b0" / "traversal.png").write_bytes(b"png")
    text = render_markdown(build_tables(RESULTS), tmp_path)
    assert "## toy (quick)" in text and "## toy (paper)" in text
    assert "one-sided exact Wilcoxon signed-rank test, p ≤ 0.05" in text
    quick = text.split("## toy (quick)")[1].split("## toy")[0]
    assert ("Interval: 2 seeds: the seeds' range, which covers the median with probability 50 %;"
            " 3 seeds: the seeds' range, which covers the median with probability 75 %.") in quick
    assert "No column can be bold here: at most 2 seed(s) in common" in quick
    assert "| 0.600 [0.500, 0.700] " in quick and "**" not in quick.split("### Best vs")[0]
    headline, full = quick.split("### All scores")
    assert "### Headline" in headline
    header = next(line for line in headline.splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.strip("|").split("|")] == \
        ["method", "seeds", "attribute_count", "mig"]  # headline keys only, no figures
    assert "custom_score" not in headline and "custom_score" in full.split("### Best")[0]
    line_beta = next(line for line in full.splitlines() if line.startswith("| beta"))
    assert "| 2 " in line_beta and "[traversal s0](runs/b0/traversal.png)" in line_beta
    assert "6.000 [6.000, 6.000]" in line_beta
    # a figure file that is not there gets no link, and no row needing one: no column
    (tmp_path / "runs" / "b0" / "traversal.png").unlink()
    bare = render_markdown(build_tables(RESULTS), tmp_path)
    assert "traversal" not in bare and "figures" not in bare
    assert "1.000 [1.000, 9.000]" in text  # custom_score: median of 9, 1, 1
    runner = quick.split("### Best vs runner-up")[1]
    assert "custom_score" not in runner  # unknown direction: not compared
    line = next(x for x in runner.splitlines() if x.startswith("| mig"))
    assert "| alpha (0.600) " in line and "| beta (0.250) " in line and "2 of 2" in line
    assert ("not separable: only 2 seeds in common (the smallest p they can give is 0.25; 5 are "
            "needed for 0.05)") in line
    paper = text.split("## toy (paper)")[1].split("## toy")[0]
    assert "0.900" in paper and "[" not in paper.split("|---")[1]  # one seed: no interval
    assert "One seed per cell: no interval." in paper
    assert "**" not in paper and "Best vs runner-up" not in paper  # a lone row is not "best"


def test_cell_text_names_missing_seeds():
    results = [result("alpha", 0, {"mig": 0.5, "sap": 0.1}), result("alpha", 1, {"mig": 0.7}),
               result("alpha", 2, {"mig": 0.6, "sap": 0.3})]
    (table,) = build_tables(results)
    assert cell_text(table, 0, "mig") == "0.600 [0.500, 0.700]"
    assert cell_text(table, 0, "sap") == "0.200 [0.100, 0.300] (n=2)"


def test_csv():
    rows = list(csv.DictReader(io.StringIO(render_csv(build_tables(RESULTS)))))
    assert [(r["profile"], r["method"], r["seeds"]) for r in rows] == \
        [("paper", "alpha", "1"), ("quick", "alpha", "3"), ("quick", "beta", "2")]
    alpha = rows[1]
    assert [float(alpha[f"mig_{part}"]) for part in ("median", "low", "high", "coverage", "n")] \
        == [pytest.approx(0.6), 0.5, 0.7, 0.75, 3]
    assert float(alpha["mig_mean"]) == pytest.approx(0.6)
    assert float(alpha["mig_std"]) == pytest.approx(0.1)
    assert (alpha["mig_best"], rows[2]["mig_best"]) == ("0", "0")  # 2 common seeds: no mark
    assert float(alpha["mig_p"]) == 0.25 and rows[2]["mig_p"] == ""
    assert (alpha["attribute_count_best"], rows[2]["attribute_count_best"]) == ("0", "0")
    assert rows[2]["custom_score_median"] == "" and rows[0]["mig_std"] == ""
    assert rows[0]["mig_low"] == "" and rows[0]["mig_coverage"] == ""
    assert "mig_ci95_low" not in alpha


def test_latex():
    text = render_latex(build_tables(RESULTS))
    assert text.count("\\begin{tabular}") == 2 and "\\toprule" in text
    assert "attribute\\_count" in text and "0.600 [0.500, 0.700]" in text
    assert "\\textbf" not in text
    assert "\\caption{toy (quick): median [interval] over seeds." in text
    assert "probability 50 \\%" in text and "no column separable" in text
    assert latex_escape("a_b&c%d") == "a\\_b\\&c\\%d"


def test_rows_with_different_configs_are_kept_apart():
    results = [result("alpha", 0, {"mig": 0.5}, config_hash="aaaaaa11"),
               result("alpha", 0, {"mig": 0.7}, config_hash="bbbbbb22", overrides={"beta": 4}),
               result("alpha", 1, {"mig": 0.9}, config_hash="cccccc33")]
    labels = [r.label for r in build_tables(results)[0].rows]
    assert labels == ["alpha [aaaaaa]", "alpha (beta=4)", "alpha [cccccc]"]


def test_write_leaderboard_files(tmp_path):
    store = ResultStore(tmp_path)
    for item in RESULTS:
        store.write(item["id"], item)
    (tmp_path / "runs" / "b0").mkdir(parents=True)
    (tmp_path / "runs" / "b0" / "traversal.png").write_bytes(b"png")
    paths = write_leaderboard(store.results(), tmp_path)
    assert sorted(p.name for p in paths.values()) == \
        ["LEADERBOARD.csv", "LEADERBOARD.md", "LEADERBOARD.tex"]
    assert "## toy (quick)" in paths["md"].read_text()
    out = tmp_path / "site"
    out.mkdir()
    paths = write_leaderboard(store.results(), tmp_path, out)
    assert "(../runs/b0/traversal.png)" in paths["md"].read_text()


def test_real_and_look_alike_ground_truth_are_never_pooled():
    def sourced(seed, source, mig):
        item = result("alpha", seed, {"mig": mig}, dataset="shapes3d")
        item["bundle_identity"] = {"ground_truth_source": source}
        return item

    results = [sourced(0, "shapes3d", 0.5), sourced(1, "shapes3d", 0.6),
               sourced(0, "shapes3d-synth", 0.9)]
    tables = build_tables(results)
    assert [(t.dataset, t.source, [r.seeds for r in t.rows]) for t in tables] == [
        ("shapes3d", "shapes3d", [[0, 1]]), ("shapes3d", "shapes3d-synth", [[0]])]
    text = render_markdown(tables)
    assert "## shapes3d (quick; ground truth: shapes3d)" in text
    assert "## shapes3d (quick; ground truth: shapes3d-synth)" in text
    rows = list(csv.DictReader(io.StringIO(render_csv(tables))))
    assert [r["ground_truth"] for r in rows] == ["shapes3d", "shapes3d-synth"]
    assert "ground truth: shapes3d-synth" in render_latex(tables)


def test_results_of_a_user_chosen_generator_get_their_own_table():
    def made_by(seed, generator, mig):
        item = result("alpha", seed, {"mig": mig}, dataset="shapes3d")
        item["bundle_identity"] = {"ground_truth_source": "shapes3d-synth"}
        if generator is not None:
            item["bundle_identity"]["generator_source"] = generator
        return item

    results = [made_by(0, None, 0.5), made_by(1, None, 0.6), made_by(0, "g.pkl sha256 ab", 0.9),
               made_by(0, "g.pkl sha256 cd", 0.1)]
    tables = build_tables(results)
    assert [(t.generator, [r.seeds for r in t.rows], t.rows[0].values["mig"])
            for t in tables] == [(None, [[0, 1]], [0.5, 0.6]), ("g.pkl sha256 ab", [[0]], [0.9]),
                                 ("g.pkl sha256 cd", [[0]], [0.1])]
    text = render_markdown(tables)
    assert "## shapes3d (quick; ground truth: shapes3d-synth)\n" in text
    assert "## shapes3d (quick; ground truth: shapes3d-synth; generator: g.pkl sha256 ab)" in text
    rows = list(csv.DictReader(io.StringIO(render_csv(tables))))
    assert [r["generator"] for r in rows] == ["", "g.pkl sha256 ab", "g.pkl sha256 cd"]


def test_results_of_another_shipped_generator_get_their_own_table():
    def made_on(seed, generator_sha, mig, predictor_sha="p1"):
        item = result("alpha", seed, {"mig": mig}, dataset="shapes3d")
        item["bundle_identity"] = {
            "ground_truth_source": "shapes3d-synth",
            "generator": {"file": "shapes3d_generator.safetensors", "sha256": generator_sha},
            "predictor": {"file": "shapes3d_predictor.safetensors", "sha256": predictor_sha}}
        item["config_hash"] = f"h-{generator_sha}-{predictor_sha}"  # the bundle is in the hash
        return item

    one = build_tables([made_on(0, "a" * 64, 0.5), made_on(1, "a" * 64, 0.6)])
    assert [(t.bundle, [r.seeds for r in t.rows]) for t in one] == [(None, [[0, 1]])]
    assert "## shapes3d (quick; ground truth: shapes3d-synth)\n" in render_markdown(one)

    tables = build_tables([made_on(0, "a" * 64, 0.5), made_on(1, "a" * 64, 0.6),
                           made_on(0, "b" * 64, 0.9)])
    assert [(t.bundle, [r.label for r in t.rows], [r.seeds for r in t.rows]) for t in tables] == [
        (f"generator: shapes3d_generator.safetensors sha256 {'a' * 12}", ["alpha"], [[0, 1]]),
        (f"generator: shapes3d_generator.safetensors sha256 {'b' * 12}", ["alpha"], [[0]])]
    text = render_markdown(tables)
    assert (f"## shapes3d (quick; ground truth: shapes3d-synth; generator: "
            f"shapes3d_generator.safetensors sha256 {'b' * 12})") in text
    rows = list(csv.DictReader(io.StringIO(render_csv(tables))))
    assert [r["bundle"] for r in rows] == [t.bundle for t in tables]

    other_predictor = build_tables([made_on(0, "a" * 64, 0.5), made_on(0, "a" * 64, 0.7, "p2")])
    assert [t.bundle for t in other_predictor] == [
        "predictor: shapes3d_predictor.safetensors sha256 p1",
        "predictor: shapes3d_predictor.safetensors sha256 p2"]


def test_bundle_differences_names_only_what_differs():
    same = {"generator": {"file": "g", "sha256": "1" * 64}, "sensor": {"name": "s"}}
    assert bundle_differences([same, dict(same)]) == [None, None]
    other = {**same, "sensor": {"name": "t"}}
    labels = bundle_differences([same, other])
    assert labels[0] != labels[1] and all(label.startswith("sensor: #") for label in labels)
    dated = {"generator": {"file": "/x/big.pkl", "size": 10, "mtime_ns": 86_400 * 10**9 + 5}}
    assert bundle_differences([dated, {}]) == [
        "generator: big.pkl (10 bytes, modified 1970-01-02 00:00:00 UTC)", "generator: none"]
