"""Known answers of SAP's exact one-feature solver: the active-set sums against their definition,
the Newton solution against an independent minimiser of the same primal, the prediction rule
on a zero decision value, the key width, and what the public functions pass on."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

import metrics.sap as sap_module
from metrics._common import DegenerateInputWarning, estimator_seeds
from metrics.sap import (
    _active_sums,
    _class_layout,
    _correlation_matrix,
    _key_dtype,
    _newton_accuracies,
    _newton_ovr,
    _objective,
    _SortedCodes,
    sap,
    sap_score_matrix,
)


def _sorted_codes(codes: np.ndarray, factors: np.ndarray) -> tuple[_SortedCodes, list, np.ndarray]:
    """The solver's data as ``_newton_accuracies`` builds it: classes, offsets, labels."""
    classes, sizes, offsets, labels = _class_layout(factors)
    return _SortedCodes(codes, labels, offsets, int(sizes.sum())), classes, offsets


def _problems(codes: np.ndarray, factors: np.ndarray, weights: list[tuple[float, float]]):
    """Every (dim, factor, class) one-vs-rest problem with every (w, b), dims sorted."""
    data, classes, offsets = _sorted_codes(codes, factors)
    rows = [
        (i, j, offsets[j] + c, w, b)
        for i in range(codes.shape[1])
        for j in range(factors.shape[1])
        for c in range(len(classes[j]))
        for w, b in weights
    ]
    dims, fac, cls, w, b = (np.array(col) for col in zip(*rows, strict=True))
    return data, classes, offsets, dims, fac, cls, w.astype(float), b.astype(float)


def _brute_force(x, positive, w, b, scale):
    """(count, sum x, sum x^2) of the positives with w x + scale b < 1 and of the negatives
    with w x + scale b > -1 (margin below 1, i.e. a non-zero squared hinge loss)."""
    u, v = 1.0 - scale * b, -1.0 - scale * b
    act_p = positive & (w * x < u)
    act_n = ~positive & (w * x > v)
    return tuple((a.sum(), x[a].sum(), (x[a] ** 2).sum()) for a in (act_p, act_n))


# w = 0 with u > 0, u = 0, u < 0 and v < 0, v = 0, v > 0; thresholds u / w, v / w that fall on
# sample values (ties) for w = +-1, +-0.5
WEIGHTS = [(w, b) for w in (-1.0, -0.5, 0.0, 0.5, 2.0) for b in (-2.0, -1.0, 0.0, 0.5, 1.0, 2.5)]


@pytest.mark.parametrize(("n", "d", "scale"), [(40, 3, 1.0), (4, 6, 1.0), (40, 2, 2.0)])
def test_active_sums_and_objective_match_their_definition(n, d, scale):
    rng = np.random.default_rng(n + d)
    codes = rng.integers(-3, 4, size=(n, d)).astype(float)  # integer grid: exact ties
    factors = np.stack([np.arange(n) % 2, np.arange(n) % 3], axis=1)
    data, classes, offsets, dims, fac, cls, w, b = _problems(codes, factors, WEIGHTS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # u / w at w = 0 is silent
        pos, neg, u, v = _active_sums(data, dims, fac, cls, w, b, scale)
        cp, cn = np.full(w.shape, 0.3), np.full(w.shape, 0.7)
        objective = _objective(w, b, pos, neg, u, v, cp, cn)
    assert np.array_equal(u, 1.0 - scale * b) and np.array_equal(v, -1.0 - scale * b)
    for p in range(dims.size):
        x = codes[:, dims[p]]
        positive = factors[:, fac[p]] == classes[fac[p]][cls[p] - offsets[fac[p]]]
        want_pos, want_neg = _brute_force(x, positive, w[p], b[p], scale)
        got_pos = tuple(float(s[p]) for s in pos)
        got_neg = tuple(float(s[p]) for s in neg)
        assert got_pos == pytest.approx(want_pos, abs=1e-9), (p, w[p], b[p])
        assert got_neg == pytest.approx(want_neg, abs=1e-9), (p, w[p], b[p])
        margin = w[p] * x + scale * b[p]
        hinge = np.where(positive, np.maximum(0.0, 1.0 - margin), np.maximum(0.0, 1.0 + margin))
        primal = 0.5 * (w[p] ** 2 + b[p] ** 2) + np.sum(np.where(positive, 0.3, 0.7) * hinge**2)
        assert objective[p] == pytest.approx(primal, rel=1e-12, abs=1e-12)


def _reference_minimiser(x, positive, c_pos, c_neg, scale):
    """The same primal minimised by scipy (BFGS on the smooth squared hinge, tight tolerance)."""
    y = np.where(positive, 1.0, -1.0)
    c = np.where(positive, c_pos, c_neg)

    def f(theta):
        w, b = theta
        slack = np.maximum(0.0, 1.0 - y * (w * x + scale * b))
        value = 0.5 * (w * w + b * b) + np.sum(c * slack**2)
        grad = np.array([w - 2 * np.sum(c * slack * y * x), b - 2 * scale * np.sum(c * slack * y)])
        return value, grad

    return minimize(f, np.zeros(2), jac=True, method="BFGS", options={"gtol": 1e-12}).x


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_newton_reaches_the_exact_minimiser_in_a_few_steps(monkeypatch, scale):
    """Exact Newton on a piecewise-quadratic objective ends in a handful of steps (7 at most
    here); a wrong gradient or Hessian misses the minimiser or needs more steps."""
    rng = np.random.default_rng(7)
    n = 200
    factors = np.stack([rng.integers(0, 2, n), rng.integers(0, 4, n)], axis=1)
    codes = np.stack([factors[:, 0] + rng.normal(0, 0.7, n),
                      0.5 * factors[:, 1] + rng.normal(0, 0.5, n), rng.normal(0, 1, n),
                      0.1 * (factors[:, 0] + rng.normal(0, 0.3, n))], axis=1)  # |w| up to 5
    data, classes, offsets, dims, fac, cls, _, _ = _problems(codes, factors, [(0.0, 0.0)])
    # SAP's C = 0.01 times class weights, and C up to 5; the last dim needs |w| > 1 (the stopping
    # tolerance is relative to the size of the solution)
    c_pos = rng.choice([0.005, 0.02, 0.05, 1.0, 5.0], dims.size)
    c_neg = rng.choice([0.005, 0.02, 0.05, 1.0, 5.0], dims.size)
    monkeypatch.setattr(sap_module, "NEWTON_MAX_ITER", 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "stopped after" warning within 8 steps
        w, b = _newton_ovr(data, dims, fac, cls, c_pos, c_neg, scale)
    for p in range(dims.size):
        positive = factors[:, fac[p]] == classes[fac[p]][cls[p] - offsets[fac[p]]]
        want = _reference_minimiser(codes[:, dims[p]], positive, c_pos[p], c_neg[p], scale)
        assert [w[p], b[p]] == pytest.approx(want, rel=1e-6, abs=1e-8), p


def test_newton_warns_when_it_runs_out_of_steps(monkeypatch):
    codes = np.array([[0.0], [1.0], [2.0], [3.0]])
    factors = np.array([[0], [0], [1], [1]])
    data, _, _, dims, fac, cls, _, _ = _problems(codes, factors, [(0.0, 0.0)])
    monkeypatch.setattr(sap_module, "NEWTON_MAX_ITER", 1)
    ones = np.full(dims.size, 0.5)
    with pytest.warns(DegenerateInputWarning) as record:
        _newton_ovr(data, dims, fac, cls, ones, ones, 1.0)
    assert [str(r.message) for r in record] == [
        "SAP: the Newton solver stopped after 1 iterations on 2 problems"
    ]


def test_zero_decision_predicts_the_first_class():
    """A constant (zero) code and a balanced binary factor: the minimiser is w = b = 0 exactly,
    every decision value is 0, and sklearn's rule (second class where > 0) gives the first."""
    codes = np.zeros((8, 1))
    factors = np.array([[3], [7]] * 4)
    test_factors = np.array([[3], [7], [7], [7]])
    accuracy = _newton_accuracies(codes, factors, np.zeros((4, 1)), test_factors)
    assert accuracy.tolist() == [[0.25]]


def test_key_dtype_boundaries():
    assert _key_dtype(0, 31) is np.int32  # largest key 2**31 - 1
    assert _key_dtype(1, 30) is np.int32  # (2 << 30) - 1 = 2**31 - 1
    assert _key_dtype(2, 30) is np.int64
    assert _key_dtype(0, 32) is np.int64
    assert _key_dtype(5, 3) is np.int32
    assert _key_dtype(2**31 - 1, 0) is np.int32
    assert _key_dtype(2**31, 0) is np.int64


def test_correlation_ignores_dims_below_the_variance_floor():
    """Sample variance (ddof 1) 0.8e-12 scores 0, 1.2e-12 scores its squared correlation."""
    base = np.array([-1.0, -1.0, 1.0, 1.0])  # ddof-1 variance 4/3
    codes = np.stack([base * np.sqrt(0.6e-12), base * np.sqrt(0.9e-12)], axis=1)
    factors = np.array([[0], [0], [1], [1]])
    assert np.var(codes, axis=0, ddof=1) == pytest.approx([0.8e-12, 1.2e-12])
    assert _correlation_matrix(codes, factors) == pytest.approx(np.array([[0.0], [1.0]]))


def _design() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    factors = np.stack([np.arange(60) % 2, np.arange(60) % 3], axis=1)
    return factors + rng.normal(0, 0.8, factors.shape), factors


def test_score_matrix_dispatches_on_the_solver(monkeypatch):
    """``newton`` runs the joint solver only; ``liblinear`` one LinearSVC per (dim, factor)
    with seed [i, j] of ``estimator_seeds`` (row-major) and ``n_jobs`` passed to joblib; ``sap``
    passes ``n_jobs`` on."""
    codes, factors = _design()
    calls: list[tuple] = []

    def fake_newton(*args):
        calls.append(("newton",))
        return np.zeros((2, 2))

    def fake_svc(x_tr, y_tr, x_te, y_te, seed):
        calls.append(("svc", seed))
        return 0.5

    class FakeParallel:
        def __init__(self, n_jobs):
            calls.append(("jobs", n_jobs))

        def __call__(self, jobs):
            return [fn(*args, **kwargs) for fn, args, kwargs in jobs]

    monkeypatch.setattr(sap_module, "_newton_accuracies", fake_newton)
    monkeypatch.setattr(sap_module, "_svc_accuracy", fake_svc)
    monkeypatch.setattr("joblib.Parallel", FakeParallel)  # sap imports it when it fits
    sap_score_matrix(codes, factors, codes, factors, random_state=1)
    assert calls == [("newton",)]
    calls.clear()
    scores, _ = sap_score_matrix(codes, factors, codes, factors, random_state=1, n_jobs=3,
                                 solver="liblinear")
    seeds = estimator_seeds(1, 4)
    assert calls == [("jobs", 3)] + [("svc", s) for s in seeds]
    assert scores.dtype == np.float64 and scores.tolist() == [[0.5, 0.5], [0.5, 0.5]]
    calls.clear()
    sap(codes, factors, codes, factors, random_state=1, n_jobs=2, solver="liblinear")
    assert calls[0] == ("jobs", 2)


def test_svc_accuracy_fits_the_pinned_svc_with_its_seed(monkeypatch):
    made: list[dict] = []
    from sklearn.svm import LinearSVC as real

    def spy(**kwargs):
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr("sklearn.svm.LinearSVC", spy)  # sap imports it when it fits
    x = np.array([-30.0, -10.0, 10.0, 30.0])
    y = np.array([0, 0, 1, 1])
    assert sap_module._svc_accuracy(x, y, x, y, seed=17) == 1.0
    assert made == [{"random_state": 17, **sap_module.SVC_PARAMS}]


def test_class_layout_numbers_the_classes_of_all_factors_jointly():
    factors = np.array([[5, 0], [2, 1], [5, 1], [9, 1]])
    classes, sizes, offsets, labels = _class_layout(factors)
    assert [c.tolist() for c in classes] == [[2, 5, 9], [0, 1]]
    assert sizes.tolist() == [3, 2] and offsets.tolist() == [0, 3]
    assert labels.tolist() == [[1, 0, 1, 2], [0, 1, 1, 1]]
