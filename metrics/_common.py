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
    finite = np.isfinite(codes).all(axis=0)
    if not finite.all():
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
    varying = (factors != factors[:1]).any(axis=0)
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
    return np.flatnonzero(np.ptp(codes, axis=0) == 0)


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
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], bins=num_bins)
        out[:, d] = np.digitize(codes[:, d], edges[:-1])
    return out


def _compact_labels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    values, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(-1), len(values)


def _mi_from_counts(counts: np.ndarray, n: int) -> float:
    """Plug-in mutual information (nats) of a contingency table with total ``n``."""
    rows = counts.sum(axis=1)
    cols = counts.sum(axis=0)
    if (rows > 0).sum() <= 1 or (cols > 0).sum() <= 1:
        return 0.0
    i, j = np.nonzero(counts)
    c = counts[i, j]
    terms = (c / n) * (np.log(c) + np.log(n) - np.log(rows[i]) - np.log(cols[j]))
    return float(max(terms.sum(), 0.0))


def mutual_info_matrix(binned: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """MI (nats) between every binned code dim and every factor: (D, K).

    Equals ``sklearn.metrics.mutual_info_score(factors[:, j], binned[:, i])`` entry by entry; the
    joint counts of one code dim with all K factors come from a single ``bincount``.
    """
    n, k = factors.shape
    compact = [_compact_labels(factors[:, j]) for j in range(k)]
    sizes = np.array([s for _, s in compact])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    total = int(sizes.sum())
    flat_factors = np.stack([lab for lab, _ in compact], axis=1) + offsets  # (N, K)
    mi = np.zeros((binned.shape[1], k))
    for d in range(binned.shape[1]):
        bins, nb = _compact_labels(binned[:, d])
        joint = np.bincount((bins[:, None] * total + flat_factors).ravel(), minlength=nb * total)
        joint = joint.reshape(nb, total).astype(np.float64)
        for j in range(k):
            mi[d, j] = _mi_from_counts(joint[:, offsets[j] : offsets[j] + sizes[j]], n)
    return mi


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Plug-in entropy (nats) of every factor column: (K,)."""
    out = np.empty(factors.shape[1])
    for j in range(factors.shape[1]):
        counts = np.unique(factors[:, j], return_counts=True)[1].astype(np.float64)
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
