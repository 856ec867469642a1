"""``bench compare A B``: a paired comparison of two methods over the seeds both have on one
leaderboard table (dataset, bundle, profile).

A and B are row labels or method names of :func:`bench.reports.leaderboard.build_tables`
(``ganspace`` and ``ganspace+att`` compare a method with and without attention). Per metric: the
seeds both have, each seed's values and difference A − B, the median difference with its order-
statistic interval (:func:`bench.reports.seed_stats.median_interval`, coverage stated), the exact
Wilcoxon signed-rank test of the differences and one plain sentence
("A above B on 4 of 5 seeds; p = ...").

The test is two-sided at :data:`bench.reports.seed_stats.LEVEL` (5 %): A and B are named before the
numbers are seen, so neither side is privileged. (The leaderboard's bold mark is one-sided,
because it asks whether the best row is above the runner-up on the side its medians picked; see
:mod:`bench.reports.seed_stats`.) Two-sided, n paired seeds can give no p below 2/2^n: fewer than 6
seeds all in one direction are never separable, and the output says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from bench.flows.base import score_metadata
from bench.reports.leaderboard import Row, Table, build_tables
from bench.reports.seed_stats import (
    LEVEL,
    MIN_SEEDS_TWO_SIDED,
    MedianInterval,
    SignedRankTest,
    median_interval,
    signed_rank_test,
    smallest_p,
)
from core.errors import BenchError

MIN_PAIRS = 2
LEVEL_TEXT = f"{100 * LEVEL:g} %"  # "5 %"


@dataclass(frozen=True)
class MetricComparison:
    """One metric of A vs B over the seeds both have it."""

    metric: str
    higher_is_better: bool | None  # None: not in the metric registry
    seeds: tuple[int, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]
    difference: MedianInterval  # of a − b
    test: SignedRankTest  # two-sided, of a − b

    @property
    def differences(self) -> tuple[float, ...]:
        return tuple(x - y for x, y in zip(self.a, self.b, strict=True))

    @property
    def separable(self) -> bool:
        return self.test.p_value <= LEVEL


@dataclass(frozen=True)
class Comparison:
    table: Table
    a: Row
    b: Row
    metrics: list[MetricComparison]
    skipped: list[str]  # metrics both have, but on fewer than two common seeds


def _choices(tables: Sequence[Table], among: Sequence[Table]) -> str:
    """How to pick each of ``tables``: ``--dataset D --profile P`` where that pair names one table
    of ``among``, else ``--table 'TITLE'``."""
    def flags(table: Table) -> str:
        same = [t for t in among if (t.dataset, t.profile) == (table.dataset, table.profile)]
        if len(same) == 1:
            return f"--dataset {table.dataset} --profile {table.profile}"
        return f"--table '{table.title}'"

    return "; ".join(flags(t) for t in tables)


def _find_row(table: Table, name: str) -> Row | None:
    """The row labelled ``name``, else the one row of method ``name`` (None if there is none);
    a BenchError if several rows have that method."""
    for row in table.rows:
        if row.label == name:
            return row
    rows = [row for row in table.rows if row.method == name]
    if len(rows) > 1:
        raise BenchError(f"{name!r} has {len(rows)} rows on {table.title} (other settings): "
                         f"expected one of their labels: {', '.join(r.label for r in rows)}")
    return rows[0] if rows else None


def select_table(tables: Sequence[Table], a: str, b: str, *, dataset: str | None = None,
                 profile: str | None = None, title: str | None = None) -> Table:
    """The one table holding both A and B among those the filters leave; a BenchError that lists
    the choices when there is none or more than one."""
    if not tables:
        raise BenchError("no results to compare: run `python -m bench run` first "
                         "(or point --results at a results folder)")
    kept = [t for t in tables if (dataset is None or t.dataset == dataset)
            and (profile is None or t.profile == profile) and (title is None or t.title == title)]
    if not kept:
        wanted = ", ".join(f"{k} {v}" for k, v in (("--dataset", dataset), ("--profile", profile),
                                                   ("--table", title)) if v is not None)
        raise BenchError(f"no results for {wanted}: expected one of "
                         f"{_choices(tables, tables)}")
    both = [t for t in kept if _find_row(t, a) is not None and _find_row(t, b) is not None]
    if not both:
        where = {name: [t.title for t in kept if _find_row(t, name) is not None]
                 for name in (a, b)}
        found = "; ".join(f"{name} is in {', '.join(titles) if titles else 'none of them'}"
                          for name, titles in where.items())
        raise BenchError(f"no table has both {a} and {b} ({found}): expected two row labels or "
                         "method names of one table (see `python -m bench leaderboard`)")
    if len(both) > 1:
        raise BenchError(f"{a} and {b} are both in {len(both)} tables: pick one with "
                         f"{_choices(both, tables)}")
    return both[0]


def compare_rows(table: Table, a: Row, b: Row, metrics: Sequence[str] | None = None) -> Comparison:
    """Paired comparison of rows ``a`` and ``b`` of ``table`` on ``metrics`` (default: every
    metric both have on at least two common seeds, in column order)."""
    common = sorted(set(a.seeds) & set(b.seeds))
    if len(common) < MIN_PAIRS:
        raise BenchError(
            f"{a.label} and {b.label} share {len(common)} seed(s) on {table.title} "
            f"({a.label}: {_seed_list(a.seeds)}; {b.label}: {_seed_list(b.seeds)}): a paired "
            f"comparison needs at least {MIN_PAIRS} seeds both have (run the missing seeds)")
    both = [m for m in table.metrics if a.values.get(m) and b.values.get(m)]
    if metrics is not None:
        unknown = [m for m in metrics if m not in both]
        if unknown:
            raise BenchError(f"metric {', '.join(unknown)} is not one that both {a.label} and "
                             f"{b.label} have on {table.title}: expected one of "
                             f"{', '.join(both) or '(none)'}")
    info = score_metadata()
    done, skipped = [], []
    for metric in (both if metrics is None else list(metrics)):
        pa, pb = a.per_seed(metric), b.per_seed(metric)
        seeds = tuple(sorted(set(pa) & set(pb)))
        if len(seeds) < MIN_PAIRS:
            if metrics is not None:
                raise BenchError(f"{metric}: {a.label} and {b.label} both have it on "
                                 f"{len(seeds)} seed(s) of {table.title}: a paired comparison "
                                 f"needs at least {MIN_PAIRS}")
            skipped.append(metric)
            continue
        xs, ys = tuple(pa[s] for s in seeds), tuple(pb[s] for s in seeds)
        diffs = [x - y for x, y in zip(xs, ys, strict=True)]
        meta = info.get(metric)
        done.append(MetricComparison(metric, None if meta is None else meta.higher_is_better,
                                     seeds, xs, ys, median_interval(diffs),
                                     signed_rank_test(diffs, "two-sided")))
    if not done:
        raise BenchError(f"{a.label} and {b.label} have no metric on two or more common seeds "
                         f"of {table.title}")
    return Comparison(table, a, b, done, skipped)


def _seed_list(seeds: Iterable[int]) -> str:
    return ", ".join(str(s) for s in sorted(set(seeds))) or "none"


def _direction(value: bool | None) -> str:
    return {True: "higher is better", False: "lower is better", None: "direction unknown"}[value]


def sentence(a: str, b: str, m: MetricComparison) -> str:
    """'A above B on 4 of 5 seeds; p = 0.0625 (...): not separable at the 5 % level (...).'"""
    test = m.test
    counts = f"{a} above {b} on {test.above} of {test.n} seeds"
    extra = [f"below on {test.below}"] if test.below and test.above else []
    if test.equal:
        extra.append(f"equal on {test.equal}")
    if test.above == 0 and test.below:
        counts = f"{a} below {b} on {test.below} of {test.n} seeds"
    if test.nonzero == 0:
        counts, extra = f"{a} equal to {b} on all {test.n} seeds", []
    if extra:
        counts += f" ({', '.join(extra)})"
    text = f"{counts}; p = {test.p_value:.3g} (exact Wilcoxon signed-rank, two-sided): "
    if m.separable:
        a_above = test.statistic > test.nonzero * (test.nonzero + 1) / 4  # W+ above its mean
        winner = a if a_above == m.higher_is_better else b
        text += f"separable at the {LEVEL_TEXT} level"
        if m.higher_is_better is not None:
            text += f", {winner} better"
    else:
        text += f"not separable at the {LEVEL_TEXT} level"
        if test.nonzero == 0:
            text += " (no seed differs)"
        elif test.nonzero < MIN_SEEDS_TWO_SIDED:
            differing = "" if test.nonzero == test.n else f", {test.nonzero} of them differing,"
            text += (f" ({test.n} seeds{differing} can give no p below "
                     f"{smallest_p(test.nonzero, 'two-sided'):.3g}; "
                     f"{MIN_SEEDS_TWO_SIDED} are needed for {LEVEL:g})")
    return text + "."


def _fmt(value: float, sign: bool = False) -> str:
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def _interval_text(interval: MedianInterval) -> str:
    what = (f"the range of the {interval.n} differences" if interval.is_range else
            "order-statistic interval")
    return (f"median difference {_fmt(interval.median, True)} [{_fmt(interval.low, True)}, "
            f"{_fmt(interval.high, True)}] ({what}: covers the median difference with "
            f"probability {100 * interval.coverage:.3g} %)")


def render(comparison: Comparison) -> str:
    """Per metric a small table (seed, A, B, A − B), the median difference with its interval and
    the plain sentence; then one line naming the separable metrics."""
    a, b = comparison.a.label, comparison.b.label
    seeds = sorted(set(comparison.a.seeds) & set(comparison.b.seeds))
    lines = [f"{a} vs {b} on {comparison.table.title}: seeds both have: {_seed_list(seeds)}",
             ""]
    for m in comparison.metrics:
        body = [[str(s), _fmt(x), _fmt(y), _fmt(x - y, True)]
                for s, x, y in zip(m.seeds, m.a, m.b, strict=True)]
        lines += [f"{m.metric} ({_direction(m.higher_is_better)})",
                  tabulate(body, headers=["seed", a, b, f"{a} - {b}"], tablefmt="simple",
                           disable_numparse=True, colalign=("left", "right", "right", "right")),
                  _interval_text(m.difference), sentence(a, b, m), ""]
    separable = [m.metric for m in comparison.metrics if m.separable]
    lines.append(f"Separable at the {LEVEL_TEXT} level: "
                 + (", ".join(separable) if separable else "none") + f" (of "
                 f"{len(comparison.metrics)} metric(s)).")
    if comparison.skipped:
        lines.append("Not compared (fewer than 2 seeds where both have them): "
                     + ", ".join(comparison.skipped) + ".")
    return "\n".join(lines) + "\n"


def compare_results(results: Iterable[dict[str, Any]], a: str, b: str, *,
                    metrics: Sequence[str] | None = None, dataset: str | None = None,
                    profile: str | None = None, title: str | None = None) -> Comparison:
    """Select the table, its rows A and B, and compare them (see :func:`compare_rows`)."""
    if a == b:
        raise BenchError(f"compare {a} with itself: expected two different methods")
    table = select_table(build_tables(results), a, b, dataset=dataset, profile=profile,
                         title=title)
    row_a, row_b = _find_row(table, a), _find_row(table, b)
    assert row_a is not None and row_b is not None  # select_table checked both
    return compare_rows(table, row_a, row_b, metrics)
