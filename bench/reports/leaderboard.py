"""Leaderboards from result files: one table per (dataset, bundle, profile), one row per method
setting. A bundle whose ground truth can come from a real file or a look-alike (e.g.
``shapes3d``) records the source in its identity; its tables name it and never pool the two.
Results made on different bundles of one dataset (an older shipped generator, another
predictor, a user's checkpoint) never share a table either: each table's title names what sets
its bundle apart (e.g. ``generator: shapes3d_generator.safetensors sha256 28fc1494a1b2``).

Each table is shown twice in Markdown: the headline view (the score keys the metric registry
flags ``headline``: the numbers the papers report, e.g. disentanglement score and attribute count
for discovery, FVM, MIG and DCI disentanglement for representations), then every sub-score, then
per column the best and the runner-up and whether the seeds separate them. The CSV and LaTeX
hold every score.

Every metric cell shows the median over seeds and the order-statistic interval for it that the
seed count supports (:func:`bench.reports.seed_stats.median_interval`: the seeds' range below 6
seeds, with its coverage stated per table). A column's best median (direction from
``bench.flows.base.score_metadata()``; unknown keys are never marked) is bold in Markdown, LaTeX and
the HTML report, and flagged in a ``<metric>_best`` CSV column, only where its seeds beat the
runner-up's (the second-best median) on the seeds both have: one-sided exact Wilcoxon
signed-rank test, p ≤ 0.05 (:func:`bench.reports.seed_stats.separate_best`). Fewer than 5
common seeds can never reach that, so such columns are 'not separable', whatever their medians.
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

from bench.flows.base import score_metadata
from bench.reports.seed_stats import (
    LEVEL,
    MIN_SEEDS_ONE_SIDED,
    MedianInterval,
    Separation,
    median_interval,
    order_statistic_rank,
    separate_best,
    smallest_p,
)
from core.hashing import stable_hash
from core.io import atomic_write_text

LEADERBOARD_NAME = "LEADERBOARD"
RECOVERY_RECORD = "direction_recovery"  # result.json's block (bench.flows.directions)
# (space in the record, score key, header) of the direction-recovery views
RECOVERY_SPACES = (("w", "direction_recovery", "W"), ("wplus", "direction_recovery_wplus", "W+"))


@dataclass(frozen=True)
class Summary:
    """Mean, sample std and 95% t-interval of one metric over seeds (std/CI NaN when n = 1).

    The leaderboard shows medians and order-statistic intervals instead
    (:func:`bench.reports.seed_stats.median_interval`); the CSV keeps the mean and std beside
    them."""

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
    # metric -> seed -> values (several where one seed ran more than once, e.g. other threads)
    by_seed: dict[str, dict[int, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    figures: list[tuple[str, str]] = field(default_factory=list)  # (text, path under results)
    # seed -> the cell's direction-recovery record (oracle bundles; absent: run before it)
    recovery: dict[int, dict[str, Any]] = field(default_factory=dict)
    kind: str = ""  # the method's kind as result.json records it ("directions", ...)

    def summary(self, metric: str) -> Summary | None:
        vals = self.values.get(metric)
        return summarize(vals) if vals else None

    def interval(self, metric: str) -> MedianInterval | None:
        """Median and order-statistic interval of one metric over this row's values."""
        vals = self.values.get(metric)
        return median_interval(vals) if vals else None

    def per_seed(self, metric: str) -> dict[int, float]:
        """seed -> value of one metric (the mean where a seed has several), for pairing rows."""
        return {seed: float(np.mean(vals)) for seed, vals in
                sorted(self.by_seed.get(metric, {}).items()) if vals}


@dataclass
class Table:
    dataset: str
    profile: str
    rows: list[Row]
    metrics: list[str]
    best: dict[str, set[int]]  # metric -> index of the bold row (only where separable)
    source: str | None = None  # the ground-truth source, where the bundle records one
    generator: str | None = None  # a user-chosen generator, where the bundle records one
    bundle: str | None = None  # what sets this bundle apart from another one of the same name
    # metric -> best vs runner-up, for every metric with registry metadata and two or more rows
    separations: dict[str, Separation] = field(default_factory=dict)

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
        info = score_metadata()
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


def _ordered_metrics(keys: Iterable[str], info: dict[str, Any]) -> list[str]:
    keys = set(keys)
    known = [k for k in info if k in keys]
    return known + sorted(keys - set(known))


# (dataset, ground-truth source, user-chosen generator, profile, hash of the bundle identity)
_GroupKey = tuple[str, str, str, str, str]


def build_tables(results: Iterable[dict[str, Any]]) -> list[Table]:
    """Group results by (dataset, ground-truth source, generator, profile, bundle identity) and
    (method, config hash); seeds become samples."""
    info = score_metadata()
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
        row = rows.setdefault(key, Row(result["method"], key[1], dict(result.get("overrides", {})),
                                       kind=str(result.get("kind", ""))))
        row.seeds.append(int(result["seed"]))
        row.ids.append(str(result["id"]))
        for metric, value in result.get("metrics", {}).items():
            row.values[metric].append(float(value))
            row.by_seed[metric][int(result["seed"])].append(float(value))
        record = result.get(RECOVERY_RECORD)
        if isinstance(record, dict):
            row.recovery[int(result["seed"])] = record
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
        separations = {m: sep for m in metrics if (sep := _separation(rows, m, info)) is not None}
        best = {m: {sep.best} if (sep := separations.get(m)) is not None and sep.separable
                and sep.best is not None else set() for m in metrics}
        tables.append(Table(dataset, profile, rows, metrics, best, source or None,
                            generator or None, bundles[group], separations))
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


def _separation(rows: list[Row], metric: str, info: dict[str, Any]) -> Separation | None:
    """Best vs runner-up of one column (None: no registry direction, or fewer than two rows)."""
    if metric not in info:
        return None
    values = {i: seeds for i, row in enumerate(rows) if (seeds := row.per_seed(metric))}
    if len(values) < 2:
        return None
    return separate_best(values, info[metric].higher_is_better)


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _cell_text(interval: MedianInterval | None, row_seeds: int, *, latex: bool = False) -> str:
    if interval is None:
        return "–" if not latex else "--"
    text = _fmt(interval.median)
    if interval.n > 1:
        text += f" [{_fmt(interval.low)}, {_fmt(interval.high)}]"
    if interval.n != row_seeds:
        text += f" (n={interval.n})"
    return text


def _link(path: str, results_root: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(results_root / path, out_dir)).as_posix()


def cell_text(table: Table, index: int, metric: str) -> str:
    """The text of one table cell (median [interval], ``(n=k)`` when seeds are missing), as in
    Markdown without the bold mark."""
    row = table.rows[index]
    return _cell_text(row.interval(metric), len(row.seeds))


def _percent(value: float) -> str:
    return f"{100 * value:.3g} %"


def interval_note(table: Table) -> str:
    """What the table's intervals are for the seed counts it has, with their coverage."""
    counts = sorted({len(vals) for row in table.rows for vals in row.values.values()
                     if len(vals) > 1})
    if not counts:
        return "One seed per cell: no interval."
    parts = []
    for n in counts:
        interval = median_interval(range(n))
        k = order_statistic_rank(n)
        what = ("the seeds' range" if k == 1 else
                f"the {_ordinal(k)} to {_ordinal(n + 1 - k)} smallest value")
        parts.append(f"{n} seeds: {what}, which covers the median with probability "
                     f"{_percent(interval.coverage)}")
    return "Interval: " + "; ".join(parts) + "."


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def mark_rule() -> str:
    """The bold rule, in words (the Markdown and report captions)."""
    return (f"Bold: the best median of a column, only where its seeds beat the runner-up's "
            f"(the second-best median) on the seeds both have: one-sided exact Wilcoxon "
            f"signed-rank test, p ≤ {LEVEL:g} (as the side is the one the medians picked, read "
            f"it as a two-sided test at the {_percent(2 * LEVEL)} level). Where rows tie for "
            f"the second-best median, the best must beat each of them. With n common seeds the "
            f"smallest possible p is 1/2^n, so fewer than {MIN_SEEDS_ONE_SIDED} never separate "
            "a column: it is 'not separable', whatever its medians.")


def separation_note(table: Table) -> str:
    """One sentence on what the table's seed counts allow."""
    common = [len(sep.seeds) for sep in table.separations.values()]
    if not common:
        return "No column has two rows with a known direction to compare."
    bold = sum(sep.separable for sep in table.separations.values())
    most = max(common)
    if most < MIN_SEEDS_ONE_SIDED:
        return (f"No column can be bold here: at most {most} seed(s) in common between the best "
                f"and the runner-up, whose smallest possible p is "
                f"{smallest_p(most, 'greater'):.3g}.")
    return f"{bold} of {len(common)} column(s) separable."


@dataclass(frozen=True)
class SeparationLine:
    """One column's best vs runner-up, as the Markdown and the report show it."""

    metric: str
    best: str
    best_median: float
    runner_up: str
    runner_up_median: float
    seeds: int  # seeds both have
    ahead: str  # "3 of 5": seeds where the best is on the better side
    p_value: float | None  # one-sided exact signed-rank p (None: no test ran)
    separable: bool
    reason: str


def separation_lines(table: Table) -> list[SeparationLine]:
    """Best vs runner-up of each compared column, in column order."""
    lines = []
    for metric in table.metrics:
        sep = table.separations.get(metric)
        if sep is None or sep.best is None or sep.runner_up is None:
            continue
        best, runner = table.rows[sep.best], table.rows[sep.runner_up]
        test = sep.test
        lines.append(SeparationLine(
            metric, best.label, float(np.median(best.values[metric])), runner.label,
            float(np.median(runner.values[metric])), len(sep.seeds),
            f"{test.above} of {test.n}" if test is not None else "–",
            test.p_value if test is not None else None, sep.separable, sep.reason))
    return lines


def _separation_rows(table: Table) -> list[list[str]]:
    return [[line.metric, f"{line.best} ({_fmt(line.best_median)})",
             f"{line.runner_up} ({_fmt(line.runner_up_median)})", str(line.seeds), line.ahead,
             "–" if line.p_value is None else f"{line.p_value:.3g}",
             ("**separable**" if line.separable else "not separable") + f": {line.reason}"]
            for line in separation_lines(table)]


def recovery_note() -> str:
    """What the direction-recovery view shows, in words (the Markdown and report captions)."""
    return ("Direction recovery (oracle bundles, docs/discovery.md): mean over factors of the "
            "best |cos| between a true factor direction and a found direction, in W (a W+ "
            "direction read as the sum of its rows) and, on a layered oracle, in W+ (the "
            "factor's direction on its home row). Random: the same statistic for as many "
            "isotropic random directions, median and 95th percentile over each cell's draws "
            "(median over the seeds here); above p95: the seeds whose score is above their "
            "own random 95th percentile. – : a cell run before the score (`bench rescore` "
            "fills it in).")


def recovery_table(table: Table) -> tuple[list[str], list[list[str]]] | None:
    """Headers and rows of the table's direction-recovery view (None where no row has the
    score): per space the score (median [interval] over seeds), the random reference's median
    and 95th percentile, and on how many seeds the score is above that percentile. Rows of
    representation methods (kind ``representation`` in result.json: no directions) are left
    out."""
    spaces = [(space, key, name) for space, key, name in RECOVERY_SPACES
              if any(key in row.values for row in table.rows)]
    if not spaces:
        return None
    headers = ["method", "seeds"]
    for _, _, name in spaces:
        headers += [f"recovery {name}", f"random {name} median", f"random {name} p95",
                    f"above p95 ({name})"]
    rows = []
    for i, row in enumerate(table.rows):
        if row.kind == "representation":
            continue
        line = [row.label, str(len(row.seeds))]
        for space, key, _ in spaces:
            readings = [(seed, record[space]) for seed, record in sorted(row.recovery.items())
                        if isinstance(record.get(space), dict)]
            if not readings:
                line += ["–"] * 4
                continue
            line.append(cell_text(table, i, key))
            line += [_fmt(float(np.median([r[part] for _, r in readings])))
                     for part in ("random_median", "random_p95")]
            above = sum(r["score"] > r["random_p95"] for _, r in readings)
            line.append(f"{above} of {len(readings)}")
        rows.append(line)
    return headers, rows


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
             "Median [interval] over seeds; the seeds column gives n (a cell with fewer says "
             "`(n=k)`). The interval is the order-statistic interval for the median that the "
             "seed count supports: the narrowest [x(k), x(n+1-k)] that covers the median with "
             "probability ≥ 95 %, or, below 6 seeds, where none does, the seeds' range, whose "
             "coverage each table states. " + mark_rule(), ""]
    if not tables:
        parts.append("No results yet: run `python -m bench run`.")
    for table in tables:
        parts += [f"## {table.title}", "", f"{interval_note(table)} {separation_note(table)}",
                  ""]
        full = _markdown_table(table, table.metrics, results_root, out_dir, with_figures=True)
        if table.headline:
            parts += ["### Headline", "",
                      _markdown_table(table, table.headline, results_root, out_dir,
                                      with_figures=False), "",
                      "### All scores", ""]
        parts += [full, ""]
        recovery = recovery_table(table)
        if recovery is not None:
            headers, rows = recovery
            parts += ["### Direction recovery", "", recovery_note(), "",
                      tabulate(rows, headers=headers, tablefmt="github",
                               disable_numparse=True), ""]
        separations = _separation_rows(table)
        if separations:
            parts += ["### Best vs runner-up", "",
                      tabulate(separations, headers=[
                          "metric", "best (median)", "runner-up (median)", "seeds both have",
                          "best ahead on", "p (one-sided)", "mark"],
                          tablefmt="github", disable_numparse=True), ""]
    return "\n".join(parts).rstrip() + "\n"


CSV_PARTS = ("median", "low", "high", "coverage", "n", "mean", "std", "best", "p")


def render_csv(tables: list[Table]) -> str:
    """One line per row; per metric: ``median``, the interval ``low``/``high`` and its
    ``coverage``, ``n``, ``mean`` and ``std``, ``best`` (1 only on a separable best row) and
    ``p`` (on the best row: the one-sided p against the runner-up, where a test ran)."""
    metrics = _ordered_metrics({m for t in tables for m in t.metrics}, score_metadata())
    header = ["dataset", "profile", "ground_truth", "generator", "bundle", "method", "label",
              "config_hash", "seeds"]
    for metric in metrics:
        header += [f"{metric}_{part}" for part in CSV_PARTS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for table in tables:
        for i, row in enumerate(table.rows):
            line: list[Any] = [table.dataset, table.profile, table.source or "",
                               table.generator or "", table.bundle or "", row.method,
                               row.label, row.config_hash, len(row.seeds)]
            for metric in metrics:
                interval, summary = row.interval(metric), row.summary(metric)
                if interval is None or summary is None:
                    line += [""] * len(CSV_PARTS)
                    continue
                sep = table.separations.get(metric)
                p = (sep.test.p_value if sep is not None and sep.best == i
                     and sep.test is not None else math.nan)
                line += [_number(x) for x in (interval.median, interval.low, interval.high,
                                              interval.coverage)]
                line += [interval.n, *(_number(x) for x in (summary.mean, summary.std)),
                         int(i in table.best.get(metric, set())), _number(p)]
            writer.writerow(line)
    return buffer.getvalue()


def _number(value: float) -> str:
    return "" if math.isnan(value) else repr(value)


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
                text = _cell_text(row.interval(metric), len(row.seeds), latex=True)
                line.append(f"\\textbf{{{text}}}" if i in table.best[metric] else text)
            lines.append(" & ".join(line) + r" \\")
        caption = latex_escape(table.title)
        parts += ["\\begin{table}[t]", "\\centering", "\\small",
                  "\\begin{tabular}{l" + "r" * (len(headers) - 1) + "}", "\\toprule",
                  " & ".join(headers) + r" \\", "\\midrule", *lines, "\\bottomrule",
                  "\\end{tabular}",
                  f"\\caption{{{caption}: {_latex_caption(table)}}}",
                  "\\end{table}", ""]
    return "\n".join(parts)


def _latex_caption(table: Table) -> str:
    bold = [m for m in table.metrics if table.best.get(m)]
    marks = (f"bold in {len(bold)} column(s)" if bold else "no column separable")
    text = (f"median [interval] over seeds. {interval_note(table)} Bold: the best median, only "
            f"where its seeds beat the runner-up's (second-best median) on the seeds both have, "
            f"one-sided exact Wilcoxon signed-rank test at the {_percent(LEVEL)} level (fewer "
            f"than {MIN_SEEDS_ONE_SIDED} common seeds: not separable); {marks}.")
    return latex_escape(text).replace("≥", "$\\geq$")


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
