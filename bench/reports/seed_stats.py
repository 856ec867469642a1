"""Statistics over seeds that fit the few seeds a benchmark has: no I/O, no plotting.

A benchmark cell is one (method, dataset, profile, seed); a table compares methods over a handful
of seeds, often two to five. With that few, a mean ± t-interval is mostly width (at two seeds the
95 % t-interval is about ±6 standard deviations) and a normal model of the seeds is untestable.
This module uses only what holds without one:

* **The median and an order-statistic interval for it** (:func:`median_interval`). For n values
  sorted x₍₁₎ ≤ … ≤ x₍ₙ₎, [x₍ₖ₎, x₍ₙ₊₁₋ₖ₎] covers the population median with probability
  1 − 2·P(Binomial(n, ½) ≤ k − 1), for any continuous distribution. The interval reported is the
  narrowest such one that covers with probability ≥ 95 %; below 6 seeds none does, and the
  interval is the seeds' whole range [min, max], whose coverage 1 − 2^(1−n) (50 % at n = 2, 75 %
  at 3, 87.5 % at 4, 93.75 % at 5) is reported with it. It needs no random numbers, so it is the
  same on every run (a bootstrap of the median would be too at a fixed seed, but with n ≤ 5 it
  can only return order statistics anyway, at a coverage it does not state).

* **A paired comparison** of two methods over the seeds both have (:func:`signed_rank_test`): the
  exact Wilcoxon signed-rank test of the per-seed differences, zero differences dropped
  (Wilcoxon's rule, scipy's default) and tied magnitudes given their mid-ranks, with the exact
  null distribution of the rank sum (each non-zero difference equally likely positive or
  negative) computed for the ranks at hand, ties included. With m non-zero differences the
  smallest p-value it can give is 1/2^m one-sided and 2/2^m two-sided (:func:`smallest_p`): two
  or three seeds can never be separated at 5 %.

* **The leaderboard's mark** (:func:`separate_best`): the best median of a column is marked only
  where its seeds beat the runner-up's (the second-best median) on the seeds both have, one-sided
  exact signed-rank p ≤ :data:`LEVEL` (0.05). The side is the one the medians picked, so a marked
  column passes a two-sided test at 10 % and no stricter claim should be read into it; it is
  one-sided so that five seeds all in one direction (p = 1/32 = 0.031) can be separated at all
  (two-sided, five seeds give at best 0.0625). Fewer than :data:`MIN_SEEDS_ONE_SIDED` (5) common
  seeds: never marked. Rows tied for the second-best median are all runners-up (the best must
  beat each). Where nothing differs (every row's seeds drawn from one distribution), a column is
  marked in at most about 10 % of draws with two rows (the two-sided 10 % above) and in 1-3 %
  with 5 to 15 rows (the two best of many are close), checked by simulation in the tests. Each
  column is its own test, not corrected for the number of columns.

* ``bench compare`` (:mod:`bench.reports.compare`) names its two methods before looking, so it
  uses the two-sided test at the same 5 % level: 6 seeds all in one direction are the fewest it
  separates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.05  # the significance level of the leaderboard's mark and of `bench compare`
COVERAGE = 0.95  # the coverage sought for the median's interval
ALTERNATIVES = ("two-sided", "greater", "less")
# Differences (and medians) closer than this are ties. The scores are float32 arithmetic (about
# 7 significant digits) printed with 3 decimals, so a gap below 1e-6 is rounding, not a
# difference between methods: e.g. the direction recovery of the same exact directions reached
# by two methods, 0.99972487549 against 0.99972487537.
TIE_ATOL = 1e-6


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative {alternative!r}: expected one of {', '.join(ALTERNATIVES)}")


@dataclass(frozen=True)
class MedianInterval:
    """Median of n values and an order-statistic interval [low, high] that covers the population
    median with probability ``coverage`` (NaN when n = 1: one value bounds nothing)."""

    n: int
    median: float
    low: float
    high: float
    coverage: float

    @property
    def is_range(self) -> bool:
        """Whether the interval is the values' whole range (n < 6: no narrower one reaches 95 %)."""
        return self.n > 1 and order_statistic_rank(self.n) == 1


def order_statistic_coverage(n: int, k: int) -> float:
    """Probability that [x₍ₖ₎, x₍ₙ₊₁₋ₖ₎] of n values covers the population median (continuous
    distribution): 1 − 2·P(Binomial(n, ½) ≤ k − 1)."""
    if not 1 <= k <= (n + 1) // 2:
        raise ValueError(f"order statistic k={k} out of 1..{(n + 1) // 2} for n={n}")
    return float(1.0 - 2.0 * stats.binom.cdf(k - 1, n, 0.5))


def order_statistic_rank(n: int, coverage: float = COVERAGE) -> int:
    """The largest k whose interval [x₍ₖ₎, x₍ₙ₊₁₋ₖ₎] covers with probability ≥ ``coverage``;
    1 (the whole range) when none does."""
    k = 1
    while k + 1 <= (n + 1) // 2 and order_statistic_coverage(n, k + 1) >= coverage:
        k += 1
    return k


def median_interval(values: Sequence[float], coverage: float = COVERAGE) -> MedianInterval:
    """The median of ``values`` and its order-statistic interval (see the module docstring)."""
    array = np.sort(np.asarray(values, dtype=float))
    n = int(array.size)
    if n == 0:
        raise ValueError("median_interval: no values")
    median = float(np.median(array))
    if n == 1:
        return MedianInterval(1, median, math.nan, math.nan, math.nan)
    k = order_statistic_rank(n, coverage)
    return MedianInterval(n, median, float(array[k - 1]), float(array[n - k]),
                          order_statistic_coverage(n, k))


def range_coverage(n: int) -> float:
    """Coverage of the range [min, max] of n values for the median: 1 − 2^(1−n)."""
    return 1.0 - 2.0 ** (1 - n)


def smallest_p(n: int, alternative: str = "two-sided") -> float:
    """The smallest p-value the exact signed-rank (or sign) test can reach with n non-zero paired
    differences: 1/2^n one-sided, 2/2^n two-sided (1 when n = 0)."""
    _check_alternative(alternative)
    if n <= 0:
        return 1.0
    return min(1.0, (1.0 if alternative != "two-sided" else 2.0) / 2.0 ** n)


def min_seeds(level: float = LEVEL, alternative: str = "greater") -> int:
    """The fewest paired seeds with which the exact test can reach p ≤ ``level``."""
    n = 1
    while smallest_p(n, alternative) > level:
        n += 1
    return n


MIN_SEEDS_ONE_SIDED = min_seeds(LEVEL, "greater")  # 5
MIN_SEEDS_TWO_SIDED = min_seeds(LEVEL, "two-sided")  # 6


@dataclass(frozen=True)
class SignedRankTest:
    """The exact Wilcoxon signed-rank test of paired differences d = a − b.

    ``statistic`` is W+, the sum of the ranks of the positive differences; ``above``/``below``/
    ``equal`` count the pairs with a > b, a < b and a = b (the equal ones are dropped before
    ranking). ``p_value`` is for ``alternative``: ``greater`` (a tends to exceed b), ``less`` or
    ``two-sided`` (twice the smaller tail, at most 1)."""

    n: int
    above: int
    below: int
    equal: int
    statistic: float
    p_value: float
    alternative: str

    @property
    def nonzero(self) -> int:
        return self.above + self.below


def _midranks(magnitudes: np.ndarray) -> np.ndarray:
    return stats.rankdata(magnitudes, method="average")


def _null_distribution(doubled_ranks: Sequence[int]) -> np.ndarray:
    """probability[s] that the positive (doubled, so integer) ranks sum to s when each sign is
    + or − with probability ½, independently."""
    probability = np.zeros(int(sum(doubled_ranks)) + 1, dtype=float)
    probability[0] = 1.0
    for r in doubled_ranks:  # every rank >= 1, so every doubled rank >= 2
        shifted = np.zeros_like(probability)
        shifted[r:] = probability[:-r]
        probability = (probability + shifted) / 2.0
    return probability


def signed_rank_test(differences: Sequence[float], alternative: str = "two-sided", *,
                     atol: float = TIE_ATOL) -> SignedRankTest:
    """Exact Wilcoxon signed-rank test of paired differences (see the module docstring).

    Differences within ``atol`` of zero count as ties and are dropped; tied magnitudes get mid-
    ranks, and the null distribution is enumerated for those ranks (exact with ties, unlike the
    textbook tables). With no non-zero difference, p = 1."""
    _check_alternative(alternative)
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or not np.all(np.isfinite(d)):
        raise ValueError("signed_rank_test: expected a flat sequence of finite differences")
    zero = np.abs(d) <= atol
    kept = d[~zero]
    above, below, equal = int(np.sum(kept > 0)), int(np.sum(kept < 0)), int(np.sum(zero))
    if kept.size == 0:
        return SignedRankTest(int(d.size), 0, 0, equal, 0.0, 1.0, alternative)
    ranks = _midranks(np.abs(kept))
    doubled = [int(round(2 * r)) for r in ranks]  # mid-ranks are multiples of 1/2
    null = _null_distribution(doubled)
    w_plus = int(sum(r for r, x in zip(doubled, kept, strict=True) if x > 0))
    upper = min(1.0, float(null[w_plus:].sum()))  # P(W+ >= observed)
    lower = min(1.0, float(null[:w_plus + 1].sum()))  # P(W+ <= observed)
    p = {"greater": upper, "less": lower, "two-sided": min(1.0, 2.0 * min(upper, lower))}
    return SignedRankTest(int(d.size), above, below, equal, w_plus / 2.0, p[alternative],
                          alternative)


def better_sign(higher_is_better: bool) -> float:
    """+1 when higher values are better, −1 when lower ones are."""
    return 1.0 if higher_is_better else -1.0


@dataclass(frozen=True)
class Separation:
    """The best and runner-up (second-best median) of one column, and whether the best's seeds
    beat the runner-up's on the seeds both have (one-sided exact signed-rank p ≤ ``level``).

    ``best``/``runner_up`` are keys (row indices) of the mapping given to :func:`separate_best`
    (None when the column has fewer than two entries); ``seeds`` the seeds both have; ``test``
    None when fewer than two are shared or the best medians tie; ``reason`` one phrase for a
    reader."""

    best: int | None
    runner_up: int | None
    seeds: tuple[int, ...]
    test: SignedRankTest | None
    separable: bool
    level: float
    reason: str


def separate_best(values: dict[int, dict[int, float]], higher_is_better: bool,
                  level: float = LEVEL, *, atol: float = TIE_ATOL) -> Separation:
    """Pick the best and the runner-up of ``values`` (key -> seed -> value) by median, in the
    better direction, and test the best against the runner-up over their common seeds. Where
    several rows tie for the second-best median, the best must beat each of them; the one it
    separates least from is reported as the runner-up.

    Separable only when the one-sided exact signed-rank p (best better than runner-up) is at most
    ``level``; a tie between the two best medians, fewer than :func:`min_seeds` common seeds or a
    larger p are 'not separable', said in ``reason``."""
    entries = {key: seeds for key, seeds in values.items() if seeds}
    if len(entries) < 2:
        return Separation(None, None, (), None, False, level, "fewer than two rows")
    sign = better_sign(higher_is_better)
    medians = {key: float(np.median(list(seeds.values()))) for key, seeds in entries.items()}
    order = sorted(entries, key=lambda key: -sign * medians[key])  # stable: ties keep row order
    best = order[0]
    if math.isclose(medians[best], medians[order[1]], rel_tol=0, abs_tol=atol):
        runner = order[1]
        common = tuple(sorted(set(entries[best]) & set(entries[runner])))
        return Separation(best, runner, common, None, False, level,
                          "the two best medians are equal")
    # rows tied for the second-best median are all runners-up: the best must beat each of them,
    # and the one it separates least from is reported
    tied = [key for key in order[1:]
            if math.isclose(medians[key], medians[order[1]], rel_tol=0, abs_tol=atol)]
    outcomes = [_against(entries, best, runner, sign, level, atol) for runner in tied]
    return max(outcomes, key=lambda sep: (not sep.separable,
                                          sep.test.p_value if sep.test is not None else 2.0))


def _against(entries: dict[int, dict[int, float]], best: int, runner: int, sign: float,
             level: float, atol: float) -> Separation:
    common = tuple(sorted(set(entries[best]) & set(entries[runner])))
    if len(common) < 2:
        return Separation(best, runner, common, None, False, level,
                          f"{len(common)} seed(s) in common with the runner-up")
    diffs = [sign * (entries[best][s] - entries[runner][s]) for s in common]
    test = signed_rank_test(diffs, "greater", atol=atol)
    need = min_seeds(level, "greater")
    if test.nonzero < need:
        differing = (f", {test.nonzero} of them differing" if test.nonzero < len(common) else "")
        reason = (f"only {len(common)} seeds in common{differing} (the smallest p they can give "
                  f"is {smallest_p(test.nonzero, 'greater'):.3g}; {need} are needed for "
                  f"{level:g})")
        return Separation(best, runner, common, test, False, level, reason)
    if test.p_value <= level:
        return Separation(best, runner, common, test, True, level,
                          f"p = {test.p_value:.3g} ≤ {level:g}")
    return Separation(best, runner, common, test, False, level,
                      f"p = {test.p_value:.3g} > {level:g}")
