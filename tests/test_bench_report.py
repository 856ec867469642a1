"""The HTML report: built from a tiny toy grid plus hand-made directions cells (figures, a logged
navigator loss), checked with the standard library's HTML parser: every image and link resolves,
every cell appears, the headline numbers are the leaderboard's; failed cells and missing figures
are reported; with Chromium present, the page is rendered to a screenshot."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from bench_toys import register_toys, unregister_toys

from bench.cli import main
from bench.grid import GridSpec
from bench.planning.plan import plan_grid
from bench.reports.leaderboard import write_leaderboard
from bench.reports.report import GENERATOR_CURVES, SOURCE_ROOT, build_report
from bench.results.store import ResultStore
from bench.running.runner import run_grid


def png(width: int = 8, height: int = 4, colour: tuple[int, int, int] = (40, 90, 200)) -> bytes:
    """A small solid-colour RGB PNG."""
    raw = b"".join(b"\x00" + bytes(colour) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


DIRECTIONS = {"toy-ganspace": (0.31, 4.0), "toy-contrafeat": (0.55, 6.0)}


def _directions_cell(store: ResultStore, method: str, seed: int) -> str:
    """A directions-flow result as `bench run` writes it: figures in the run folder, the
    discover stage in the cache (a navigator method logs its loss there)."""
    cell_id = f"{method}-s{seed}"
    run_dir = store.run_dir(cell_id)
    run_dir.mkdir(parents=True)
    (run_dir / "traversal.png").write_bytes(png(40, 20))
    (run_dir / "r_heatmap.png").write_bytes(png(10, 10, (200, 60, 40)))
    key = f"disc{method[4:8]}{seed}"
    meta: dict[str, object] = {"method": method}
    if method == "toy-contrafeat":
        meta["loss_history"] = [{"step": s, "loss": 2.0 / s, "contrastive": 1.0 / s}
                                for s in range(1, 20)]
    cache = store.cache_dir / "discover" / key
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "directions.json").write_text(
        json.dumps({"format_version": 1, "meta": meta}))
    score, count = DIRECTIONS[method]
    store.write(cell_id, {
        "id": cell_id, "method": method, "kind": "directions", "dataset": "toy-gen",
        "profile": "quick", "seed": seed, "config_hash": f"h{method}", "config": {"k": 10},
        "overrides": {}, "metrics": {"disentanglement_score": score + 0.01 * seed,
                                     "attribute_count": count, "mig": 0.1 + 0.02 * seed,
                                     "dci_disentanglement": 0.2, "fvm_eval_accuracy": 0.5},
        "metric_settings": {"directions_flow": {
            "calibration": {"target_pixel_change": 0.04}, "traversal_span": 2.0,
            "traversal_steps": 5, "traversal_seeds": 2}},
        "stages": [{"name": "discover", "key": key, "seconds": 1.5, "cache_hit": False},
                   {"name": "figures-free", "key": "x", "seconds": 0.1, "cache_hit": True}],
        "artifacts": {"figures": {"traversal": f"runs/{cell_id}/traversal.png",
                                  "r_heatmap": f"runs/{cell_id}/r_heatmap.png"}},
        "wall_seconds": 2.0})
    return cell_id


@pytest.fixture(scope="module")
def grid_results(tmp_path_factory):
    """A toy grid (toy-identity, seeds 0-1) plus four directions cells (two methods, two seeds)."""
    root = tmp_path_factory.mktemp("grid") / "results"
    register_toys()
    try:
        store = ResultStore(root)
        plans = plan_grid(GridSpec(methods=["toy-identity"], datasets=["toy-data"], seeds=[0, 1]))
        assert all(o.ok for o in run_grid(plans, store))
    finally:
        unregister_toys()
    for method in DIRECTIONS:
        for seed in (0, 1):
            _directions_cell(store, method, seed)
    return root


def _copy(root: Path, tmp_path: Path) -> Path:
    target = tmp_path / "results"
    shutil.copytree(root, target, ignore=shutil.ignore_patterns("report", ".lock"))
    return target


class Page(HTMLParser):
    """Images, links, ids, text and the score tables of one HTML page."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path, self.images, self.links, self.ids = path, [], [], set()
        self.text: list[str] = []
        self.tables: list[dict[str, object]] = []
        # (table class, table title, metric) of each <strong> in a table cell
        self.bold: list[tuple[object, object, str | None]] = []
        self._table: dict[str, object] | None = None
        self._row: list[tuple[str | None, str]] | None = None
        self._cell: list[str] | None = None
        self._metric: str | None = None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "table":
            self._table = {"class": attrs.get("class", ""), "title": attrs.get("data-table"),
                           "rows": []}
            self.tables.append(self._table)
        if tag == "tr" and self._table is not None:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell, self._metric = [], attrs.get("data-metric")
        if tag == "strong" and self._cell is not None and self._table is not None:
            self.bold.append((self._table["class"], self._table["title"], self._metric))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append((self._metric, "".join(self._cell).strip()))
            self._cell = None
        if tag == "tr" and self._row is not None and self._table is not None:
            self._table["rows"].append(self._row)
            self._row = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def check_references(self) -> None:
        """Every image and link is a relative path to an existing file (or a local anchor)."""
        for ref in self.images + self.links:
            parts = urlsplit(ref)
            assert not parts.scheme and not parts.netloc, f"{self.path}: external {ref}"
            if not parts.path:
                assert parts.fragment in self.ids, f"{self.path}: anchor {ref}"
                continue
            target = (self.path.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{self.path}: {ref} does not resolve"

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def _markdown_headlines(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """title -> row label -> metric -> cell text, from LEADERBOARD.md's headline sections."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    for section in text.split("\n## ")[1:]:
        title, _, rest = section.partition("\n")
        if "### Headline" not in rest:
            continue
        lines = [x for x in rest.split("### Headline")[1].split("### All scores")[0].splitlines()
                 if x.startswith("|")]
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        rows = {}
        for line in lines[2:]:
            cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
            rows[cells[0]] = dict(zip(header[2:], cells[2:], strict=False))
        found[title.strip()] = rows
    return found


def test_report_of_a_tiny_grid(grid_results, tmp_path):
    root = _copy(grid_results, tmp_path)
    index = build_report(root)
    assert index == root / "report" / "index.html"
    page = Page(index)
    page.check_references()
    store = ResultStore(root)
    ids = [r["id"] for r in store.results()]
    assert len(ids) == 6
    for cell_id in ids:
        assert f"cells/{cell_id}/index.html" in page.links
        assert f"cells/{cell_id}/result.json" in page.links
        cell_page = Page(root / "report" / "cells" / cell_id / "index.html")
        cell_page.check_references()
        assert "result.json" in cell_page.links
        assert "Stages" in cell_page.all_text and "Metrics" in cell_page.all_text
    # headline numbers: the same text as the leaderboard's headline tables
    board = write_leaderboard(store.results(), root, tmp_path)
    expected = _markdown_headlines(board["md"].read_text(encoding="utf-8"))
    headline_tables = [t for t in page.tables if t["class"] == "headline"]
    assert {t["title"] for t in headline_tables} == set(expected)
    for table in headline_tables:
        rows = expected[table["title"]]
        got = {}
        for row in table["rows"][1:]:
            got[row[0][1]] = {metric: text for metric, text in row if metric}
        assert got == rows
    assert set(expected["toy-gen (quick)"]["toy-contrafeat"]) == {
        "disentanglement_score", "attribute_count", "fvm_eval_accuracy", "mig",
        "dci_disentanglement"}
    assert "fvm_train_accuracy" not in str(expected)
    # side by side: both methods' traversals and heatmaps for each seed, strip plots
    for method in DIRECTIONS:
        for seed in (0, 1):
            for name in ("traversal.png", "r_heatmap.png"):
                assert f"cells/{method}-s{seed}/{name}" in page.images
    assert any(src.startswith("plots/") and src.endswith("-seeds.png") for src in page.images)
    # two seeds: no column is bold, and the page says why
    assert page.bold == []
    assert "No column can be bold here: at most 2 seed(s) in common" in page.all_text
    assert "one-sided exact Wilcoxon signed-rank test, p ≤ 0.05" in page.all_text
    separations = next(t for t in page.tables if t["class"] == "separations"
                       and t["title"] == "toy-gen (quick)")
    header = [text for _, text in separations["rows"][0]]
    assert header[:2] == ["metric", "best (median)"]
    row = {text.split()[0]: cells for cells in separations["rows"][1:]
           for _, text in cells[:1]}["disentanglement_score"]
    assert [text for _, text in row][1:4] == ["toy-contrafeat (0.555)", "toy-ganspace (0.315)",
                                              "2"]
    assert "changes 0.04 of the pixel range" in page.all_text
    # the navigator's loss is plotted; the other method says it logs none
    trained = Page(root / "report" / "cells" / "toy-contrafeat-s0" / "index.html")
    assert "losses.png" in trained.images and "cache/discover/" in trained.all_text
    untrained = Page(root / "report" / "cells" / "toy-ganspace-s0" / "index.html")
    assert "losses.png" not in untrained.images
    assert "no loss_history recorded" in untrained.all_text


def test_bold_in_the_report_needs_seeds_that_separate(tmp_path):
    """Five seeds: toy-a above toy-b on every seed in mig (bold), but in attribute_count toy-a's
    better median hides two seeds where toy-b is above (no bold)."""
    store = ResultStore(tmp_path / "results")
    values = {"toy-a": [(0.50, 6.0), (0.61, 2.0), (0.55, 5.0), (0.58, 4.0), (0.52, 3.0)],
              "toy-b": [(0.40, 3.0), (0.60, 4.0), (0.50, 3.0), (0.41, 3.0), (0.51, 4.0)]}
    for method, seeds in values.items():
        for seed, (mig, count) in enumerate(seeds):
            cell_id = f"{method}-s{seed}"
            store.write(cell_id, {
                "id": cell_id, "method": method, "dataset": "toy-gen", "profile": "quick",
                "seed": seed, "config_hash": f"h{method}", "config": {}, "overrides": {},
                "metrics": {"mig": mig, "attribute_count": count}})
    page = Page(build_report(store.root))
    page.check_references()
    assert sorted(page.bold) == [("full", "toy-gen (quick)", "mig"),
                                 ("headline", "toy-gen (quick)", "mig"),
                                 ("separations", "toy-gen (quick)", None)]  # "separable"
    headline = next(t for t in page.tables if t["class"] == "headline")
    cells = {text.split()[0]: dict(row) for row in headline["rows"][1:]
             for _, text in row[:1]}
    assert cells["toy-a"]["mig"] == "0.550 [0.500, 0.610]"
    assert cells["toy-a"]["attribute_count"] == "4.000 [2.000, 6.000]"
    assert "5 seeds: the seeds' range, which covers the median with probability 93.8 %" in \
        page.all_text
    assert "1 of 2 column(s) separable." in page.all_text
    separations = next(t for t in page.tables if t["class"] == "separations")
    marks = {row[0][1]: row[-1][1] for row in separations["rows"][1:]}
    assert marks["mig"] == "separable: p = 0.0312 ≤ 0.05"
    assert marks["attribute_count"] == "not separable: p = 0.344 > 0.05"
    plot = store.root / "report" / next(src for src in page.images if src.endswith("-seeds.png"))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_damaged_and_unfinished_cells_are_reported(grid_results, tmp_path):
    root = _copy(grid_results, tmp_path)
    failed = root / "runs" / "deadbeef00000000"
    failed.mkdir()
    (failed / "error.txt").write_text("Traceback ...\nRuntimeError: toy training failed\n")
    (root / "runs" / "0123456789abcdef").mkdir()  # killed before it wrote anything
    damaged = root / "runs" / "baadf00d00000000"
    damaged.mkdir()
    (damaged / "result.json").write_text('{"id": "trunc', encoding="utf-8")
    index = build_report(root)
    page = Page(index)
    page.check_references()
    text = page.all_text
    assert "1 failed" in text and "1 unfinished" in text and "1 damaged" in text
    assert "6 done" in text and "damaged result" in text
    assert "RuntimeError: toy training failed" in text
    assert "cells/deadbeef00000000/error.txt" in page.links
    Page(root / "report" / "cells" / "deadbeef00000000" / "index.html").check_references()


def test_missing_figures_are_reported(grid_results, tmp_path):
    root = _copy(grid_results, tmp_path)
    (root / "runs" / "toy-ganspace-s1" / "traversal.png").unlink()
    page = Page(build_report(root))
    page.check_references()
    assert "cells/toy-ganspace-s1/traversal.png" not in page.images
    assert "cells/toy-ganspace-s1/r_heatmap.png" in page.images
    assert "traversal missing: runs/toy-ganspace-s1/traversal.png" in page.all_text
    cell = Page(root / "report" / "cells" / "toy-ganspace-s1" / "index.html")
    cell.check_references()
    assert "traversal missing" in cell.all_text


def test_cli_writes_the_report_and_rebuilds_it(grid_results, tmp_path, capsys):
    root = _copy(grid_results, tmp_path)
    assert main(["report", "--results", str(root)]) == 0
    assert capsys.readouterr().out.strip() == str(root / "report" / "index.html")
    stale = root / "report" / "stale.txt"
    stale.write_text("old")
    out = tmp_path / "elsewhere"
    assert main(["report", "--results", str(root), "--out", str(out)]) == 0
    Page(out / "index.html").check_references()  # self-contained away from the results
    assert main(["report", "--results", str(root)]) == 0
    assert not stale.exists()  # rebuilt whole
    assert main(["report", "--results", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("error: results folder")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main(["report", "--results", str(root), "--out", str(busy)]) == 2
    assert "is not a report" in capsys.readouterr().err
    assert (busy / "notes.txt").read_text() == "mine"


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (apt-get install chromium)")
def test_page_renders_in_headless_chromium(grid_results, tmp_path):
    root = _copy(grid_results, tmp_path)
    index = build_report(root)
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,1600",
                    index.as_uri()], check=True, capture_output=True, timeout=120,
                   env={**os.environ, "HOME": str(tmp_path)})
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # more than a blank page


def test_generator_curves_name_files_of_the_source_tree():
    """The report's quality-over-kimg figure of a shipped generator and the curve files it was
    drawn from are where ``GENERATOR_CURVES`` says (docs/generator/)."""
    assert GENERATOR_CURVES
    for png, drawn_from in GENERATOR_CURVES.values():
        names = [png, *drawn_from.split(" then ")]
        assert all(name.startswith("docs/generator/") for name in names), names
        missing = [name for name in names if not (SOURCE_ROOT / name).is_file()]
        assert missing == []
