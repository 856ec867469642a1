"""Known answers of the metric cores: hand-computed MI tables and entropies, perfect and permuted
codes, the argument checks and the degenerate-input warnings with their messages."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from metrics._common import (
    SEED_HIGH,
    DegenerateInputWarning,
    _offset_labels,
    as_generator,
    check_codes,
    check_factors,
    check_pair,
    check_split,
    discrete_entropy,
    estimator_seeds,
    from_dlib_layout,
    histogram_discretize,
    informative_factors,
    mutual_info_matrix,
    warn_constant_dims,
)
from metrics.mig import mig, mig_details
from metrics.modularity import (
    _macro_auc,
    explicitness,
    modularity,
    modularity_explicitness,
    modularity_from_mi,
)
from metrics.sap import SAPSettings, _correlation_matrix, sap, sap_score_matrix

LOG2 = math.log(2.0)

# --- MIG ---------------------------------------------------------------------------------------


def test_mig_details_known_answer_with_two_dims_and_degenerate_inputs():
    """Dim 0 copies factor 0 (MI = H = log 2), dim 1 is independent of it (MI 0), dim 2 is
    constant, factor 1 is constant: gap 1, factors_used [0], both warnings name MIG."""
    f0 = np.array([0, 0, 1, 1] * 3)
    codes = np.stack([f0, np.array([0, 1, 0, 1] * 3), np.full(12, 5)], axis=1).astype(float)
    factors = np.stack([f0, np.full(12, 3)], axis=1)
    with pytest.warns(DegenerateInputWarning) as record:
        details = mig_details(codes, factors)
    messages = [str(w.message) for w in record]
    assert "MIG: factors [1] take a single value and are excluded from the score" in messages
    assert "MIG: code dims [2] are constant (one bin, zero mutual information)" in messages
    assert set(details) == {"mi", "entropy", "gaps", "factors_used"}
    np.testing.assert_allclose(details["mi"], [[LOG2], [0.0], [0.0]], atol=1e-12)
    np.testing.assert_allclose(details["entropy"], [LOG2])
    np.testing.assert_allclose(details["gaps"], [1.0])
    assert details["factors_used"].tolist() == [0]
    # exactly two code dims are enough for the gap
    assert mig(codes[:, :2], factors[:, :1]) == {"mig": pytest.approx(1.0)}


def test_mig_uses_the_number_of_bins():
    """Codes 0..3 against the factor of their parity: 20 bins keep every value apart (MI log 2,
    MIG 1); 2 bins merge {0, 1} and {2, 3}, which says nothing about the parity (MIG 0)."""
    codes = np.stack([np.arange(4.0), np.array([0.0, 0.0, 1.0, 1.0])], axis=1)
    factors = np.array([[0], [1], [0], [1]])
    assert mig(codes, factors)["mig"] == pytest.approx(1.0)
    assert mig(codes, factors, num_bins=2)["mig"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(
        mig_details(codes, factors, num_bins=2)["mi"], [[0.0], [0.0]], atol=1e-12
    )
    # the default is 20 bins: codes 0..39 then fall in pairs (2i, 2i + 1), blind to the parity
    ramp = np.stack([np.arange(40.0), np.arange(40.0)[::-1]], axis=1)
    parity = (np.arange(40) % 2)[:, None]
    np.testing.assert_allclose(mig_details(ramp, parity)["mi"], [[0.0], [0.0]], atol=1e-12)
    assert mig(ramp, parity)["mig"] == pytest.approx(0.0, abs=1e-12)
    assert (mig_details(ramp, parity, num_bins=21)["mi"] > 0.01).all()


# --- _common: input checks ---------------------------------------------------------------------


def test_layout_and_input_checks_name_the_problem():
    layout = r"dlib layout expects codes \(D, N\) and factors \(K, N\)"
    with pytest.raises(ValueError, match=layout):
        from_dlib_layout(np.zeros(3), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"got \(2, 3\) and \(1, 3, 1\)"):
        from_dlib_layout(np.zeros((2, 3)), np.zeros((1, 3, 1)))
    for bad in (np.zeros(4), np.zeros((0, 2)), np.zeros((3, 0)), np.zeros((2, 2, 2))):
        with pytest.raises(ValueError, match=r"^M: c must be a non-empty \(N, D\) array, got \("):
            check_codes(bad, "M", "c")
    with pytest.raises(ValueError, match=r"^M: codes must be numeric, got dtype <U1$"):
        check_codes(np.array([["a"]]), "M")
    ints = check_codes(np.array([[1, 2]], dtype=np.int32), "M")
    assert ints.dtype == np.float64 and ints.tolist() == [[1.0, 2.0]]
    for dtype in (np.float16, np.float32):  # any float width is accepted and widened
        floats = check_codes(np.array([[0.5, 2.0]], dtype=dtype), "M")
        assert floats.dtype == np.float64 and floats.tolist() == [[0.5, 2.0]]
    for bad in (np.zeros(3, dtype=int), np.zeros((3, 0), dtype=int)):
        with pytest.raises(ValueError, match=r"^M: f must be an \(N, K\) array with K >= 1, got"):
            check_factors(bad, 3, "M", "f")
    with pytest.raises(ValueError, match=r"^M: factors must be integer factor indices, got dtype"):
        check_factors(np.zeros((3, 1)), 3, "M")
    with pytest.raises(ValueError, match=r"^M: factors have 3 rows but the codes have 4$"):
        check_factors(np.zeros((3, 1), dtype=int), 4, "M")
    flags = check_factors(np.array([[True], [False]]), 2, "M")
    assert flags.dtype == np.int64 and flags.tolist() == [[1], [0]]


def test_check_split_names_the_split_and_the_mismatch():
    codes, factors = np.zeros((4, 2)), np.zeros((4, 3), dtype=int)
    with pytest.raises(ValueError, match=r"^M: codes_tr must be a non-empty"):
        check_split(codes[:, :0], factors, codes, factors, "M")
    with pytest.raises(ValueError, match=r"^M: factors_te have 3 rows but the codes have 4$"):
        check_split(codes, factors, codes, factors[:3], "M")
    with pytest.raises(ValueError, match=r"^M: train codes have D=2, test codes D=1$"):
        check_split(codes, factors, codes[:, :1], factors, "M")
    with pytest.raises(ValueError, match=r"^M: train factors have K=3, test factors K=2$"):
        check_split(codes, factors, codes, factors[:, :2], "M")
    out = check_split(codes, factors, codes[:2], factors[:2], "M")
    assert [a.shape for a in out] == [(4, 2), (4, 3), (2, 2), (2, 3)]
    assert check_pair(codes, factors, "M")[1].dtype == np.int64


def test_informative_factors_and_constant_dims():
    factors = np.array([[0, 5, 1], [0, 5, 2], [0, 5, 1]])
    with pytest.warns(DegenerateInputWarning, match=r"^M: factors \[0, 1\] take a single value"):
        assert informative_factors(factors, "M").tolist() == [2]
    with pytest.raises(ValueError, match=r"^M: every factor is constant; nothing to score$"):
        informative_factors(factors[:, :2], "M")
    with pytest.raises(ValueError, match=r"^M: every factor is constant"):  # a single sample
        informative_factors(factors[:1], "M")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert informative_factors(factors[:, 2:], "M").tolist() == [0]
        codes = np.array([[1.0, 2.0, 3.0], [1.0, 4.0, 3.0]])
        assert warn_constant_dims(codes[:, 1:2], "M", "r").tolist() == []
    with pytest.warns(DegenerateInputWarning, match=r"^M: code dims \[0, 2\] are constant \(r\)$"):
        assert warn_constant_dims(codes, "M", "r").tolist() == [0, 2]


# --- _common: discretiser, MI, entropy, seeds --------------------------------------------------


def test_histogram_discretize_known_bins():
    # 0..10 in 5 bins of width 2: left edges 0, 2, 4, 6, 8; the maximum is in the last bin
    values = np.arange(11.0)[:, None]
    expected = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5]
    for data in (values, values.astype(np.float32), values.astype(np.int64)):
        assert histogram_discretize(data, 5)[:, 0].tolist() == expected
    assert histogram_discretize(values, 1)[:, 0].tolist() == [1] * 11
    # a constant dim spans value +- 0.5: the value is the middle edge
    assert histogram_discretize(np.full((3, 1), 7.0), 4)[:, 0].tolist() == [3, 3, 3]
    for data in (values, values.astype(np.float32), values.astype(np.int64)):
        assert histogram_discretize(data, 20).dtype == np.int64
    # float32 codes take np.histogram's path, which refuses a range too narrow for the bins
    with pytest.raises(ValueError, match="Too many bins"):
        histogram_discretize(np.array([[1e4], [1e4 + 1e-3]], dtype=np.float32), 20)
    with pytest.raises(ValueError, match=r"^num_bins must be >= 1, got 0$"):
        histogram_discretize(values, 0)
    # 20 bins by default: 0..39 fall in pairs
    assert histogram_discretize(np.arange(40.0)[:, None])[:, 0].tolist() == np.repeat(
        np.arange(1, 21), 2
    ).tolist()
    # a value on the left edge of the last bin whose width estimate floors one bin short:
    # (x - first) / step rounds to 18.99..., but x equals np.histogram_bin_edges' edge 19
    first, last = 6.317071082430644, 6.44418223411511
    on_edge = 19 * ((last - first) / 20) + first
    assert np.floor((on_edge - first) / ((last - first) / 20)) == 18
    column = np.array([first, on_edge, last])[:, None]
    assert histogram_discretize(column, 20)[:, 0].tolist() == [1, 20, 20]
    # and one just below the left edge of bin 5 whose estimate floors one bin too high
    first, last = 42.90931844828499, 461.06805051299483
    below = np.nextafter(5 * ((last - first) / 20) + first, -np.inf)
    assert np.floor((below - first) / ((last - first) / 20)) == 5
    column = np.array([first, below, last])[:, None]
    assert histogram_discretize(column, 20)[:, 0].tolist() == [1, 5, 20]
    # a range whose first edges are distinct but later ones are not (the float spacing
    # doubles at 1.0) is refused as well
    with pytest.raises(ValueError, match="Too many bins"):
        histogram_discretize(np.array([[0.9999999999999994], [1.0000000000000007]]), 20)
    # float64 too: a range of two ulps cannot hold 20 distinct edges
    with pytest.raises(ValueError, match="Too many bins"):
        histogram_discretize(np.array([[1.0], [1.0 + 4e-16]]), 20)
    # a range that is not finite is refused, as by np.histogram
    for column in ([0.0, np.inf], [-np.inf, 0.0], [np.nan, 1.0]):
        with pytest.raises(ValueError, match="finite"):
            histogram_discretize(np.array(column)[:, None])


def test_mutual_info_in_chunks_with_rare_and_constant_values(monkeypatch):
    """The same MI, equal to sklearn's, whether the dims' tables are counted in one chunk or
    in chunks of one or two dims; a value seen once counts as a value (the copy's MI is the
    factor's entropy); a constant factor, here kept as label 3 of 4 slots, has MI exactly 0."""
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(3)
    n = 50
    once = np.r_[np.zeros(n - 1, dtype=np.int64), 1]
    factors = np.stack([rng.integers(0, 3, n), once, np.full(n, 3)], axis=1)
    binned = np.stack([factors[:, 0], once + 1, rng.integers(0, 5, n), rng.integers(0, 7, n),
                       2 * factors[:, 0]], axis=1)
    want = np.array([[mutual_info_score(factors[:, j], binned[:, i]) for j in range(3)]
                     for i in range(5)])
    whole = mutual_info_matrix(binned, factors)
    np.testing.assert_allclose(whole, want, atol=1e-12)
    assert whole[1, 1] == pytest.approx(-(0.98 * math.log(0.98) + 0.02 * math.log(0.02)))
    assert not whole[:, 2].any()
    per_dim = int(_offset_labels(binned.T)[1].max()) * int(_offset_labels(factors.T)[1].sum())
    for cells in (1, 2 * per_dim):  # chunks of one dim, and of two (the last one short)
        monkeypatch.setattr("metrics._common.MAX_TABLE_CELLS", cells)
        assert np.array_equal(mutual_info_matrix(binned, factors), whole)
    # the plug-in sum of a constant factor against bins of 4 and 6 of 10 samples rounds to
    # +2.7e-16, so the exact 0 comes from treating the constant as constant
    split = np.r_[np.ones(4, dtype=np.int64), np.full(6, 2)][:, None]
    assert mutual_info_matrix(split, np.full((10, 1), 3))[0, 0] == 0.0
    # no samples, no dims or no factors: an all-zero (D, K) table
    for b, f in ((binned[:0], factors[:0]), (binned[:, :0], factors), (binned, factors[:, :0])):
        assert mutual_info_matrix(b, f).shape == (b.shape[1], f.shape[1])
        assert not mutual_info_matrix(b, f).any()


def test_mutual_info_known_tables():
    """A code that copies a uniform 4-valued factor has MI log 4; one that gives only its parity
    log 2; an independent one 0. The labels may be any integers (negative, large, bool)."""
    f = np.tile(np.arange(4), 6)
    binned = np.stack([f + 1, f % 2 + 1, np.repeat([1, 2], 12)], axis=1)
    expected = np.array([[math.log(4)], [LOG2], [0.0]])
    for factor in (f, f - 9, f * 10**12, f.astype(np.uint64)):
        mi = mutual_info_matrix(binned, factor[:, None])
        np.testing.assert_allclose(mi, expected, atol=1e-12)
    both = np.stack([f, f % 2 == 1], axis=1)
    np.testing.assert_allclose(
        mutual_info_matrix(binned, both), [[math.log(4), LOG2], [LOG2, LOG2], [0.0, 0.0]],
        atol=1e-12,
    )
    assert mutual_info_matrix(binned[:0], f[:0, None]).shape == (3, 1)
    assert not mutual_info_matrix(binned[:0], f[:0, None]).any()


@pytest.mark.parametrize(
    ("rows", "labels", "widths"),
    [
        # integer labels already in [0, N): kept as they are, one slot per value up to the max
        (np.array([[0, 1, 2], [1, 2, 2]]), [[0, 1, 2], [1, 2, 2]], [3, 3]),
        (np.array([[0, 1, 3, 1]], dtype=np.int32), [[0, 1, 3, 1]], [4]),
        # a range shorter than N: shifted by the minimum (gaps stay)
        (np.array([[5, 7, 7]]), [[0, 2, 2]], [3]),
        (np.array([[1, 2, 3]]), [[0, 1, 2]], [3]),
        # one row shifted, one ranked (range 20 >= N = 4)
        (np.array([[5, 7, 7, 6], [0, 10, 20, 10]]), [[0, 2, 2, 1], [0, 1, 2, 1]], [3, 3]),
        # a range of exactly N: ranked
        (np.array([[5, 8, 6]]), [[0, 2, 1]], [3]),
        # floats, booleans and uint64 beyond int64: ranked / cast
        (np.array([[0.5, 0.25, 0.5]]), [[1, 0, 1]], [2]),
        (np.array([[True, False, True]]), [[1, 0, 1]], [2]),
        (np.array([[2**63 + 5, 2**63 + 5, 1]], dtype=np.uint64), [[1, 1, 0]], [2]),
    ],
)
def test_offset_labels_known_answers(rows, labels, widths):
    out, width = _offset_labels(rows)
    assert out.dtype == np.int64 and out.tolist() == labels
    assert width.tolist() == widths


def test_discrete_entropy_of_uniform_and_skewed_factors():
    once = np.array([0] * 18 + [1, 2])  # two values seen once each
    f = np.stack(
        [np.tile(np.arange(5), 4), np.array([0] * 15 + [1] * 5), np.full(20, -3), once], axis=1
    )
    skew = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    rare = -(0.9 * math.log(0.9) + 2 * 0.05 * math.log(0.05))
    expected = [math.log(5), skew, 0.0, rare]
    np.testing.assert_allclose(discrete_entropy(f), expected, atol=1e-12)
    np.testing.assert_allclose(discrete_entropy(f * 1000 - 7), expected)


def test_generators_and_seeds():
    rng = np.random.default_rng(3)
    assert as_generator(rng) is rng
    assert as_generator(np.int64(5)).integers(100) == np.random.default_rng(5).integers(100)
    for bad in (True, 1.5, None):
        with pytest.raises(ValueError, match=r"random_state must be a np.random.Generator or an "
                                             rf"int seed, got {type(bad).__name__}$"):
            as_generator(bad)
    seeds = estimator_seeds(7, 1000)
    assert seeds[:5] == np.random.default_rng(7).integers(0, SEED_HIGH, size=5).tolist()
    assert all(type(s) is int and 0 <= s < SEED_HIGH for s in seeds) and len(seeds) == 1000


# --- Modularity and Explicitness ---------------------------------------------------------------


def test_modularity_from_mi_known_values():
    # one factor per dim: 1; MI spread evenly over K factors: 1 - 1 = 0; zero MI: 0
    assert modularity_from_mi([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]) == pytest.approx(1.0)
    assert modularity_from_mi([[1.0, 1.0, 1.0]]) == pytest.approx(0.0)
    assert modularity_from_mi([[0.0, 0.0]]) == 0.0
    # m = (2, 1, 0): delta = 1 / (4 * 2), score 7/8; averaged with a perfect dim
    assert modularity_from_mi([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]) == pytest.approx((7 / 8 + 1) / 2)
    for bad in ([[1.0]], [1.0, 2.0]):
        with pytest.raises(ValueError, match=r"^Modularity: needs K >= 2 factors \(divides by K"):
            modularity_from_mi(bad)


def _two_factor_codes(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Factor 0 (4 values) and factor 1 (2 values) in every combination; dim 0 copies factor 0,
    dim 1 factor 1."""
    f = np.stack([np.tile(np.arange(4), n // 4), np.repeat([0, 1], n // 2)], axis=1)
    return f.astype(float), f


def test_modularity_of_a_perfect_and_a_permuted_code():
    codes, factors = _two_factor_codes()
    assert modularity(codes, factors) == {"modularity": pytest.approx(1.0)}
    assert modularity(codes[:, ::-1], factors) == {"modularity": pytest.approx(1.0)}
    mixed = np.stack([codes[:, 0] + 4 * codes[:, 1], codes[:, 1]], axis=1)  # dim 0 sees both
    assert modularity(mixed, factors, num_bins=8)["modularity"] < 0.9
    # 2 bins split dim 0 (0..7) at 3.5, i.e. by factor 1 alone: both dims see one factor
    assert modularity(mixed, factors, num_bins=2)["modularity"] == pytest.approx(1.0)
    const = np.concatenate([factors, np.full((40, 1), 1)], axis=1)
    with pytest.warns(DegenerateInputWarning) as record:
        assert modularity(codes, const)["modularity"] == pytest.approx(1.0)
    assert [str(w.message) for w in record] == [
        "Modularity: factors [2] take a single value and are excluded from the score"
    ]
    with pytest.warns(DegenerateInputWarning, match=r"^Modularity: code dims \[2\] are constant "
                                                    r"\(zero mutual information, modularity 0\)$"):
        score = modularity(np.concatenate([codes, np.ones((40, 1))], axis=1), factors)
    assert score["modularity"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"^Modularity: needs K >= 2 informative factors, got 1$"):
        with pytest.warns(DegenerateInputWarning, match="single value"):
            modularity(codes, const[:, [0, 2]])


def test_explicitness_of_separable_codes_is_one():
    codes, factors = _two_factor_codes()
    codes = 10.0 * codes  # separable by a linear model on the standardised codes
    onehot = np.concatenate([codes, (factors[:, :1] == np.arange(4)) * 20.0], axis=1)
    scores = explicitness(onehot, factors, onehot[::5], factors[::5], random_state=0)
    assert scores == {"explicitness_train": 1.0, "explicitness_test": 1.0}
    both = modularity_explicitness(onehot, factors, onehot, factors, random_state=0, num_bins=2)
    assert set(both) == {"modularity", "explicitness_train", "explicitness_test"}
    assert both["explicitness_train"] == 1.0
    coarse = modularity(onehot, factors, num_bins=2)["modularity"]
    assert both["modularity"] == pytest.approx(coarse)
    # codes independent of the factors: AUC 0.5 on the train set
    noise = np.tile([[0.0], [1.0]], (20, 1)) * np.ones((1, 2))
    order = np.stack([np.repeat([0, 1], 20), np.tile([0, 0, 1, 1], 10)], axis=1)
    flat = explicitness(noise, order, noise, order, random_state=0)
    assert flat["explicitness_train"] == pytest.approx(0.5)


def test_macro_auc_uses_classes_present_and_absent():
    classes = np.array([0, 1, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    # class 2 is absent: it drops out; class 0 is ranked perfectly, class 1 perfectly
    assert _macro_auc(classes, np.array([0, 1, 1]), proba) == 1.0
    assert _macro_auc(classes, np.array([1, 0, 1]), proba) == pytest.approx(0.0)
    assert _macro_auc(classes, np.array([1, 1, 1]), proba) is None


def test_explicitness_degenerate_splits_warn_or_raise():
    codes, factors = _two_factor_codes()
    unseen = factors[:4].copy()
    unseen[:, 1] = 9  # no test sample of either training class of factor 1
    with pytest.warns(DegenerateInputWarning) as record:
        explicitness(codes, factors, codes[:4], unseen, random_state=0)
    messages = [str(w.message) for w in record]
    assert "Explicitness: factor 1 has test classes [9] never seen in training" in messages
    assert (
        "Explicitness: factor 1 has a single class in the test set; excluded from the average"
        in messages
    )
    with pytest.warns(DegenerateInputWarning, match=r"^Explicitness: code dims \[2\] are constant "
                                                    r"\(standardised with std 1\)$"):
        with_const = np.concatenate([codes, np.full((40, 1), 3.0)], axis=1)
        scores = explicitness(with_const, factors, with_const, factors, random_state=0)
    assert all(np.isfinite(v) for v in scores.values())
    with pytest.raises(ValueError, match=r"^Explicitness: no factor has two classes in both train "
                                         r"and test sets$"):
        with pytest.warns(DegenerateInputWarning, match="a single class in the test set"):
            explicitness(codes, factors, codes[:1], factors[:1], random_state=0)


def test_modularity_from_mi_computes_in_float64_without_warnings():
    mi32 = np.array([[0.1, 0.2, 0.3], [0.7, 0.05, 0.01]], dtype=np.float32)
    sq = mi32.astype(np.float64) ** 2
    top = sq.max(axis=1)
    expected = float(np.mean(1.0 - (sq.sum(axis=1) - top) / (top * 2)))
    assert modularity_from_mi(mi32) == expected  # float32 arithmetic differs at 1e-8
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the 0 / 0 of an all-zero row is silent
        assert modularity_from_mi(np.zeros((2, 3))) == 0.0


def _parity_codes() -> tuple[np.ndarray, np.ndarray]:
    """One code dim 0..39 against its parity and its half (x >= 20): 20 histogram bins hold the
    pairs {2k, 2k + 1}, so the dim has zero MI to the parity and modularity 1; 21 bins do not."""
    x = np.arange(40)
    return x[:, None].astype(float), np.stack([x % 2, x // 20], axis=1)


def test_modularity_default_and_passed_num_bins():
    codes, factors = _parity_codes()
    assert modularity(codes, factors) == {"modularity": 1.0}
    assert modularity(codes, factors, num_bins=21)["modularity"] < 0.999
    both = modularity_explicitness(codes, factors, codes, factors, random_state=0, num_bins=21)
    assert both["modularity"] == modularity(codes, factors, num_bins=21)["modularity"]


def test_modularity_and_explicitness_name_themselves_in_errors():
    codes, factors = _two_factor_codes()
    with pytest.raises(ValueError, match=r"^Modularity: codes must be a non-empty \(N, D\)"):
        modularity(codes[:, 0], factors)
    with pytest.raises(ValueError, match=r"^Explicitness: codes_te must be a non-empty"):
        explicitness(codes, factors, codes[:, 0], factors, random_state=0)
    const = np.concatenate([factors, np.zeros((40, 1), dtype=int)], axis=1)
    with pytest.warns(DegenerateInputWarning) as record:
        explicitness(codes, const, codes, const, random_state=0)
    assert [str(w.message) for w in record] == [
        "Explicitness: factors [2] take a single value and are excluded from the score"
    ]


def test_explicitness_passes_the_pinned_solver_and_one_seed_per_factor(
    monkeypatch, logistic_regression_spy
):
    """The classifier gets LOGISTIC_PARAMS (so a change of sklearn's defaults cannot change the
    score) and seed j of ``estimator_seeds``; only its ConvergenceWarning is silenced."""
    from sklearn.exceptions import ConvergenceWarning

    import metrics.modularity as module

    Spy, made = logistic_regression_spy
    monkeypatch.setattr("sklearn.linear_model.LogisticRegression", Spy)  # imported when fitting
    codes, factors = _two_factor_codes()
    with pytest.warns(UserWarning, match="something else") as record:
        explicitness(codes, factors, codes, factors, random_state=5)
    assert not [w for w in record if issubclass(w.category, ConvergenceWarning)]
    seeds = estimator_seeds(5, 2)
    assert made == [{"random_state": s, **module.LOGISTIC_PARAMS} for s in seeds]


def test_explicitness_of_a_clean_split_warns_nothing():
    codes, factors = _two_factor_codes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = explicitness(10.0 * codes, factors, 10.0 * codes[::3], factors[::3],
                              random_state=0)
    assert scores == {"explicitness_train": 1.0, "explicitness_test": 1.0}


# --- SAP ---------------------------------------------------------------------------------------


def _binary_design(reps: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Two balanced binary factors in every combination; dim i is +-10 by factor i. Within each
    value of one dim the other factor is half 0, half 1, so any one-dim predictor of it scores
    exactly 0.5."""
    f = np.tile(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), (reps, 1))
    return 20.0 * f - 10.0, f


@pytest.mark.parametrize("solver", ["newton", "liblinear"])
def test_sap_of_a_perfect_and_a_permuted_binary_code(solver):
    codes, factors = _binary_design()
    scores, keep = sap_score_matrix(codes, factors, codes, factors, random_state=0, solver=solver)
    np.testing.assert_allclose(scores, [[1.0, 0.5], [0.5, 1.0]])
    assert keep.tolist() == [0, 1]
    for c in (codes, codes[:, ::-1], -codes):
        assert sap(c, factors, c, factors, random_state=0, solver=solver) == {
            "sap": pytest.approx(0.5)
        }


def test_sap_three_class_factor_and_test_set():
    """A factor with 3 classes far apart along one dim: one-vs-rest cannot isolate the middle
    class, so the accuracy is below 1 but far above the 1/3 of the other dim."""
    f = np.stack([np.repeat([0, 1, 2], 12), np.tile([0, 1, 2], 12)], axis=1)
    codes = 10.0 * f.astype(float)
    scores, _ = sap_score_matrix(codes, f, codes[::2], f[::2], random_state=0)
    assert scores[1, 0] == pytest.approx(1 / 3) and scores[0, 1] == pytest.approx(1 / 3)
    assert 2 / 3 - 1e-12 <= scores[0, 0] <= 1.0


def test_sap_continuous_is_squared_correlation():
    codes, factors = _binary_design()
    scores, _ = sap_score_matrix(
        codes, factors, codes, factors, random_state=0, continuous_factors=True
    )
    np.testing.assert_allclose(scores, np.eye(2), atol=1e-12)
    # r^2 of (0, 1, 2, 3) against (0, 0, 1, 1) is 0.8, against (0, 1, 0, 1) 0.2; a constant
    # dim scores 0
    x = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    y = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_allclose(_correlation_matrix(x, y), [[0.8, 0.2], [0.0, 0.0]], atol=1e-12)
    assert sap(codes, factors, codes, factors, random_state=0, continuous_factors=True) == {
        "sap": pytest.approx(1.0)
    }


def test_sap_checks_and_messages():
    codes, factors = _binary_design()
    const = np.concatenate([factors, np.zeros((40, 1), dtype=int)], axis=1)
    with pytest.warns(DegenerateInputWarning, match=r"^SAP: factors \[2\] take a single value"):
        _, keep = sap_score_matrix(codes, const, codes, const, random_state=0)
    assert keep.tolist() == [0, 1]
    with_const = np.concatenate([codes, np.ones((40, 1))], axis=1)
    with pytest.warns(DegenerateInputWarning, match=r"^SAP: code dims \[2\] are constant \(they "
                                                    r"cannot separate classes and score at chance"):
        scores, _ = sap_score_matrix(with_const, factors, with_const, factors, random_state=0)
    np.testing.assert_allclose(scores[2], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"^SAP: solver must be one of \('newton', 'liblinear'\), "
                                         r"got 'x'$"):
        sap_score_matrix(codes, factors, codes, factors, random_state=0, solver="x")
    with pytest.raises(ValueError, match=r"^SAP: solver must be one of"):
        SAPSettings(solver="x")
    with pytest.raises(ValueError, match=r"^SAP: needs at least 2 code dims \(D >= 2\), got D=1$"):
        sap(codes[:, :1], factors, codes[:, :1], factors, random_state=0)
    with pytest.raises(ValueError, match=r"^SAP: train codes have D=2, test codes D=1$"):
        sap_score_matrix(codes, factors, codes[:, :1], factors, random_state=0)
    # the seeds are drawn whatever the solver: the generator ends in the same state
    states = []
    for solver in ("newton", "liblinear"):
        rng = np.random.default_rng(1)
        sap(codes, factors, codes, factors, random_state=rng, solver=solver)
        states.append(rng.integers(1 << 30))
    reference = np.random.default_rng(1)
    reference.integers(0, SEED_HIGH, size=4)  # D * K = 4 seeds
    assert states == [reference.integers(1 << 30)] * 2
