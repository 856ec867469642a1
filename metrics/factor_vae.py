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

from dataclasses import asdict, dataclass

import numpy as np

from datasets.base import GroundTruthData
from metrics._common import check_codes, warn_degenerate
from metrics.bank import (
    CHUNK_SIZE,
    CodeMemo,
    Represent,
    SampleBank,
    check_data,
    chunks,
    encode,
    sample_codes,
    varying_factors,
)
from metrics.registry import ScoreKey, register_metric


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


# -- sampled from ground truth ---------------------------------------------------------------


def _fixed_factor_groups(
    data: GroundTruthData, rng: np.random.Generator, num: int, batch: int, varying: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``num`` groups of ``batch`` factor rows sharing the value of one random factor in all rows
    (the value of the group's first row): (factors (num, batch, K), fixed factor (num,))."""
    k = len(data.factor_sizes)
    fixed = varying[rng.integers(0, varying.size, size=num)]
    factors = np.asarray(data.sample_factors(num * batch, rng), dtype=np.int64)
    factors = factors.reshape(num, batch, k)
    votes = np.arange(num)
    factors[votes, :, fixed] = factors[votes, 0, fixed][:, None]
    return factors, fixed


def factor_vae_score(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_threshold: float = 0.05,
    chunk_size: int = CHUNK_SIZE,
    memo: CodeMemo | None = None,
) -> dict[str, float]:
    """FactorVAE score sampled from ground truth. Keys ``fvm_train_accuracy``,
    ``fvm_eval_accuracy``, ``fvm_num_active_dims``.

    Pruned-dimension bug of the reference fixed: the argmin over active dims is mapped back to the
    original dim index and ``fvm_num_active_dims`` counts the active dims (see
    :mod:`metrics.factor_vae`); the accuracies equal the reference's on the same votes.
    Zero-variance dims are always inactive. Votes are processed chunk by chunk (only the voted
    dim of each group is kept), so memory does not grow with ``num_train * batch_size * D``.
    ``memo`` (a bank's :class:`metrics.bank.CodeMemo`) reuses codes of rows already encoded.
    """
    sizes = check_data(data)
    if batch_size < 2 or num_train < 1 or num_eval < 1 or num_variance_estimate < 2:
        raise ValueError(
            "FactorVAE: need batch_size >= 2, num_train/num_eval >= 1, num_variance_estimate >= 2"
        )
    varying = varying_factors(sizes, "FactorVAE")
    variance_codes, _ = sample_codes(
        data, represent, num_variance_estimate, rng, chunk_size=chunk_size, memo=memo
    )
    variance, active = active_dims(variance_codes, prune_threshold)
    train = _fixed_factor_groups(data, rng, num_train, batch_size, varying)
    evals = _fixed_factor_groups(data, rng, num_eval, batch_size, varying)
    if not active.any():
        return _fvm_keys(
            readout(train[1], None, evals[1], None, active, len(sizes), prune_threshold)
        )
    dims = []
    for factors, _ in (train, evals):
        groups_per_chunk = max(1, chunk_size // batch_size)
        voted = []
        for rows in chunks(factors.shape[0], groups_per_chunk):
            block = factors[rows]
            codes = encode(data, represent, block.reshape(-1, len(sizes)), chunk_size=chunk_size,
                           memo=memo)
            voted.append(vote_dims(codes.reshape(block.shape[0], batch_size, -1), variance, active))
        dims.append(np.concatenate(voted))
    return _fvm_keys(
        readout(train[1], dims[0], evals[1], dims[1], active, len(sizes), prune_threshold)
    )


def _fvm_keys(details: dict) -> dict[str, float]:
    return {
        k: float(details[k])
        for k in ("fvm_train_accuracy", "fvm_eval_accuracy", "fvm_num_active_dims")
    }


@dataclass(frozen=True)
class FVMSettings:
    """The reference study's vote counts and batch size; dims with std < 0.05 are pruned."""

    batch_size: int = 64
    num_train: int = 10000
    num_eval: int = 5000
    num_variance_estimate: int = 10000
    prune_threshold: float = 0.05


@register_metric(
    "fvm", description="FactorVAE score (Kim & Mnih 2018), pruned-index bug fixed",
    settings=FVMSettings,
    profiles={"quick": {"num_train": 500, "num_eval": 300, "num_variance_estimate": 5000}},
    keys=(
        ScoreKey("fvm_train_accuracy", "FactorVAE score: majority-vote train accuracy"),
        ScoreKey("fvm_eval_accuracy", "FactorVAE score: majority-vote eval accuracy",
                 headline=True),
        ScoreKey("fvm_num_active_dims",
                 "FactorVAE: code dims with std >= prune threshold (information)",
                 high=float("inf"), tolerance=float("inf")),
    ),
)
def score_fvm(bank: SampleBank, settings: FVMSettings, rng: np.random.Generator
              ) -> dict[str, float]:
    return factor_vae_score(bank.data, bank.represent, rng, **asdict(settings),
                            chunk_size=bank.chunk_size, memo=bank.memo)
