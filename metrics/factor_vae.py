"""FactorVAE score (Kim & Mnih 2018) on pre-grouped votes, with the pruned-dimension index fixed.

A vote is a group of ``batch`` codes whose factor ``k`` is held fixed. Its per-dim variance
(ddof 1), divided by the global per-dim variance, is minimal on the dim that encodes ``k``; the
pair (k, argmin dim) is one vote. Each dim is assigned the factor with most training votes
(ties -> lowest factor index); accuracy is the fraction of votes that agree with that assignment.

Fix of the reference's pruning bug: the reference takes the argmin over the *active* dims only
and uses that position directly as a dim index, so after one pruned dim every later dim's votes
land in the wrong column, and it reports ``num_active_dims`` = D. Here the argmin position is
mapped back to the original dim index and ``fvm_num_active_dims`` counts the active dims. The
shifted indexing is a consistent relabelling, so both accuracies are unchanged on every input;
what changes is the per-dim read-out (vote matrix, dim -> factor assignment).
``legacy_index=True`` reproduces the reference read-out, for cross-checks only.
"""

from __future__ import annotations

import numpy as np

from metrics._common import check_codes, warn_degenerate


def _check_votes(codes: np.ndarray, factor_index: np.ndarray, num_factors: int, split: str):
    codes = np.asarray(codes)
    if codes.ndim != 3 or codes.shape[0] == 0 or codes.shape[1] < 2:
        raise ValueError(
            f"FactorVAE: {split} codes must be (n_votes, batch >= 2, D), got {codes.shape}"
        )
    flat = check_codes(codes.reshape(-1, codes.shape[2]), "FactorVAE", f"{split} codes")
    factor_index = np.asarray(factor_index)
    if factor_index.shape != (codes.shape[0],) or not np.issubdtype(factor_index.dtype, np.integer):
        raise ValueError(
            f"FactorVAE: {split} factor_index must be integers of shape ({codes.shape[0]},)"
        )
    if factor_index.size and (factor_index.min() < 0 or factor_index.max() >= num_factors):
        raise ValueError(f"FactorVAE: {split} factor_index must lie in [0, {num_factors})")
    return flat.reshape(codes.shape), factor_index.astype(np.int64)


def active_dims(
    variance_codes: np.ndarray, prune_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Global per-dim variance (ddof 1) and the active mask: std >= threshold and variance > 0
    (a zero-variance dim is always inactive, it would put 0/0 into the argmin)."""
    variance_codes = check_codes(variance_codes, "FactorVAE", "variance codes")
    if variance_codes.shape[0] < 2:
        raise ValueError("FactorVAE: the variance sample needs at least 2 codes")
    variance = np.var(variance_codes, axis=0, ddof=1)
    zero = variance == 0
    if zero.any():
        warn_degenerate(
            f"FactorVAE: code dims {np.flatnonzero(zero).tolist()} are constant (always inactive)"
        )
    return variance, (np.sqrt(variance) >= prune_threshold) & ~zero


def vote_dims(
    codes: np.ndarray, variance: np.ndarray, active: np.ndarray, *, legacy_index: bool = False
) -> np.ndarray:
    """Voted dim per group: argmin over active dims of local variance / global variance,
    as an index into the full code vector (or, with ``legacy_index``, into the active dims)."""
    local = np.var(codes, axis=1, ddof=1)
    idx = np.flatnonzero(active)
    position = np.argmin(local[:, idx] / variance[idx], axis=1)
    return position if legacy_index else idx[position]


def vote_matrix(
    factor_index: np.ndarray, dims: np.ndarray, num_factors: int, num_dims: int
) -> np.ndarray:
    """(K, D) counts of (fixed factor, voted dim) pairs."""
    votes = np.zeros((num_factors, num_dims), dtype=np.int64)
    np.add.at(votes, (factor_index, dims), 1)
    return votes


def factor_vae_details(
    train_codes: np.ndarray,
    train_factor_index: np.ndarray,
    eval_codes: np.ndarray,
    eval_factor_index: np.ndarray,
    variance_codes: np.ndarray,
    num_factors: int,
    *,
    prune_threshold: float = 0.05,
    legacy_index: bool = False,
) -> dict:
    """FactorVAE score with its read-out.

    Inputs: ``train_codes`` (n_train, batch, D) and ``eval_codes`` (n_eval, batch, D) grouped
    codes, the fixed factor per group, ``variance_codes`` (M, D) for the global variance.
    Returns the score keys plus ``train_votes`` / ``eval_votes`` (K, D), ``assignment`` (D,)
    dim -> factor, ``active`` (D,) mask.
    """
    if num_factors < 1:
        raise ValueError(f"FactorVAE: num_factors must be >= 1, got {num_factors}")
    train_codes, train_factor_index = _check_votes(
        train_codes, train_factor_index, num_factors, "train"
    )
    eval_codes, eval_factor_index = _check_votes(eval_codes, eval_factor_index, num_factors, "eval")
    variance, active = active_dims(variance_codes, prune_threshold)
    d = variance.shape[0]
    if train_codes.shape[2] != d or eval_codes.shape[2] != d:
        raise ValueError(
            f"FactorVAE: code dims differ: variance {d}, train {train_codes.shape[2]}, "
            f"eval {eval_codes.shape[2]}"
        )
    if not active.any():
        return readout(
            train_factor_index, None, eval_factor_index, None, active, num_factors, prune_threshold
        )
    return readout(
        train_factor_index,
        vote_dims(train_codes, variance, active, legacy_index=legacy_index),
        eval_factor_index,
        vote_dims(eval_codes, variance, active, legacy_index=legacy_index),
        active,
        num_factors,
        prune_threshold,
    )


def readout(
    train_factor_index: np.ndarray,
    train_dims: np.ndarray | None,
    eval_factor_index: np.ndarray,
    eval_dims: np.ndarray | None,
    active: np.ndarray,
    num_factors: int,
    prune_threshold: float,
) -> dict:
    """Vote matrices, dim -> factor assignment and accuracies from the voted dims (None when no
    dim is active: accuracies 0 with a warning, as in the reference)."""
    d = active.shape[0]
    if train_dims is None or eval_dims is None or not active.any():
        warn_degenerate(
            f"FactorVAE: no active code dim (std >= {prune_threshold}); accuracies are 0"
        )
        empty = np.zeros((num_factors, d), dtype=np.int64)
        return {
            "fvm_train_accuracy": 0.0,
            "fvm_eval_accuracy": 0.0,
            "fvm_num_active_dims": 0.0,
            "train_votes": empty,
            "eval_votes": empty.copy(),
            "assignment": np.zeros(d, dtype=np.int64),
            "active": active,
        }
    train_votes = vote_matrix(train_factor_index, train_dims, num_factors, d)
    eval_votes = vote_matrix(eval_factor_index, eval_dims, num_factors, d)
    assignment = np.argmax(train_votes, axis=0)
    columns = np.arange(d)
    return {
        "fvm_train_accuracy": float(train_votes[assignment, columns].sum() / train_votes.sum()),
        "fvm_eval_accuracy": float(eval_votes[assignment, columns].sum() / eval_votes.sum()),
        "fvm_num_active_dims": float(active.sum()),
        "train_votes": train_votes,
        "eval_votes": eval_votes,
        "assignment": assignment,
        "active": active,
    }


def factor_vae_from_votes(
    train_codes: np.ndarray,
    train_factor_index: np.ndarray,
    eval_codes: np.ndarray,
    eval_factor_index: np.ndarray,
    variance_codes: np.ndarray,
    num_factors: int,
    *,
    prune_threshold: float = 0.05,
    legacy_index: bool = False,
) -> dict[str, float]:
    """FactorVAE score on pre-grouped codes. Keys ``fvm_train_accuracy``,
    ``fvm_eval_accuracy``, ``fvm_num_active_dims``."""
    details = factor_vae_details(
        train_codes,
        train_factor_index,
        eval_codes,
        eval_factor_index,
        variance_codes,
        num_factors,
        prune_threshold=prune_threshold,
        legacy_index=legacy_index,
    )
    return {
        k: details[k] for k in ("fvm_train_accuracy", "fvm_eval_accuracy", "fvm_num_active_dims")
    }
