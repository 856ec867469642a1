"""Shared machinery of the representation metrics: input checks, the 20-bin discretiser, plug-in MI.

Layout: ``codes`` are float (N, D) and ``factors`` integer factor indices (N, K). The reference
library stores both transposed (D x N, K x N); :func:`from_dlib_layout` converts at the boundary.
"""

from __future__ import annotations

import warnings

import numpy as np

SEED_HIGH = 2**31 - 1  # sklearn random_state must fit a signed 32-bit int


class DegenerateInputWarning(UserWarning):
    """A factor or code dimension carries no information and is handled by a documented rule."""


def warn_degenerate(message: str) -> None:
    warnings.warn(message, DegenerateInputWarning, stacklevel=3)


def from_dlib_layout(mus: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert reference-layout arrays (codes D x N, factors K x N) to (N, D) and (N, K)."""
    mus, ys = np.asarray(mus), np.asarray(ys)
    if mus.ndim != 2 or ys.ndim != 2 or mus.shape[1] != ys.shape[1]:
        raise ValueError(
            f"dlib layout expects codes (D, N) and factors (K, N) with the same N, "
            f"got {mus.shape} and {ys.shape}"
        )
    return mus.T, ys.T


def check_codes(codes: np.ndarray, metric: str, name: str = "codes") -> np.ndarray:
    """Return ``codes`` as float64 (N, D); reject wrong shapes and non-finite values."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise ValueError(f"{metric}: {name} must be a non-empty (N, D) array, got {codes.shape}")
    if not (np.issubdtype(codes.dtype, np.floating) or np.issubdtype(codes.dtype, np.integer)):
        raise ValueError(f"{metric}: {name} must be numeric, got dtype {codes.dtype}")
    codes = codes.astype(np.float64, copy=False)
    if not np.isfinite(codes).all():
        finite = np.isfinite(codes).all(axis=0)
        bad = np.flatnonzero(~finite).tolist()
        raise ValueError(f"{metric}: {name} contain NaN or inf in code dims {bad}")
    return codes


def check_factors(factors: np.ndarray, num: int, metric: str, name: str = "factors") -> np.ndarray:
    """Return ``factors`` as int64 (N, K) with N == ``num``; they must be integer indices."""
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] == 0:
        raise ValueError(
            f"{metric}: {name} must be an (N, K) array with K >= 1, got {factors.shape}"
        )
    if not (np.issubdtype(factors.dtype, np.integer) or factors.dtype == np.bool_):
        raise ValueError(
            f"{metric}: {name} must be integer factor indices, got dtype {factors.dtype}"
        )
    if factors.shape[0] != num:
        raise ValueError(f"{metric}: {name} have {factors.shape[0]} rows but the codes have {num}")
    return factors.astype(np.int64, copy=False)


def check_pair(
    codes: np.ndarray, factors: np.ndarray, metric: str, split: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    suffix = f"_{split}" if split else ""
    codes = check_codes(codes, metric, "codes" + suffix)
    return codes, check_factors(factors, codes.shape[0], metric, "factors" + suffix)


def check_split(
    codes_tr: np.ndarray,
    factors_tr: np.ndarray,
    codes_te: np.ndarray,
    factors_te: np.ndarray,
    metric: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a train/test pair of (codes, factors) with matching D and K."""
    codes_tr, factors_tr = check_pair(codes_tr, factors_tr, metric, "tr")
    codes_te, factors_te = check_pair(codes_te, factors_te, metric, "te")
    if codes_te.shape[1] != codes_tr.shape[1]:
        raise ValueError(
            f"{metric}: train codes have D={codes_tr.shape[1]}, test codes D={codes_te.shape[1]}"
        )
    if factors_te.shape[1] != factors_tr.shape[1]:
        raise ValueError(
            f"{metric}: train factors have K={factors_tr.shape[1]}, "
            f"test factors K={factors_te.shape[1]}"
        )
    return codes_tr, factors_tr, codes_te, factors_te


def informative_factors(factors: np.ndarray, metric: str) -> np.ndarray:
    """Indices of the factors that take more than one value; warn about the others.

    A single-valued factor has zero entropy (and a single class for a classifier), so every metric
    excludes it from its average. Raises if no factor remains.
    """
    varying = (np.ascontiguousarray(factors.T) != factors[0][:, None]).any(axis=1)
    keep = np.flatnonzero(varying)
    if keep.size < factors.shape[1]:
        skipped = np.flatnonzero(~varying).tolist()
        if keep.size == 0:
            raise ValueError(f"{metric}: every factor is constant; nothing to score")
        warn_degenerate(
            f"{metric}: factors {skipped} take a single value and are excluded from the score"
        )
    return keep


def constant_dims(codes: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.ptp(np.ascontiguousarray(codes.T), axis=1) == 0)  # rows: fast


def warn_constant_dims(codes: np.ndarray, metric: str, rule: str) -> np.ndarray:
    """Warn once if some code dims are constant; return their indices."""
    const = constant_dims(codes)
    if const.size:
        warn_degenerate(f"{metric}: code dims {const.tolist()} are constant ({rule})")
    return const


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Bin each code dim into ``num_bins`` equal-width bins over its own min..max.

    Same edges as ``np.histogram`` (a constant dim gets the range value +- 0.5), labels from
    ``np.digitize`` against the left edges, i.e. 1..num_bins. Returns int64 (N, D).

    Float64 codes are binned for all dims at once: the edges are ``np.linspace``'s arithmetic on
    every dim's range, each label is first estimated from the bin width and then moved until it
    is the number of left edges <= the value (``np.digitize``'s definition), so the labels are
    exactly the per-dim ``np.digitize`` ones. Other dtypes, and ranges too narrow for
    ``num_bins`` distinct edges, take the per-dim ``np.histogram_bin_edges`` path (which raises
    on the latter, as ``np.histogram`` does).
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    codes = np.asarray(codes)
    if codes.dtype == np.float64 and codes.ndim == 2 and codes.size:
        labels = _discretize_float64(np.ascontiguousarray(codes.T), num_bins)
        if labels is not None:
            return labels.T
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], bins=num_bins)
        out[:, d] = np.digitize(codes[:, d], edges[:-1])
    return out


def _discretize_float64(rows: np.ndarray, num_bins: int) -> np.ndarray | None:
    """Labels (D, N) of float64 code dims laid out as rows; None where the per-dim path must run
    (non-finite values, a bin width that underflows, or edges that are not strictly increasing)."""
    first, last = rows.min(axis=1), rows.max(axis=1)
    if not (np.isfinite(first).all() and np.isfinite(last).all()):
        return None
    same = first == last
    first = np.where(same, first - 0.5, first)
    last = np.where(same, last + 0.5, last)
    # np.linspace(first, last, num_bins + 1): arange * (delta / div) + start, last edge = stop
    step = np.subtract(last, first) / num_bins
    if (step == 0).any():
        return None
    edges = np.arange(0, num_bins + 1, dtype=np.float64)[None, :] * step[:, None]
    edges += first[:, None]
    edges[:, -1] = last
    if (edges[:, :-1] >= edges[:, 1:]).any():
        return None
    # np.digitize against the left edges = the number of left edges <= x. Left edge i is
    # i * step + first, the arithmetic above; estimate i from the bin width, then correct it.
    step, first = step[:, None], first[:, None]
    index = np.floor((rows - first) / step)
    np.clip(index, 0, num_bins - 1, out=index)
    while True:  # move down while the bin's left edge lies above x
        low = index * step + first > rows
        if not low.any():
            break
        index -= low
    while True:  # move up while the next left edge is <= x
        up = (index < num_bins - 1) & ((index + 1) * step + first <= rows)
        if not up.any():
            break
        index += up
    return index.astype(np.int64) + 1


def _offset_labels(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0.. of each row's values (one variable per row), in the order of the values, and
    each row's label count.

    Integer rows with values in [0, N) are kept; an integer row whose range is shorter than
    the row is shifted by its minimum (labels of absent values are harmless: they add no count);
    any other row gets the rank of each value among its distinct values (``np.unique``)."""
    fits_int64 = np.issubdtype(rows.dtype, np.integer) and rows.dtype != np.uint64
    if rows.dtype == np.bool_ or fits_int64:
        rows = rows.astype(np.int64, copy=False)
    out = np.empty(rows.shape, dtype=np.int64)
    width = np.empty(rows.shape[0], dtype=np.int64)
    shift = np.zeros(rows.shape[0], dtype=bool)
    if rows.dtype == np.int64 and rows.shape[1]:
        low, high = rows.min(axis=1), rows.max(axis=1)
        if low.min() >= 0 and high.max() < rows.shape[1]:  # already small labels: keep them
            return rows, high + 1
        shift = high.astype(np.float64) - low.astype(np.float64) < rows.shape[1]
        if shift.all():
            return rows - low[:, None], high - low + 1
        if shift.any():
            out[shift] = rows[shift] - low[shift, None]
            width[shift] = high[shift] - low[shift] + 1
    for r in np.flatnonzero(~shift):
        values, inverse = np.unique(rows[r], return_inverse=True)
        out[r] = inverse.reshape(-1)
        width[r] = len(values)
    return out, width


MAX_TABLE_CELLS = 1 << 22  # joint-count cells held at once (32 MiB of float64)


def mutual_info_matrix(binned: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """MI (nats) between every binned code dim and every factor: (D, K).

    Equals ``sklearn.metrics.mutual_info_score(factors[:, j], binned[:, i])`` entry by entry. The
    K contingency tables of a code dim come from one ``bincount``; the nonzero cells of all
    tables (of a chunk of dims when they would be large) are then taken table by table in
    row-major order, their plug-in terms computed at once and summed table by table, so each
    entry has the order and arithmetic of a per-table computation.
    """
    binned = np.asarray(binned)
    factors = np.asarray(factors)
    n, k = factors.shape
    d = binned.shape[1]
    mi = np.zeros((d, k))
    if n == 0 or d == 0 or k == 0:
        return mi
    bins, nbs = _offset_labels(np.ascontiguousarray(binned.T))  # (D, N)
    labels, sizes = _offset_labels(np.ascontiguousarray(factors.T))  # (K, N)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    total = int(sizes.sum())
    nb = int(nbs.max())
    per_dim = nb * total
    # counted layout of one dim: (bin, all factors' values side by side); read layout: table j
    # of shape (nb, sizes[j]) after table j - 1, so each table's cells are contiguous
    read = np.concatenate(
        [(np.arange(nb)[:, None] * total + o + np.arange(s)[None, :]).ravel()
         for o, s in zip(offsets, sizes, strict=True)]
    )
    table_of = np.repeat(np.arange(k), nb * sizes)  # factor of each read cell
    row_of = np.concatenate([np.repeat(np.arange(nb), s) for s in sizes])  # bin of each read cell
    col_counts = [np.bincount(labels[j], minlength=sizes[j]).astype(np.float64) for j in range(k)]
    col_of = np.concatenate([np.tile(c, nb) for c in col_counts])  # factor-value count per cell
    used_cols = [int((c > 0).sum()) for c in col_counts]
    flat_labels = labels + offsets[:, None]  # (K, N)
    keys = np.empty_like(flat_labels)
    log_n = np.log(n)
    chunk = max(1, MAX_TABLE_CELLS // per_dim)
    for start in range(0, d, chunk):
        stop = min(start + chunk, d)
        joint = np.empty((stop - start, per_dim), dtype=np.int64)
        for i in range(start, stop):  # one bincount per dim, over (bin, factor value) keys
            np.add(flat_labels, (bins[i] * total)[None, :], out=keys)
            joint[i - start] = np.bincount(keys.ravel(), minlength=per_dim)
        joint = joint[:, read].astype(np.float64)
        row_counts = joint[:, : nb * sizes[0]].reshape(stop - start, nb, sizes[0]).sum(axis=2)
        dim_of, cell = np.nonzero(joint)
        counts = joint[dim_of, cell]
        rows_at = row_counts[dim_of, row_of[cell]]
        terms = (counts / n) * (np.log(counts) + log_n - np.log(rows_at) - np.log(col_of[cell]))
        table = dim_of * k + table_of[cell]
        bounds = np.flatnonzero(np.diff(table)) + 1
        used_rows = (row_counts > 0).sum(axis=1).tolist()
        firsts = np.r_[0, bounds].tolist()
        lasts = np.r_[bounds, terms.size].tolist()
        for t, first, last in zip(table[firsts].tolist(), firsts, lasts, strict=True):
            i, j = divmod(t, k)
            if used_rows[i] <= 1 or used_cols[j] <= 1:  # a constant variable: MI 0
                continue
            mi[start + i, j] = max(float(terms[first:last].sum()), 0.0)
    return mi


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Plug-in entropy (nats) of every factor column: (K,)."""
    factors = np.asarray(factors)
    labels, sizes = _offset_labels(np.ascontiguousarray(factors.T))
    out = np.empty(factors.shape[1])
    for j in range(factors.shape[1]):
        counts = np.bincount(labels[j], minlength=sizes[j])
        counts = counts[counts > 0].astype(np.float64)
        p = counts / counts.sum()
        out[j] = float(-(p * np.log(p)).sum())
    return out


def as_generator(random_state: np.random.Generator | int) -> np.random.Generator:
    """Accept a Generator (used as is) or an integer seed; never the global NumPy state."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    raise ValueError(
        f"random_state must be a np.random.Generator or an int seed, "
        f"got {type(random_state).__name__}"
    )


def estimator_seeds(random_state: np.random.Generator | int, num: int) -> list[int]:
    """``num`` integer ``random_state`` values for sklearn estimators, drawn from the Generator."""
    rng = as_generator(random_state)
    return [int(s) for s in rng.integers(0, SEED_HIGH, size=num)]
