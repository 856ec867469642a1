"""Leaderboards from result files: one table per (dataset, bundle, profile), one row per method
setting. A bundle whose ground truth can come from a real file or a look-alike (e.g.
``shapes3d``) records the source in its identity; its tables name it and never pool the two.
Results made on different bundles of one dataset (an older shipped generator, another
predictor, a user's checkpoint) never share a table either: each table's title names what sets
its bundle apart (e.g. ``generator: shapes3d_generator.safetensors sha256 28fc1494a1b2``).

Each table is shown twice in Markdown: the headline view (the score keys the metric registry
flags ``headline``: the numbers the papers report, e.g. disentanglement score and attribute count
for discovery, FVM, MIG and DCI disentanglement for representations), then every sub-score. The
CSV and LaTeX hold every score.

Every metric column shows mean ± std and a 95% t-interval over seeds; the best mean per column
(direction from ``bench.flow.score_metadata()``; unknown keys are never marked) is bold
in Markdown and LaTeX and flagged in a ``<metric>_best`` CSV column. Marked only when two or
more rows compete.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from tabulate import tabulate

from core.hashing import stable_hash
from core.io import atomic_write_text

LEADERBOARD_NAME = "LEADERBOARD"


@dataclass(frozen=True)
class Summary:
    """Mean, sample std and 95% t-interval of one metric over seeds (std/CI NaN when n = 1)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: Sequence[float]) -> Summary:
    array = np.asarray(values, dtype=float)
    n = int(array.size)
    if n == 0:
        raise ValueError("summarize: no values")
    mean = float(array.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass
class Row:
    method: str
    config_hash: str
    overrides: dict[str, Any]
    label: str = ""
    seeds: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # cell ids, one per seed
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    figures: list[tuple[str, str]] = field(default_factory=list)  # (text, path under results)

    def summary(self, metric: str) -> Summary | None:
        vals = self.values.get(metric)
        return summarize(vals) if vals else None


@dataclass
class Table:
    dataset: str
    profile: str
    rows: list[Row]
    metrics: list[str]
    best: dict[str, set[int]]  # metric -> indices of best rows
    source: str | None = None  # the ground-truth source, where the bundle records one
    generator: str | None = None  # a user-chosen generator, where the bundle records one
    bundle: str | None = None  # what sets this bundle apart from another one of the same name

    @property
    def title(self) -> str:
        """``dataset (profile)``, with the ground-truth source, a user-chosen generator and what
        sets the bundle apart from another one of the same dataset, where there is one."""
        parts = [self.profile]
        if self.source is not None:
            parts.append(f"ground truth: {self.source}")
        if self.generator is not None:
            parts.append(f"generator: {self.generator}")
        if self.bundle is not None:
            parts.append(self.bundle)
        return f"{self.dataset} ({'; '.join(parts)})"

    @property
    def headline(self) -> list[str]:
        """The table's metrics flagged ``headline`` in the metric registry, in column order."""
        info = _metric_info()
        return [m for m in self.metrics if m in info and info[m].headline]


def ground_truth_source(result: dict[str, Any]) -> str | None:
    """The ground-truth source recorded in a result's bundle identity (None if not recorded)."""
    return _identity_entry(result, "ground_truth_source")


def generator_source(result: dict[str, Any]) -> str | None:
    """The user-chosen generator recorded in a result's bundle identity (None: the bundle's
    own)."""
    return _identity_entry(result, "generator_source")


def _identity_entry(result: dict[str, Any], key: str) -> str | None:
    identity = result.get("bundle_identity")
    value = identity.get(key) if isinstance(identity, dict) else None
    return None if value is None else str(value)


def _bundle_identity(result: dict[str, Any]) -> dict[str, Any]:
    identity = result.get("bundle_identity")
    return identity if isinstance(identity, dict) else {}


def _entry_label(value: Any) -> str:
    """A short name for one bundle-identity entry: ``<file> sha256 <12 hex>`` for an asset file
    (``<file> (<size> bytes, modified <UTC time>)`` where only size and time identify it),
    ``none`` for a missing entry, else a hash of the entry."""
    if value is None:
        return "none"
    if isinstance(value, dict):
        name = value.get("file", value.get("weights"))
        if name is not None:
            name = Path(str(name)).name
            if "sha256" in value:
                return f"{name} sha256 {str(value['sha256'])[:12]}"
            if "size" in value:
                modified = dt.datetime.fromtimestamp(int(value.get("mtime_ns", 0)) / 1e9, dt.UTC)
                return f"{name} ({value['size']} bytes, modified {modified:%Y-%m-%d %H:%M:%S} UTC)"
            return str(name)
    return f"#{stable_hash(value)[:8]}"


def bundle_differences(identities: Sequence[dict[str, Any]]) -> list[str | None]:
    """For bundles of one dataset, what sets each apart from the others: its entries that are
    not the same in all of them (``generator: <file> sha256 <12 hex>``; ``; `` between several),
    or None for each when there is only one bundle."""
    distinct = {stable_hash(identity): identity for identity in identities}
    if len(distinct) < 2:
        return [None] * len(identities)
    keys = sorted({key for identity in distinct.values() for key in identity})
    differing = [key for key in keys
                 if len({stable_hash(identity.get(key)) for identity in distinct.values()}) > 1]
    return ["; ".join(f"{key}: {_entry_label(identity.get(key))}" for key in differing)
            for identity in identities]


def _metric_info() -> dict[str, Any]:
    from bench.flow import score_metadata  # the flows' own keys too (imports torch)

    return score_metadata()


def _ordered_metrics(keys: Iterable[str], info: dict[str, Any]) -> list[str]:
    keys = set(keys)
    known = [k for k in info if k in keys]
    return known + sorted(keys - set(known))


# (dataset, ground-truth source, user-chosen generator, profile, hash of the bundle identity)
_GroupKey = tuple[str, str, str, str, str]


def build_tables(results: Iterable[dict[str, Any]]) -> list[Table]:
    """Group results by (dataset, ground-truth source, generator, profile, bundle identity) and
    (method, config hash); seeds become samples."""
    info = _metric_info()
    groups: dict[_GroupKey, dict[tuple[str, str], Row]] = defaultdict(dict)
    identities: dict[_GroupKey, dict[str, Any]] = {}
    for result in sorted(results, key=lambda r: (r["dataset"], r["profile"], r["method"],
                                                 r.get("config_hash", ""), r["seed"])):
        key = (result["method"], result.get("config_hash", ""))
        source, generator = ground_truth_source(result), generator_source(result)
        identity = _bundle_identity(result)
        group = (result["dataset"], source or "", generator or "", result["profile"],
                 stable_hash(identity))
        identities[group] = identity
        rows = groups[group]
        row = rows.setdefault(key, Row(result["method"], key[1], dict(result.get("overrides", {}))))
        row.seeds.append(int(result["seed"]))
        row.ids.append(str(result["id"]))
        for metric, value in result.get("metrics", {}).items():
            row.values[metric].append(float(value))
        for group, files in sorted(result.get("artifacts", {}).items()):
            if group == "figures":
                for name, path in sorted(files.items()):
                    row.figures.append((f"{name} s{result['seed']}", path))
    siblings: dict[tuple[str, ...], list[_GroupKey]] = defaultdict(list)
    for group in groups:
        siblings[group[:4]].append(group)
    bundles: dict[_GroupKey, str | None] = {}
    for members in siblings.values():
        labels = bundle_differences([identities[group] for group in members])
        bundles.update(zip(members, labels, strict=True))
    tables = []
    for group, rows_by_key in sorted(groups.items(), key=lambda item: (
            item[0][0], item[0][3], item[0][1], item[0][2], bundles[item[0]] or "")):
        dataset, source, generator, profile, _ = group
        rows = list(rows_by_key.values())
        _label_rows(rows)
        metrics = _ordered_metrics({m for row in rows for m in row.values}, info)
        best = {m: _best_rows(rows, m, info) for m in metrics}
        tables.append(Table(dataset, profile, rows, metrics, best, source or None,
                            generator or None, bundles[group]))
    return tables


def _label_rows(rows: list[Row]) -> None:
    for row in rows:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(row.overrides.items()))
        row.label = f"{row.method} ({extra})" if extra else row.method
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row.label] += 1
    for row in rows:
        if counts[row.label] > 1:
            row.label = f"{row.label} [{row.config_hash[:6]}]"


def _best_rows(rows: list[Row], metric: str, info: dict[str, Any]) -> set[int]:
    if metric not in info:
        return set()
    means = {i: float(np.mean(row.values[metric])) for i, row in enumerate(rows)
             if row.values.get(metric)}
    if len(means) < 2:
        return set()
    pick = max if info[metric].higher_is_better else min
    target = pick(means.values())
    return {i for i, mean in means.items() if math.isclose(mean, target, rel_tol=0, abs_tol=1e-12)}


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _cell_text(summary: Summary | None, row_seeds: int, *, latex: bool = False) -> str:
    if summary is None:
        return "–" if not latex else "--"
    pm = " $\\pm$ " if latex else " ± "
    text = _fmt(summary.mean)
    if summary.n > 1:
        text += f"{pm}{_fmt(summary.std)} [{_fmt(summary.ci_low)}, {_fmt(summary.ci_high)}]"
    if summary.n != row_seeds:
        text += f" (n={summary.n})"
    return text


def _link(path: str, results_root: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(results_root / path, out_dir)).as_posix()


def cell_text(table: Table, index: int, metric: str) -> str:
    """The text of one table cell (mean ± std [CI], ``(n=k)`` when seeds are missing), as in
    Markdown without the bold mark."""
    row = table.rows[index]
    return _cell_text(row.summary(metric), len(row.seeds))


def _markdown_table(table: Table, metrics: list[str], results_root: Path, out_dir: Path, *,
                    with_figures: bool) -> str:
    headers = ["method", "seeds", *metrics]
    # links only to figures that are there (a committed results folder keeps none)
    figures = [[(text, path) for text, path in row.figures if (results_root / path).is_file()]
               for row in table.rows]
    with_figures = with_figures and any(figures)
    if with_figures:
        headers.append("figures")
    body = []
    for i, row in enumerate(table.rows):
        line = [row.label, str(len(row.seeds))]
        for metric in metrics:
            text = cell_text(table, i, metric)
            line.append(f"**{text}**" if i in table.best[metric] else text)
        if with_figures:
            line.append(" ".join(f"[{text}]({_link(path, results_root, out_dir)})"
                                 for text, path in figures[i]))
        body.append(line)
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def render_markdown(tables: list[Table], results_root: Path = Path("results"),
                    out_dir: Path | None = None) -> str:
    """Per table: the headline view (if any headline metric is present), then every score."""
    out_dir = results_root if out_dir is None else out_dir
    parts = ["# Leaderboard", "",
             "Mean ± std [95% t-interval] over seeds; best mean per column in bold.", ""]
    if not tables:
        parts.append("No results yet: run `python -m bench run`.")
    for table in tables:
        parts += [f"## {table.title}", ""]
        full = _markdown_table(table, table.metrics, results_root, out_dir, with_figures=True)
        if table.headline:
            parts += ["### Headline", "",
                      _markdown_table(table, table.headline, results_root, out_dir,
                                      with_figures=False), "",
                      "### All scores", ""]
        parts += [full, ""]
    return "\n".join(parts).rstrip() + "\n"


def render_csv(tables: list[Table]) -> str:
    metrics = _ordered_metrics({m for t in tables for m in t.metrics}, _metric_info())
    header = ["dataset", "profile", "ground_truth", "generator", "bundle", "method", "label",
              "config_hash", "seeds"]
    for metric in metrics:
        header += [f"{metric}_{part}" for part in ("mean", "std", "ci95_low", "ci95_high", "n",
                                                   "best")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for table in tables:
        for i, row in enumerate(table.rows):
            line: list[Any] = [table.dataset, table.profile, table.source or "",
                               table.generator or "", table.bundle or "", row.method,
                               row.label, row.config_hash, len(row.seeds)]
            for metric in metrics:
                summary = row.summary(metric)
                if summary is None:
                    line += [""] * 6
                    continue
                line += [repr(x) if not math.isnan(x) else "" for x in
                         (summary.mean, summary.std, summary.ci_low, summary.ci_high)]
                line += [summary.n, int(i in table.best.get(metric, set()))]
            writer.writerow(line)
    return buffer.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def render_latex(tables: list[Table]) -> str:
    """Booktabs tables (written by hand: tabulate's booktabs format escapes our markup)."""
    parts = ["% Generated by `python -m bench leaderboard`; needs \\usepackage{booktabs}.", ""]
    for table in tables:
        headers = ["method", "seeds", *(latex_escape(m) for m in table.metrics)]
        lines = []
        for i, row in enumerate(table.rows):
            line = [latex_escape(row.label), str(len(row.seeds))]
            for metric in table.metrics:
                text = _cell_text(row.summary(metric), len(row.seeds), latex=True)
                line.append(f"\\textbf{{{text}}}" if i in table.best[metric] else text)
            lines.append(" & ".join(line) + r" \\")
        caption = latex_escape(table.title)
        parts += ["\\begin{table}[t]", "\\centering", "\\small",
                  "\\begin{tabular}{l" + "r" * (len(headers) - 1) + "}", "\\toprule",
                  " & ".join(headers) + r" \\", "\\midrule", *lines, "\\bottomrule",
                  "\\end{tabular}",
                  f"\\caption{{{caption}: mean $\\pm$ std [95\\% t-interval] over seeds.}}",
                  "\\end{table}", ""]
    return "\n".join(parts)


def write_leaderboard(results: Iterable[dict[str, Any]], results_root: Path,
                      out_dir: Path | None = None) -> dict[str, Path]:
    """Write LEADERBOARD.md/.csv/.tex (atomically) into ``out_dir`` (default the results root)."""
    out_dir = Path(results_root) if out_dir is None else Path(out_dir)
    tables = build_tables(results)
    paths = {
        "md": out_dir / f"{LEADERBOARD_NAME}.md",
        "csv": out_dir / f"{LEADERBOARD_NAME}.csv",
        "tex": out_dir / f"{LEADERBOARD_NAME}.tex",
    }
    atomic_write_text(paths["md"], render_markdown(tables, Path(results_root), out_dir))
    atomic_write_text(paths["csv"], render_csv(tables))
    atomic_write_text(paths["tex"], render_latex(tables))
    return paths
