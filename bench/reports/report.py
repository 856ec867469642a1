"""A static HTML report of a results folder: ``<results>/report/index.html`` and one page per cell.

The folder is self-contained (no server, no network): figures, result files and error logs are
copied into it, and the plots drawn here (per-metric distributions over seeds, training losses,
the generator asset's curves) are PNG files beside the pages. It holds the leaderboard's headline
and full tables (the same numbers and the same bold rule, from
:func:`bench.reports.leaderboard.build_tables`: median [interval] over seeds, bold only where the
best row's seeds beat the runner-up's), per table its best-vs-runner-up comparisons and a box/strip
plot per headline metric with every seed as a point, the methods' traversal grids and R heatmaps
side by side by seed, the generator assets the cells used, the photos edited with ``bench edit``
(``<results>/edits/``: reconstructions and edit grids), and every cell: complete, failed
(``error.txt`` without a result), damaged or unfinished.

The report is built in a temporary sibling folder and swapped in whole, so an interrupted build
never leaves a half-written report.
"""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.flows.base import score_metadata
from bench.reports.leaderboard import (
    SeparationLine,
    Table,
    build_tables,
    cell_text,
    interval_note,
    mark_rule,
    recovery_note,
    recovery_table,
    separation_lines,
    separation_note,
)
from bench.results.store import RESULT_FILE, InvalidResult, ResultStore
from core.errors import BenchError
from core.io import atomic_write_text, dumps_json, publish_folder, read_json, temp_folder
from core.plots import pyplot, save_figure
from metrics.registry import ScoreKey

REPORT_DIR = "report"
ERROR_FILE = "error.txt"
FIGURE_ORDER = ("traversal", "r_heatmap")
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the source tree, when run from one
# Quality-over-kimg figures of the shipped generator assets, found in a source tree's docs/.
GENERATOR_CURVES = {"shapes3d_generator": (
    "docs/generator/shapes3d-generator-shipped-curve.png",
    "docs/generator/data/generator_curve_tiny32m4_y2.jsonl then "
    "docs/generator/data/generator_curve_tiny32m4_b2.jsonl")}


@dataclass
class Figure:
    """One recorded figure: ``src`` (path under the report) or None when its file is missing."""

    name: str
    recorded: str  # the path in result.json, relative to the results root
    src: str | None


@dataclass
class LossLog:
    stage: str
    source: str  # where the log was read, relative to the results root
    history: list[dict[str, Any]]


@dataclass
class Cell:
    """One folder under ``<results>/runs``, whatever its state."""

    id: str
    status: str  # done | failed | damaged | unfinished
    result: dict[str, Any] | None = None
    message: str = ""
    figures: list[Figure] = field(default_factory=list)
    artifacts: list[tuple[str, str]] = field(default_factory=list)  # (text, src under report)
    missing_artifacts: list[str] = field(default_factory=list)
    losses: list[LossLog] = field(default_factory=list)
    loss_notes: list[str] = field(default_factory=list)
    loss_plot: str | None = None

    @property
    def page(self) -> str:
        return f"cells/{self.id}/index.html"

    @property
    def label(self) -> str:
        if self.result is None:
            return self.id
        r = self.result
        extra = ", ".join(f"{k}={v}" for k, v in sorted(r.get("overrides", {}).items()))
        method = f"{r['method']} ({extra})" if extra else r["method"]
        return f"{method} on {r['dataset']}, seed {r['seed']} ({r['profile']})"

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


def scan_cells(store: ResultStore) -> list[Cell]:
    """Every run folder: a valid result (done), a damaged one, an error log without a result
    (failed) or neither (unfinished: running or killed)."""
    cells = []
    if not store.runs_dir.is_dir():
        return cells
    for folder in sorted(p for p in store.runs_dir.iterdir() if p.is_dir()):
        cell = Cell(folder.name, "unfinished", message="no result.json and no error.txt (still "
                    "running, or killed before it ended)")
        if (folder / RESULT_FILE).is_file():
            try:
                cell.result = store.load(folder.name)
                cell.status, cell.message = "done", ""
            except InvalidResult as err:
                cell.status, cell.message = "damaged", str(err)
        elif (folder / ERROR_FILE).is_file():
            lines = [x for x in (folder / ERROR_FILE).read_text(errors="replace").splitlines()
                     if x.strip()]
            cell.status, cell.message = "failed", lines[-1] if lines else "empty error.txt"
        cells.append(cell)
    return cells


def find_loss_logs(root: Path, result: dict[str, Any]) -> tuple[list[LossLog], list[str]]:
    """``loss_history`` lists recorded in the stage cache of a cell's stages (a trained encoder's
    or a navigator's meta), and one note per stage that trains but whose log is not there."""
    logs, notes = [], []
    for stage in result.get("stages", []):
        name, key = str(stage.get("name", "")), str(stage.get("key", ""))
        folder = root / "cache" / name / key
        if not name or not key or not folder.is_dir():
            if name in ("train", "group-vae", "discover"):
                notes.append(f"stage {name}: its cache folder cache/{name}/{key} is not in this "
                             "results folder, so its loss log (if any) is not reachable")
            continue
        found = False
        for path in sorted(folder.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                data = read_json(path)
            except BenchError:
                continue
            meta = data.get("meta") if isinstance(data, dict) else None
            history = meta.get("loss_history") if isinstance(meta, dict) else None
            if isinstance(history, list) and history and all(isinstance(h, dict)
                                                             for h in history):
                logs.append(LossLog(name, path.relative_to(root).as_posix(), history))
                found = True
        if not found and name in ("train", "group-vae"):
            notes.append(f"stage {name}: no loss_history in cache/{name}/{key}")
        if not found and name == "discover":
            notes.append("stage discover: no loss_history recorded (the method does not train "
                         "a navigator)")
    return logs, notes


# -- plots --------------------------------------------------------------------------------------


def plot_losses(logs: list[LossLog], path: Path) -> None:
    """One panel per logged stage: every numeric series against ``step`` (log scale when all
    values are positive)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(logs), figsize=(5 * len(logs), 3.4), squeeze=False)
    for ax, log in zip(axes[0], logs, strict=True):
        steps = [h.get("step", i) for i, h in enumerate(log.history)]
        keys = sorted({k for h in log.history for k, v in h.items()
                       if k not in ("step", "kimg") and isinstance(v, (int, float))})
        positive = True
        for key in keys:
            pairs = [(s, float(h[key])) for s, h in zip(steps, log.history, strict=True)
                     if isinstance(h.get(key), (int, float)) and math.isfinite(float(h[key]))]
            if pairs:
                ax.plot(*zip(*pairs, strict=True), label=key, linewidth=1.2)
                positive = positive and all(v > 0 for _, v in pairs)
        if positive:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{log.stage} ({log.source.split('/')[-1]})", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


BOX_MIN_SEEDS = 5  # a box (quartiles) is drawn only where a row has this many seeds


def plot_seed_distributions(table: Table, metrics: list[str], path: Path) -> None:
    """Per metric one panel; per row every seed's value as a point (labelled with its seed, or
    its seeds where several share a value), a bar at the median and, where the row has
    :data:`BOX_MIN_SEEDS` seeds or more, a box (quartiles, whiskers to the smallest and largest
    seed): the distribution over seeds, as disentanglement_lib draws it, without pretending that
    two seeds have quartiles. A column's bold row (see :mod:`bench.reports.leaderboard`) has its
    label in bold and its points in black."""
    plt = pyplot()
    width = max(3.2, 0.9 * len(table.rows) + 1.2)
    columns = max(1, min(len(metrics), int(18 // width)))  # panels side by side up to ~18 in
    grid = -(-len(metrics) // columns)
    fig, axes = plt.subplots(grid, columns, figsize=(width * columns, 3.8 * grid),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        best = table.best.get(metric, set())
        for x, row in enumerate(table.rows):
            points = [(seed, value) for seed, vals in sorted(row.by_seed.get(metric, {}).items())
                      for value in vals]
            if not points:
                continue
            ys = [value for _, value in points]
            if len(ys) >= BOX_MIN_SEEDS:
                ax.boxplot([ys], positions=[x], widths=0.5, whis=(0, 100), showfliers=False,
                           medianprops={"linewidth": 0}, boxprops={"color": "0.55"},
                           whiskerprops={"color": "0.55"}, capprops={"color": "0.55"})
            ax.scatter([x] * len(ys), ys, s=20, zorder=3,
                       color="black" if x in best else "tab:blue")
            labels: dict[float, list[str]] = defaultdict(list)  # seeds with equal values: one
            for seed, value in points:
                labels[value].append(str(seed))
            for value, seeds in labels.items():
                ax.annotate(",".join(seeds), (x, value), xytext=(4, 0),
                            textcoords="offset points", fontsize=6, va="center")
            median = float(np.median(ys))
            ax.plot([x - 0.28, x + 0.28], [median, median], color="black", linewidth=1.6)
        ax.set_xticks(range(len(table.rows)), [r.label for r in table.rows], rotation=30,
                      ha="right", fontsize=8)
        for x, tick in enumerate(ax.get_xticklabels()):
            if x in best:
                tick.set_fontweight("bold")
        ax.set_xlim(-0.6, len(table.rows) - 0.4)
        sep = table.separations.get(metric)
        verdict = ("" if sep is None or sep.best is None else
                   "; best separable" if sep.separable else "; not separable")
        ax.set_title(f"{metric}{verdict}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{table.title}: every seed (bar: median; box where n ≥ {BOX_MIN_SEEDS})",
                 fontsize=9)
    save_figure(fig, path, dpi=100)


def plot_gan_curve(curve: list[dict[str, Any]], path: Path, title: str) -> None:
    """A generator asset's logged GAN losses over kimg."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    keys = sorted({k for point in curve for k in point if k != "kimg"})
    for key in keys:
        pairs = [(p["kimg"], p[key]) for p in curve if isinstance(p.get(key), (int, float))]
        if pairs:
            ax.plot(*zip(*pairs, strict=True), marker="o", markersize=3, label=key)
    ax.set_xlabel("kimg")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


# -- assembling -------------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _collect_files(root: Path, work: Path, cell: Cell) -> None:
    """Copy a cell's figures, artifacts, result and error log into ``work/cells/<id>/``."""
    folder = work / "cells" / cell.id
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = root / "runs" / cell.id
    for name in (RESULT_FILE, ERROR_FILE):
        if (run_dir / name).is_file():
            _copy(run_dir / name, folder / name)
    if cell.result is None:
        return
    used: set[str] = set()
    for group, files in sorted(cell.result.get("artifacts", {}).items()):
        ordered = sorted(files.items(), key=lambda kv: (
            FIGURE_ORDER.index(kv[0]) if kv[0] in FIGURE_ORDER else len(FIGURE_ORDER), kv[0]))
        for name, recorded in ordered:
            source = root / recorded
            target = Path(recorded).name
            if target in used or target in (RESULT_FILE, ERROR_FILE):
                target = f"{group}-{target}"
            used.add(target)
            present = source.is_file()
            if present:
                _copy(source, folder / target)
            if group == "figures":
                cell.figures.append(Figure(name, recorded, target if present else None))
            elif present:
                cell.artifacts.append((f"{group}: {name}", target))
            else:
                cell.missing_artifacts.append(f"{group}: {name} ({recorded})")
    cell.losses, cell.loss_notes = find_loss_logs(root, cell.result)
    if cell.losses:
        plot_losses(cell.losses, folder / "losses.png")
        cell.loss_plot = "losses.png"


def _protocol(result: dict[str, Any]) -> str | None:
    """How a directions cell's traversals were drawn (edit size and latent seeds)."""
    flow = result.get("metric_settings", {}).get("directions_flow")
    if not isinstance(flow, dict):
        return None
    target = flow.get("calibration", {}).get("target_pixel_change")
    fixed = flow.get("edit_scale")
    if isinstance(fixed, (int, float)):
        size = (f"each direction's step a fixed {fixed:g} times its unit-RMS vector (the "
                "reference notebooks' edit); ")
    elif isinstance(target, (int, float)):
        size = f"each direction scaled so that one step changes {target:g} of the pixel range; "
    else:
        size = ""
    return (f"{size}amounts from -{flow.get('traversal_span')} to +{flow.get('traversal_span')} "
            f"steps in {flow.get('traversal_steps')} columns, {flow.get('traversal_seeds')} "
            "latent samples drawn from the cell seed (the same for every method)")


@dataclass
class TableView:
    """What the index shows of one leaderboard table."""

    table: Table
    slug: str
    headline: list[str]
    rows: list[dict[str, Any]]
    seeds: list[int]
    common_seeds: list[int]
    protocols: list[str]
    side_by_side: list[dict[str, Any]]  # per seed: {"seed", "entries": [...]}
    has_figures: bool
    notes: str = ""  # what the intervals are and what the seed counts allow
    separations: list[SeparationLine] = field(default_factory=list)
    seed_plot: str | None = None
    # the direction-recovery view (headers, rows) where a row has the score (oracle bundles)
    recovery: tuple[list[str], list[list[str]]] | None = None


def _table_views(tables: list[Table], cells: dict[str, Cell], work: Path) -> list[TableView]:
    views = []
    for n, table in enumerate(tables):
        slug = f"t{n}-{table.dataset}-{table.profile}"
        rows = []
        for i, row in enumerate(table.rows):
            rows.append({
                "label": row.label, "seeds": len(row.seeds),
                "cells": [(seed, cells[cid].page)
                          for seed, cid in zip(row.seeds, row.ids, strict=True)],
                "values": {m: (cell_text(table, i, m), i in table.best[m]) for m in table.metrics},
            })
        seeds = sorted({s for row in table.rows for s in row.seeds})
        common = [s for s in seeds if all(s in row.seeds for row in table.rows)]
        protocols = sorted({p for row in table.rows for cid in row.ids
                            if (p := _protocol(cells[cid].result or {})) is not None})
        has_figures = any(cells[cid].figures for row in table.rows for cid in row.ids)
        side = []
        for seed in seeds:
            entries = []
            for row in table.rows:
                cid = dict(zip(row.seeds, row.ids, strict=True)).get(seed)
                cell = cells[cid] if cid else None
                if cell is not None and (cell.result or {}).get("kind") == "representation":
                    continue  # trained on ground truth: no directions to traverse
                entries.append({"label": row.label, "cell": cell,
                                "figures": [cell.figure(name) for name in FIGURE_ORDER]
                                if cell else []})
            side.append({"seed": seed, "entries": entries})
        view = TableView(table, slug, table.headline, rows, seeds, common, protocols, side,
                         has_figures, f"{interval_note(table)} {separation_note(table)}",
                         separation_lines(table), recovery=recovery_table(table))
        metrics = table.headline or table.metrics[:4]
        if metrics:
            plot_seed_distributions(table, metrics, work / "plots" / f"{slug}-seeds.png")
            view.seed_plot = f"plots/{slug}-seeds.png"
        views.append(view)
    return views


def _generators(results: Iterable[dict[str, Any]], work: Path) -> list[dict[str, Any]]:
    """The generator assets named in the cells' bundle identities, with their recorded quality
    and curves."""
    from bench.planning.bundles import WEIGHTS_DIR

    files = sorted({str(g["file"]) for r in results
                    if isinstance(g := r.get("bundle_identity", {}).get("generator"), dict)
                    and "file" in g})
    found = []
    for name in files:
        stem = Path(name).stem
        entry: dict[str, Any] = {"file": name, "notes": [], "figures": [], "facts": [],
                                 "quality": None, "training_notes": ""}
        meta_path = WEIGHTS_DIR / f"{stem}.json"
        if not meta_path.is_file():
            entry["notes"].append(f"no metadata file {stem}.json among the shipped weights")
            found.append(entry)
            continue
        data = read_json(meta_path)
        meta, quality = data.get("meta", {}), data.get("quality", {})
        entry["facts"] = [(k, meta[k]) for k in ("data", "config_name", "kimg", "gamma", "batch",
                                                 "train_seconds") if k in meta]
        if quality:
            entry["quality"] = {
                "n": quality.get("n"), "frechet_distance": quality.get("frechet_distance"),
                "mean_max_prob": quality.get("mean_max_prob"),
                "factors": sorted((f, v.get("tv_distance"), v.get("mean_max_prob"))
                                  for f, v in quality.get("factors", {}).items())}
        entry["training_notes"] = meta.get("training_notes", "")
        curve = meta.get("training_curve")
        if isinstance(curve, list) and curve:
            plot_gan_curve(curve, work / "plots" / f"{stem}-losses.png",
                           f"{stem}: GAN losses over kimg (from {stem}.json)")
            entry["figures"].append((f"plots/{stem}-losses.png",
                                     f"GAN losses over kimg, logged while training ({stem}.json)"))
        png, data_file = GENERATOR_CURVES.get(stem, (None, None))
        if png and (SOURCE_ROOT / png).is_file():
            _copy(SOURCE_ROOT / png, work / "plots" / Path(png).name)
            entry["figures"].append((f"plots/{Path(png).name}",
                                     f"quality over kimg ({png}, drawn from {data_file})"))
        elif png:
            entry["notes"].append(f"the quality-over-kimg figure ({png}) is part of the source "
                                  "tree, which this installation does not include")
        found.append(entry)
    return found


def _edits(root: Path, work: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``bench edit`` outputs under ``<results>/edits/``: per folder its summary, the
    reconstruction figure and edit grids (copied into ``work/edits/<name>/``); and one note per
    folder that cannot be shown (no or a damaged ``edits.json``)."""
    from bench.edit import EDITS_DIR, EDITS_FILE  # torch and the projector: only when used

    found: list[dict[str, Any]] = []
    notes: list[str] = []
    folder = root / EDITS_DIR
    if not folder.is_dir():
        return found, notes
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            doc = read_json(path / EDITS_FILE)
            summary, images = doc["summary"], doc["images"]
            label, reconstruction = doc["label"], doc["reconstruction_figure"]
        except FileNotFoundError:
            notes.append(f"edits/{path.name}: no {EDITS_FILE} (not a finished `bench edit`)")
            continue
        except (BenchError, KeyError, TypeError) as err:
            notes.append(f"edits/{path.name}: {EDITS_FILE} cannot be read ({err})")
            continue
        entry: dict[str, Any] = {"name": path.name, "label": label, "summary": summary,
                                 "cell": doc.get("cell", {}), "figures": [], "missing": [],
                                 "projection": doc.get("projection", {}),
                                 "inputs": doc.get("inputs", [])}
        for rel in [reconstruction] + [str(e.get("edit_figure")) for e in images]:
            if (path / rel).is_file():
                _copy(path / rel, work / EDITS_DIR / path.name / rel)
                entry["figures"].append(f"{EDITS_DIR}/{path.name}/{rel}")
            else:
                entry["missing"].append(rel)
        found.append(entry)
    return found, notes


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("bench.reports", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["json"] = lambda value: dumps_json(value).strip()
    env.filters["num"] = _number
    return env


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric_rows(result: dict[str, Any], info: dict[str, ScoreKey]) -> list[dict[str, Any]]:
    rows = []
    known = [k for k in info if k in result["metrics"]]
    for key in known + sorted(set(result["metrics"]) - set(known)):
        meta = info.get(key)
        rows.append({"key": key, "value": result["metrics"][key],
                     "better": "" if meta is None else
                     ("higher" if meta.higher_is_better else "lower"),
                     "headline": bool(meta and meta.headline),
                     "description": meta.description if meta else "(not in the metric registry)"})
    return rows


def build_report(results_root: Path | str, out_dir: Path | str | None = None) -> Path:
    """Write the report of ``results_root`` into ``out_dir`` (default ``<results>/report``);
    returns the path of its index.html."""
    store = ResultStore(results_root)
    store.check_folder(must_exist=True)
    root = store.root
    out = Path(out_dir).absolute() if out_dir is not None else root / REPORT_DIR
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / "index.html").is_file())):
        raise BenchError(f"report folder {out} exists and is not a report: expected a new or "
                         "empty folder, or one written by `bench report` (see --out)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = temp_folder(out)
    try:
        _write_report(root, store, work)
        publish_folder(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out / "index.html"


def _write_report(root: Path, store: ResultStore, work: Path) -> None:
    cells = scan_cells(store)
    for cell in cells:
        _collect_files(root, work, cell)
    by_id = {cell.id: cell for cell in cells}
    results = [cell.result for cell in cells if cell.result is not None]
    tables = build_tables(results)
    views = _table_views(tables, by_id, work)
    info = score_metadata()
    counts: dict[str, int] = defaultdict(int)
    for cell in cells:
        counts[cell.status] += 1
    missing = [cell for cell in cells if any(f.src is None for f in cell.figures)
               or cell.missing_artifacts]
    env = _environment()
    edits, edit_notes = _edits(root, work)
    index = env.get_template("index.html.j2").render(
        root=str(root), cells=cells, counts=dict(counts), views=views, mark_rule=mark_rule(),
        recovery_note=recovery_note(),
        generators=_generators(results, work), missing=missing, edits=edits,
        edit_notes=edit_notes, pages=set(by_id),
        info={k: {"description": v.description, "higher": v.higher_is_better}
              for k, v in info.items()})
    atomic_write_text(work / "index.html", index)
    cell_template = env.get_template("cell.html.j2")
    for cell in cells:
        page = cell_template.render(
            cell=cell, metrics=_metric_rows(cell.result, info) if cell.result else [],
            result=cell.result)
        atomic_write_text(work / cell.page, page)
