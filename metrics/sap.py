"""Separated Attribute Predictability (Kumar et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metrics._common import (
    check_split,
    estimator_seeds,
    informative_factors,
    warn_constant_dims,
    warn_degenerate,
)
from metrics.bank import SampleBank
from metrics.registry import ScoreKey, register_metric

SVC_PARAMS = {
    "C": 0.01,
    "class_weight": "balanced",
    "dual": True,  # the solver the reference study ran with (sklearn's default changed in 1.5)
    "penalty": "l2",
    "loss": "squared_hinge",
    "tol": 1e-4,
    "max_iter": 1000,
    "fit_intercept": True,
    "intercept_scaling": 1.0,
}
SOLVERS = ("newton", "liblinear")
NEWTON_MAX_ITER = 100
NEWTON_STEP_TOL = 1e-10  # relative Newton step below which a problem counts as solved


def _svc_accuracy(
    x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, seed: int
) -> float:
    from sklearn.svm import LinearSVC  # here: planning a cell needs no sklearn

    clf = LinearSVC(random_state=seed, **SVC_PARAMS).fit(x_tr[:, None], y_tr)
    return float(np.mean(clf.predict(x_te[:, None]) == y_te))


def _prefix_sums(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise prefix sums of the values and of their squares, with a leading 0 column."""
    sum1 = np.zeros((rows.shape[0], rows.shape[1] + 1))
    sum2 = np.zeros_like(sum1)
    np.cumsum(rows, axis=1, out=sum1[:, 1:])
    np.cumsum(rows * rows, axis=1, out=sum2[:, 1:])
    return sum1, sum2


def _key_dtype(last_segment: int, bits: int) -> type:
    """int32 if every key ``segment << bits | rank`` with segment <= ``last_segment`` and
    rank < 2**bits fits in it, else int64 (the keys are sorted and searched: half the bytes)."""
    largest = ((last_segment + 1) << bits) - 1
    return np.int32 if largest <= np.iinfo(np.int32).max else np.int64


class _SortedCodes:
    """Prefix sums (count, sum x, sum x^2) of one-feature training sets, by rank threshold.

    Each code dim is sorted once. ``all_prefix(dims, q)`` sums over the ``q`` smallest values of
    a dim; ``class_prefix(dims, factors, classes, q)`` sums over the members of one class among
    them. Every (dim, factor, class) triple is a segment; one sorted array of keys
    ``segment << bits | rank`` lists the members of every segment in rank order, so one
    ``searchsorted`` answers every query, and each (dim, factor) block of it holds all N samples.
    """

    def __init__(self, codes: np.ndarray, labels: np.ndarray, offsets: np.ndarray, total: int):
        n, d = codes.shape
        k = labels.shape[0]
        self.n, self.k, self.total = n, k, total
        self.bits = max(1, int(n).bit_length())  # ranks 0..n fit in ``bits`` bits
        rows = np.ascontiguousarray(codes.T)
        order = np.argsort(rows, axis=1)  # (D, N); the order within ties does not matter
        self.values = np.take_along_axis(rows, order, axis=1)  # sorted, (D, N)
        self.sum1, self.sum2 = _prefix_sums(self.values)
        rank = np.empty((d, n), dtype=np.int64)
        np.put_along_axis(rank, order, np.arange(n)[None, :], axis=1)  # rank of each sample
        dtype = _key_dtype(d * total, self.bits)  # segment d * total: the end marker
        segment = ((labels + offsets[:, None]) << self.bits).astype(dtype)  # (K, N)
        key = np.empty((d * k, n), dtype=dtype)
        for i in range(d):
            np.add(segment + ((i * total) << self.bits), rank[i], out=key[i * k : (i + 1) * k])
        # the (dim, factor) blocks hold disjoint increasing key ranges: sort each on its own
        self.search = np.sort(key, axis=1).reshape(-1)  # increasing
        self.starts = np.searchsorted(
            self.search, (np.arange(d * total + 1) << self.bits).astype(dtype)
        )
        ranks = (self.search & ((1 << self.bits) - 1)).reshape(d, k * n)
        vals = np.take_along_axis(self.values, ranks, axis=1).reshape(d * k, n)
        self.block1, self.block2 = _prefix_sums(vals)

    def ranks(self, dims: np.ndarray, thresholds: np.ndarray, below: np.ndarray) -> np.ndarray:
        """Per query (``dims`` sorted), the number of values of its dim < threshold where
        ``below``, else the number <= threshold."""
        out = np.empty(dims.shape, dtype=np.int64)
        bounds = np.searchsorted(dims, np.arange(self.values.shape[0] + 1))
        for d in np.flatnonzero(np.diff(bounds)):
            at = slice(bounds[d], bounds[d + 1])
            left = np.searchsorted(self.values[d], thresholds[at], side="left")
            right = np.searchsorted(self.values[d], thresholds[at], side="right")
            out[at] = np.where(below[at], left, right)
        return out

    def all_prefix(self, dims: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, ...]:
        return q.astype(np.float64), self.sum1[dims, q], self.sum2[dims, q]

    def class_prefix(
        self, dims: np.ndarray, factors: np.ndarray, classes: np.ndarray, q: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """``classes`` are offset by factor (the ``offsets`` of the constructor)."""
        segment = dims * self.total + classes
        pos = np.searchsorted(self.search, ((segment << self.bits) + q).astype(self.search.dtype))
        start = self.starts[segment]
        row = dims * self.k + factors
        local = row * self.n
        count = (pos - start).astype(np.float64)
        return (
            count,
            self.block1[row, pos - local] - self.block1[row, start - local],
            self.block2[row, pos - local] - self.block2[row, start - local],
        )


def _active_sums(
    data: _SortedCodes,
    dims: np.ndarray,
    factors: np.ndarray,
    classes: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    scale: float,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Sums (count, sum x, sum x^2) over the positives with margin < 1 and over the negatives
    with margin < 1, and the shifted targets u = 1 - scale * b, v = -1 - scale * b.

    Positives (class ``classes``) have loss (u - w x)^2 where w x < u; negatives (every other
    sample) (w x - v)^2 where w x > v. For w > 0 these are the values below u / w and above
    v / w; for w < 0 the other way round; for w = 0 all or none.
    """
    u, v = 1.0 - scale * b, -1.0 - scale * b
    n = data.n
    positive = w > 0
    zero = w == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_pos, t_neg = u / w, v / w
    # the active set of each side is a prefix ("below") or a suffix of the sorted values
    pos_below, neg_below = positive, ~positive
    q_pos = data.ranks(dims, np.where(zero, 0.0, t_pos), pos_below)
    q_neg = data.ranks(dims, np.where(zero, 0.0, t_neg), neg_below)
    # w = 0: the positives are all active if u > 0 and the negatives if v < 0 (as a suffix)
    q_pos = np.where(zero, np.where(u > 0, 0, n), q_pos)
    q_neg = np.where(zero, np.where(v < 0, 0, n), q_neg)
    pos_below = pos_below & ~zero
    neg_below = neg_below & ~zero

    def pick(below: np.ndarray, prefix: tuple, total: tuple) -> tuple[np.ndarray, ...]:
        return tuple(np.where(below, p, t - p) for p, t in zip(prefix, total, strict=True))

    full = np.full(dims.shape, n)
    cls_total = data.class_prefix(dims, factors, classes, full)
    all_total = data.all_prefix(dims, full)
    pos = pick(pos_below, data.class_prefix(dims, factors, classes, q_pos), cls_total)
    cls_q = data.class_prefix(dims, factors, classes, q_neg)
    all_q = data.all_prefix(dims, q_neg)
    neg_prefix = tuple(a - c for a, c in zip(all_q, cls_q, strict=True))
    neg_total = tuple(a - c for a, c in zip(all_total, cls_total, strict=True))
    neg = pick(neg_below, neg_prefix, neg_total)
    return pos, neg, u, v


def _objective(
    w: np.ndarray,
    b: np.ndarray,
    pos: tuple[np.ndarray, ...],
    neg: tuple[np.ndarray, ...],
    u: np.ndarray,
    v: np.ndarray,
    c_pos: np.ndarray,
    c_neg: np.ndarray,
) -> np.ndarray:
    """The primal objective from the active-set sums of :func:`_active_sums`."""
    n_p, s1_p, s2_p = pos
    n_n, s1_n, s2_n = neg
    loss_p = n_p * u * u - 2.0 * u * w * s1_p + w * w * s2_p
    loss_n = n_n * v * v - 2.0 * v * w * s1_n + w * w * s2_n
    return 0.5 * (w * w + b * b) + c_pos * loss_p + c_neg * loss_n


def _newton_ovr(
    data: _SortedCodes,
    dims: np.ndarray,
    factors: np.ndarray,
    classes: np.ndarray,
    c_pos: np.ndarray,
    c_neg: np.ndarray,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Weight and raw bias of many one-feature problems, each the exact minimiser of
    liblinear's primal objective 0.5 (w^2 + b^2) + sum_i C_i max(0, 1 - y_i (w x_i + scale b))^2
    (positives: class ``classes``, C = ``c_pos``; negatives: the rest, C = ``c_neg``).

    Generalised Newton steps on all problems at once with backtracking (Armijo) line search; the
    objective is piecewise quadratic and strictly convex, so the iteration ends on the exact
    minimiser (up to rounding).
    """
    m = dims.shape[0]
    w, b = np.zeros(m), np.zeros(m)
    todo = np.arange(m)
    for _ in range(NEWTON_MAX_ITER):
        if todo.size == 0:
            break
        args = (dims[todo], factors[todo], classes[todo])
        cp, cn = c_pos[todo], c_neg[todo]
        wt, bt = w[todo], b[todo]
        pos, neg, u, v = _active_sums(data, *args, wt, bt, scale)
        (n_p, s1_p, s2_p), (n_n, s1_n, s2_n) = pos, neg
        g_w = wt - 2.0 * cp * (u * s1_p - wt * s2_p) + 2.0 * cn * (wt * s2_n - v * s1_n)
        g_b = bt - 2.0 * scale * (cp * (n_p * u - wt * s1_p) - cn * (wt * s1_n - v * n_n))
        h_ww = 1.0 + 2.0 * (cp * s2_p + cn * s2_n)
        h_wb = 2.0 * scale * (cp * s1_p + cn * s1_n)
        h_bb = 1.0 + 2.0 * scale * scale * (cp * n_p + cn * n_n)
        det = h_ww * h_bb - h_wb * h_wb
        d_w = -(h_bb * g_w - h_wb * g_b) / det
        d_b = -(h_ww * g_b - h_wb * g_w) / det
        f0 = _objective(wt, bt, pos, neg, u, v, cp, cn)
        slope = g_w * d_w + g_b * d_b  # < 0
        step = np.ones(todo.size)
        pending = np.arange(todo.size)
        for _ in range(60):  # backtracking: halve the steps that do not decrease enough
            w_new = wt[pending] + step[pending] * d_w[pending]
            b_new = bt[pending] + step[pending] * d_b[pending]
            sub = tuple(a[pending] for a in args)
            pos_n, neg_n, u_n, v_n = _active_sums(data, *sub, w_new, b_new, scale)
            f_new = _objective(w_new, b_new, pos_n, neg_n, u_n, v_n, cp[pending], cn[pending])
            f_old = f0[pending]
            ok = f_new <= f_old + 1e-4 * step[pending] * slope[pending] + 1e-12 * np.abs(f_old)
            pending = pending[~ok]
            if pending.size == 0:
                break
            step[pending] *= 0.5
        w[todo] = wt + step * d_w
        b[todo] = bt + step * d_b
        size = np.maximum(np.abs(wt), np.abs(bt))
        todo = todo[np.maximum(np.abs(d_w), np.abs(d_b)) > NEWTON_STEP_TOL * (1.0 + size)]
    if todo.size:
        warn_degenerate(
            f"SAP: the Newton solver stopped after {NEWTON_MAX_ITER} iterations on "
            f"{todo.size} problems"
        )
    return w, b


def _class_layout(
    factors: np.ndarray,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Each factor's sorted classes, their counts, the offset of its first class in the joint
    class numbering, and the (K, N) label of every sample within its factor."""
    classes = [np.unique(factors[:, j]) for j in range(factors.shape[1])]
    sizes = np.array([len(c) for c in classes])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    labels = np.stack([np.searchsorted(c, factors[:, j]) for j, c in enumerate(classes)])
    return classes, sizes, offsets, labels


def _newton_accuracies(
    codes_tr: np.ndarray, factors_tr: np.ndarray, codes_te: np.ndarray, factors_te: np.ndarray
) -> np.ndarray:
    """(D, K) test accuracies of one-feature LinearSVC(**SVC_PARAMS) fits, solved jointly.

    Same problems as liblinear's one-vs-rest: classes sorted; balanced class weights
    n / (n_classes * count); a binary factor is one problem (positives: the second class,
    C = C * weight_1, negatives C * weight_0), a factor with more classes one problem per class
    (positives C * weight_c, negatives the plain C). Predictions as sklearn's: the second class
    where the decision value is > 0 (binary), else the first class with the largest value.
    """
    c_reg, scale = float(SVC_PARAMS["C"]), float(SVC_PARAMS["intercept_scaling"])
    n, d = codes_tr.shape
    k = factors_tr.shape[1]
    classes, sizes, offsets, labels = _class_layout(factors_tr)
    data = _SortedCodes(codes_tr, labels, offsets, int(sizes.sum()))
    p_factor, p_class, p_cpos, p_cneg = [], [], [], []
    for j in range(k):
        weight = n / (sizes[j] * np.bincount(labels[j], minlength=sizes[j]).astype(np.float64))
        if sizes[j] == 2:
            p_factor.append([j])
            p_class.append([offsets[j] + 1])
            p_cpos.append([c_reg * weight[1]])
            p_cneg.append([c_reg * weight[0]])
        else:
            p_factor.append(np.full(sizes[j], j))
            p_class.append(offsets[j] + np.arange(sizes[j]))
            p_cpos.append(c_reg * weight)
            p_cneg.append(np.full(sizes[j], c_reg))
    p = sum(len(f) for f in p_factor)

    def per_dim(parts: list, dtype: type) -> np.ndarray:  # the problems of every dim, dim-major
        return np.tile(np.concatenate(parts).astype(dtype), d)

    w, b = _newton_ovr(
        data,
        np.repeat(np.arange(d), p),
        per_dim(p_factor, np.int64),
        per_dim(p_class, np.int64),
        per_dim(p_cpos, np.float64),
        per_dim(p_cneg, np.float64),
        scale,
    )
    w, intercept = w.reshape(d, p), scale * b.reshape(d, p)
    x_te = np.ascontiguousarray(codes_te.T)  # (D, N_test)
    accuracy = np.empty((d, k))
    first = 0
    for j in range(k):
        cols = slice(first, first + len(p_factor[j]))
        first += len(p_factor[j])
        # sklearn's decision values x * w + intercept: (D, problems, N_test)
        decision = w[:, cols, None] * x_te[:, None, :] + intercept[:, cols, None]
        if sizes[j] == 2:
            index = (decision[:, 0] > 0).astype(np.int64)
        else:  # the first class with the largest value
            index = np.argmax(decision == decision.max(axis=1, keepdims=True), axis=1)
        accuracy[:, j] = np.mean(classes[j][index] == factors_te[None, :, j], axis=1)
    return accuracy


def _correlation_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation (D, K); 0 where the code variance is <= 1e-12.

    The sample covariances (ddof 1) of every (code dim, factor) pair at once, with ``np.cov``'s
    centring and scaling."""
    x = np.ascontiguousarray(codes.T)
    y = np.ascontiguousarray(factors.T, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    inv = np.true_divide(1, codes.shape[0] - 1)
    cov = (x @ y.T) * inv
    var_x = np.einsum("ij,ij->i", x, x) * inv
    var_y = np.einsum("ij,ij->i", y, y) * inv
    scores = np.zeros(cov.shape)
    ok = var_x > 1e-12
    scores[ok] = cov[ok] ** 2 / (var_x[ok, None] * var_y[None, :])
    return scores


def sap_score_matrix(
    codes_tr: np.ndarray,
    factors_tr: np.ndarray,
    codes_te: np.ndarray,
    factors_te: np.ndarray,
    *,
    continuous_factors: bool = False,
    random_state: np.random.Generator | int,
    n_jobs: int | None = None,
    solver: str = "newton",
) -> tuple[np.ndarray, np.ndarray]:
    """SAP score matrix (D, K') and the kept factor indices (single-valued factors excluded).

    Discrete: S[i, j] = test accuracy of a one-feature LinearSVC(C=0.01, balanced, dual=True)
    on code dim i predicting factor j. ``solver="liblinear"`` fits the D*K' LinearSVCs (in
    ``n_jobs`` processes); ``solver="newton"`` solves the same primal problems exactly, all at
    once (:func:`_newton_accuracies`): liblinear stops at its dual tolerance, so an accuracy can
    differ where a test code lies at a decision threshold. Continuous: squared correlation on
    the train set. The D*K' seeds are drawn row-major from ``random_state`` before any fit
    (whatever the solver), so neither ``n_jobs`` nor ``solver`` changes the generator's state.
    """
    if solver not in SOLVERS:
        raise ValueError(f"SAP: solver must be one of {SOLVERS}, got {solver!r}")
    codes_tr, factors_tr, codes_te, factors_te = check_split(
        codes_tr, factors_tr, codes_te, factors_te, "SAP"
    )
    keep = informative_factors(factors_tr, "SAP")
    warn_constant_dims(codes_tr, "SAP", "they cannot separate classes and score at chance level")
    factors_tr, factors_te = factors_tr[:, keep], factors_te[:, keep]
    d, k = codes_tr.shape[1], factors_tr.shape[1]
    if continuous_factors:
        return _correlation_matrix(codes_tr, factors_tr), keep
    seeds = np.array(estimator_seeds(random_state, d * k)).reshape(d, k)
    if solver == "newton":
        return _newton_accuracies(codes_tr, factors_tr, codes_te, factors_te), keep
    from joblib import Parallel, delayed  # here: planning a cell needs no joblib

    jobs = (
        delayed(_svc_accuracy)(
            codes_tr[:, i], factors_tr[:, j], codes_te[:, i], factors_te[:, j], int(seeds[i, j])
        )
        for i in range(d)
        for j in range(k)
    )
    values = Parallel(n_jobs=n_jobs)(jobs)
    return np.asarray(values, dtype=np.float64).reshape(d, k), keep


def sap(
    codes_tr: np.ndarray,
    factors_tr: np.ndarray,
    codes_te: np.ndarray,
    factors_te: np.ndarray,
    *,
    continuous_factors: bool = False,
    random_state: np.random.Generator | int,
    n_jobs: int | None = None,
    solver: str = "newton",
) -> dict[str, float]:
    """SAP: mean over factors of (largest - second largest) score-matrix entry. Key ``sap``.

    With a single code dim the second-largest entry does not exist and ValueError is raised.
    ``solver``: see :func:`sap_score_matrix` (``"liblinear"`` is the reference path).
    Note: on ordinal factors even a perfect code scores well below 1 (a one-feature linear
    one-vs-rest classifier cannot isolate middle classes).
    """
    if np.asarray(codes_tr).ndim == 2 and np.asarray(codes_tr).shape[1] < 2:
        raise ValueError(f"SAP: needs at least 2 code dims (D >= 2), got D={codes_tr.shape[1]}")
    scores, _ = sap_score_matrix(
        codes_tr,
        factors_tr,
        codes_te,
        factors_te,
        continuous_factors=continuous_factors,
        random_state=random_state,
        n_jobs=n_jobs,
        solver=solver,
    )
    top_two = -np.sort(-scores, axis=0)[:2]
    return {"sap": float(np.mean(top_two[0] - top_two[1]))}


@dataclass(frozen=True)
class SAPSettings:
    """The reference: factors treated as discrete (classification with a LinearSVC), solved
    jointly by the exact Newton solver (``solver="liblinear"``: one LinearSVC fit per pair)."""

    continuous_factors: bool = False
    solver: str = "newton"

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"SAP: solver must be one of {SOLVERS}, got {self.solver!r}")


@register_metric(
    "sap", description="Separated Attribute Predictability (Kumar et al. 2018)",
    settings=SAPSettings,
    keys=(ScoreKey("sap", "Separated Attribute Predictability (Kumar et al. 2018), "
                   "LinearSVC C=0.01"),),
)
def score_sap(bank: SampleBank, settings: SAPSettings, rng: np.random.Generator
              ) -> dict[str, float]:
    return sap(*bank.split, continuous_factors=settings.continuous_factors, random_state=rng,
               solver=settings.solver)
