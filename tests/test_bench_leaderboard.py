"""Leaderboard rendering from hand-made result files: Markdown, CSV and LaTeX."""

from __future__ import annotations

import csv
import io
import math

import pytest
from scipy import stats

from bench.leaderboard import (
    build_tables,
    bundle_differences,
    latex_escape,
    render_csv,
    render_latex,
    render_markdown,
    summarize,
    write_leaderboard,
)
from bench.store import ResultStore


def result(method, seed, metrics, *, dataset="toy", profile="quick", config_hash="c1",
           overrides=None, artifacts=None):
    return {"id": f"{method}-{dataset}-{profile}-{config_hash}-{seed}", "method": method,
            "dataset": dataset, "profile": profile, "seed": seed, "config_hash": config_hash,
            "config": {}, "overrides": overrides or {}, "metrics": metrics,
            "artifacts": artifacts or {}}


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
    assert quick.best["mig"] == {0}
    assert quick.best["attribute_count"] == {1}
    assert quick.best["custom_score"] == set()  # no metadata: never marked


def test_markdown(tmp_path):
    (tmp_path / "runs" / "b0").mkdir(parents=True)
    (tmp_path / "runs" / "b0" / "traversal.png").write_bytes(b"png")
    text = render_markdown(build_tables(RESULTS), tmp_path)
    assert "## toy (quick)" in text and "## toy (paper)" in text
    half = stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)
    assert f"**0.600 ± 0.100 [{0.6 - half:.3f}, {0.6 + half:.3f}]**" in text
    quick = text.split("## toy (quick)")[1].split("## toy")[0]
    headline, full = quick.split("### All scores")
    assert "### Headline" in headline
    header = next(line for line in headline.splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.strip("|").split("|")] == \
        ["method", "seeds", "attribute_count", "mig"]  # headline keys only, no figures
    assert "custom_score" not in headline and "custom_score" in full
    line_beta = next(line for line in full.splitlines() if line.startswith("| beta"))
    assert "| 2 " in line_beta and "[traversal s0](runs/b0/traversal.png)" in line_beta
    # a figure file that is not there gets no link, and no row needing one: no column
    (tmp_path / "runs" / "b0" / "traversal.png").unlink()
    bare = render_markdown(build_tables(RESULTS), tmp_path)
    assert "traversal" not in bare and "figures" not in bare
    assert "**6.000 ± 0.000" in line_beta
    assert "3.667 ± 4.619" in text and "**3.667" not in text  # custom_score unmarked
    paper = text.split("## toy (paper)")[1].split("## toy")[0]
    assert "0.900" in paper and "±" not in paper.split("|---")[1]  # one seed: no spread
    assert "**" not in paper  # a lone row is not "best"


def test_csv():
    rows = list(csv.DictReader(io.StringIO(render_csv(build_tables(RESULTS)))))
    assert [(r["profile"], r["method"], r["seeds"]) for r in rows] == \
        [("paper", "alpha", "1"), ("quick", "alpha", "3"), ("quick", "beta", "2")]
    alpha = rows[1]
    assert float(alpha["mig_mean"]) == pytest.approx(0.6)
    assert float(alpha["mig_std"]) == pytest.approx(0.1)
    assert (alpha["mig_best"], rows[2]["mig_best"]) == ("1", "0")
    assert (alpha["attribute_count_best"], rows[2]["attribute_count_best"]) == ("0", "1")
    assert rows[2]["custom_score_mean"] == "" and rows[0]["mig_std"] == ""


def test_latex():
    text = render_latex(build_tables(RESULTS))
    assert text.count("\\begin{tabular}") == 2 and "\\toprule" in text
    assert "attribute\\_count" in text and "\\textbf{0.600 $\\pm$ 0.100" in text
    assert "\\caption{toy (quick)" in text
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
