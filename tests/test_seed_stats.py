"""Statistics over seeds, against hand-computed answers and scipy: the median's order-statistic
interval, the exact signed-rank test (ties included) and the leaderboard's best-vs-runner-up
rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bench.reports.seed_stats import (
    LEVEL,
    MIN_SEEDS_ONE_SIDED,
    MIN_SEEDS_TWO_SIDED,
    median_interval,
    min_seeds,
    order_statistic_coverage,
    order_statistic_rank,
    range_coverage,
    separate_best,
    signed_rank_test,
    smallest_p,
)


def test_median_interval_below_six_seeds_is_the_range_with_its_coverage():
    two = median_interval([0.4, 0.2])
    assert (two.n, two.median, two.low, two.high) == (2, pytest.approx(0.3), 0.2, 0.4)
    assert two.coverage == 0.5 and two.is_range
    three = median_interval([3.0, 1.0, 2.0])
    assert (three.median, three.low, three.high, three.coverage) == (2.0, 1.0, 3.0, 0.75)
    for n, coverage in [(4, 0.875), (5, 0.9375), (6, 1 - 2 / 64)]:
        got = median_interval(range(n))
        assert (got.low, got.high, got.coverage) == (0, n - 1, coverage) == \
            (0, n - 1, range_coverage(n))
    one = median_interval([7.0])
    assert one.median == 7.0 and math.isnan(one.low) and math.isnan(one.coverage)
    with pytest.raises(ValueError):
        median_interval([])


def test_median_interval_narrows_once_the_seeds_allow_it():
    # n = 9: k = 2 covers 1 - 2 (1 + 9) / 512 = 0.961; k = 3 only 1 - 2 (1 + 9 + 36) / 512 = 0.820
    assert order_statistic_coverage(9, 2) == pytest.approx(1 - 20 / 512)
    assert order_statistic_coverage(9, 3) == pytest.approx(1 - 92 / 512)
    nine = median_interval([9, 1, 8, 2, 7, 3, 6, 4, 5])
    assert (nine.median, nine.low, nine.high) == (5, 2, 8) and not nine.is_range
    assert [order_statistic_rank(n) for n in (2, 5, 6, 8, 9, 10, 20)] == [1, 1, 1, 1, 2, 2, 6]
    with pytest.raises(ValueError):
        order_statistic_coverage(4, 3)


def test_signed_rank_exact_p_by_hand():
    # |d| ranks: 0.2 -> 1, 0.5 -> 2, 0.8 -> 3, 1.0 -> 4; W+ = 2 + 3 + 4 = 9. Of the 16 sign
    # patterns, W+ >= 9 in two ({2,3,4} = 9, {1,2,3,4} = 10): p = 2/16 one-sided, 4/16 two-sided.
    d = [0.5, -0.2, 1.0, 0.8]
    greater = signed_rank_test(d, "greater")
    assert (greater.statistic, greater.p_value) == (9.0, 0.125)
    assert (greater.above, greater.below, greater.equal) == (3, 1, 0)
    assert signed_rank_test(d).p_value == 0.25
    assert signed_rank_test(d, "less").p_value == pytest.approx(15 / 16)
    for alternative in ("two-sided", "greater", "less"):
        assert signed_rank_test(d, alternative).p_value == pytest.approx(
            stats.wilcoxon(d, alternative=alternative, method="exact").pvalue)


def test_signed_rank_all_in_one_direction_reaches_the_smallest_p():
    for n in range(1, 8):
        d = np.arange(1.0, n + 1)
        assert signed_rank_test(d, "greater").p_value == pytest.approx(1 / 2**n)
        assert signed_rank_test(d).p_value == pytest.approx(min(1.0, 2 / 2**n))
        assert signed_rank_test(d, "greater").p_value == pytest.approx(smallest_p(n, "greater"))
    # two or three seeds can never be separated at 5 %, five can one-sided, six two-sided
    assert (smallest_p(2), smallest_p(3), smallest_p(5), smallest_p(6)) == \
        (0.5, 0.25, 0.0625, 0.03125)
    assert smallest_p(5, "greater") == 0.03125 <= LEVEL < smallest_p(4, "greater")
    assert (MIN_SEEDS_ONE_SIDED, MIN_SEEDS_TWO_SIDED) == (5, 6) == \
        (min_seeds(0.05, "greater"), min_seeds(0.05, "two-sided"))


def test_signed_rank_ties_and_zeros_are_exact():
    # zero dropped; |d| = 1, 1, 1, 2 -> mid-ranks 2, 2, 2, 4; W+ = 2 + 2 + 4 = 8. Sign patterns
    # with W+ >= 8: {2,2,4} three ways and all four: 4 of 16.
    test = signed_rank_test([1, 1, -1, 2, 0], "greater")
    assert (test.n, test.above, test.below, test.equal, test.statistic) == (5, 3, 1, 1, 8.0)
    assert test.p_value == 0.25
    assert signed_rank_test([0.0, 0.0]).p_value == 1.0
    assert signed_rank_test([0.0, 0.0]).nonzero == 0
    with pytest.raises(ValueError):
        signed_rank_test([1.0, math.nan])
    with pytest.raises(ValueError):
        signed_rank_test([1.0], "bigger")


def test_rounding_gaps_are_ties_not_differences():
    # direction recovery of the same exact directions found by two methods (float32 arithmetic)
    a = [0.9997248754931544, 0.9997151840330356, 0.9996759791923878]
    b = [0.9997248753738717, 0.9997151839340885, 0.9996759792299885]
    test = signed_rank_test([x - y for x, y in zip(a, b, strict=True)])
    assert (test.above, test.below, test.equal, test.p_value) == (0, 0, 3, 1.0)
    assert signed_rank_test([2e-6, 3e-6, 4e-6]).above == 3  # above the tie width: real gaps


def test_signed_rank_matches_scipy_without_ties():
    rng = np.random.default_rng(7)
    for n in range(1, 13):
        d = rng.normal(0.4, 1.0, n)
        for alternative in ("two-sided", "greater", "less"):
            assert signed_rank_test(d, alternative).p_value == pytest.approx(
                stats.wilcoxon(d, alternative=alternative, method="exact").pvalue)


def seeds(values):
    return dict(enumerate(values))


def test_best_separated_from_runner_up_on_five_seeds():
    values = {0: seeds([0.50, 0.61, 0.55, 0.58, 0.52]),  # above the runner-up on every seed
              1: seeds([0.40, 0.60, 0.50, 0.41, 0.51]),
              2: seeds([0.10, 0.12, 0.11, 0.09, 0.13])}
    sep = separate_best(values, higher_is_better=True)
    assert (sep.best, sep.runner_up, sep.seeds, sep.separable) == (0, 1, (0, 1, 2, 3, 4), True)
    assert sep.test is not None and sep.test.p_value == pytest.approx(1 / 32)
    assert sep.reason == "p = 0.0312 ≤ 0.05"


def test_overlapping_seeds_are_not_separable():
    values = {0: seeds([0.9, 0.2, 0.8, 0.7, 0.3]),  # median 0.7, below 1 on two seeds
              1: seeds([0.5, 0.6, 0.4, 0.6, 0.5])}  # median 0.5
    sep = separate_best(values, higher_is_better=True)
    assert (sep.best, sep.runner_up, sep.separable) == (0, 1, False)
    assert sep.test is not None and (sep.test.above, sep.test.below) == (3, 2)
    assert sep.test.p_value > LEVEL and sep.reason.startswith("p = ")


def test_too_few_seeds_are_never_separable():
    four = {0: seeds([2.0, 3.0, 4.0, 5.0]), 1: seeds([1.0, 1.0, 1.0, 1.0])}
    sep = separate_best(four, higher_is_better=True)
    assert not sep.separable and sep.test is not None and sep.test.p_value == 1 / 16
    assert sep.reason == ("only 4 seeds in common (the smallest p they can give is 0.0625; "
                          "5 are needed for 0.05)")
    apart = {0: {0: 1.0, 1: 1.0}, 1: {2: 0.0, 3: 0.0}}
    sep = separate_best(apart, higher_is_better=True)
    assert sep.test is None and "0 seed(s) in common" in sep.reason
    assert separate_best({0: seeds([1.0])}, True).best is None


def test_lower_is_better_and_tied_medians():
    values = {0: seeds([3.0, 3.1, 3.2, 3.3, 3.4]), 1: seeds([1.0, 1.1, 1.2, 1.3, 1.4])}
    low = separate_best(values, higher_is_better=False)
    assert (low.best, low.runner_up, low.separable) == (1, 0, True)
    tied = separate_best({0: seeds([1, 2, 3]), 1: seeds([2, 2, 2]), 2: seeds([0, 0, 0])}, True)
    assert (tied.best, tied.runner_up, tied.separable, tied.test) == (0, 1, False, None)
    assert tied.reason == "the two best medians are equal"


def test_rows_tied_for_runner_up_must_all_be_beaten():
    values = {0: seeds([1.0, 1.0, 1.0, 1.0, 1.0]),
              1: seeds([0.5, 0.5, 0.5, 0.5, 0.5]),  # beaten on every seed
              2: seeds([0.5, 0.5, 0.5, 2.0, 2.0])}  # same median, above the best on two seeds
    sep = separate_best(values, higher_is_better=True)
    assert (sep.best, sep.runner_up, sep.separable) == (0, 2, False)
    values[2] = seeds([0.5, 0.4, 0.5, 0.6, 0.5])
    sep = separate_best(values, higher_is_better=True)
    assert sep.separable and sep.test.p_value == 1 / 32


@pytest.mark.parametrize(("rows", "seeds", "most"), [(2, 5, 0.08), (2, 6, 0.12), (15, 6, 0.04)])
def test_false_marks_where_nothing_differs(rows, seeds, most):
    """Every row's seeds from one normal distribution: the rate of marked columns stays at or
    below the two-sided 10 % that the one-sided test on the medians' side amounts to."""
    rng = np.random.default_rng(3)
    draws = 1500
    marked = sum(separate_best({i: dict(enumerate(rng.normal(size=seeds))) for i in range(rows)},
                               higher_is_better=True).separable for _ in range(draws))
    assert marked / draws <= most
