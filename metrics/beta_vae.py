"""BetaVAE score (Higgins et al. 2017) on pre-grouped code pairs.

One point is a group of ``batch`` code pairs (z1, z2) whose rows share factor ``k``; its feature is
the mean over the group of |z1 - z2| (a D-vector) and its label is ``k``. A logistic regression
(hyper-parameters pinned, :data:`metrics.modularity.LOGISTIC_PARAMS`) is fitted on the training
points; the scores are its accuracies on the training and evaluation points.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from datasets.base import GroundTruthData
from metrics._common import check_codes, estimator_seeds
from metrics.bank import (
    CHUNK_SIZE,
    CodeMemo,
    Represent,
    SampleBank,
    check_data,
    chunks,
    encode,
    varying_factors,
)
from metrics.modularity import LOGISTIC_PARAMS
from metrics.registry import ScoreKey, register_metric


def beta_vae_features(z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
    """Mean absolute pair difference per group: (n, batch, D) x 2 -> (n, D)."""
    z1, z2 = np.asarray(z1), np.asarray(z2)
    if z1.ndim != 3 or z1.shape != z2.shape or z1.shape[0] == 0:
        raise ValueError(
            f"BetaVAE: pair codes must be two equal (n, batch, D) arrays, "
            f"got {z1.shape} and {z2.shape}"
        )
    shape = z1.shape
    z1 = check_codes(z1.reshape(-1, shape[2]), "BetaVAE", "z1").reshape(shape)
    z2 = check_codes(z2.reshape(-1, shape[2]), "BetaVAE", "z2").reshape(shape)
    return np.mean(np.abs(z1 - z2), axis=1)


def beta_vae_from_features(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    eval_features: np.ndarray,
    eval_labels: np.ndarray,
    *,
    random_state: np.random.Generator | int,
) -> dict[str, float]:
    """Keys ``betavae_train_accuracy``, ``betavae_eval_accuracy``."""
    x_tr = check_codes(train_features, "BetaVAE", "train features")
    x_ev = check_codes(eval_features, "BetaVAE", "eval features")
    y_tr, y_ev = np.asarray(train_labels), np.asarray(eval_labels)
    if y_tr.shape != (x_tr.shape[0],) or y_ev.shape != (x_ev.shape[0],):
        raise ValueError("BetaVAE: labels must be 1-D with one entry per feature row")
    if np.unique(y_tr).size < 2:
        raise ValueError("BetaVAE: the training labels hold a single factor; need at least 2")
    from sklearn.exceptions import ConvergenceWarning  # here: planning a cell needs no sklearn
    from sklearn.linear_model import LogisticRegression

    (seed,) = estimator_seeds(random_state, 1)
    clf = LogisticRegression(random_state=seed, **LOGISTIC_PARAMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the reference runs 100 iterations
        clf.fit(x_tr, y_tr)
    return {
        "betavae_train_accuracy": float(clf.score(x_tr, y_tr)),
        "betavae_eval_accuracy": float(clf.score(x_ev, y_ev)),
    }


def beta_vae_from_pairs(
    train_z1: np.ndarray,
    train_z2: np.ndarray,
    train_labels: np.ndarray,
    eval_z1: np.ndarray,
    eval_z2: np.ndarray,
    eval_labels: np.ndarray,
    *,
    random_state: np.random.Generator | int,
) -> dict[str, float]:
    """BetaVAE score on grouped pair codes (n, batch, D) with the shared factor per group."""
    return beta_vae_from_features(
        beta_vae_features(train_z1, train_z2),
        train_labels,
        beta_vae_features(eval_z1, eval_z2),
        eval_labels,
        random_state=random_state,
    )


# -- sampled from ground truth ---------------------------------------------------------------


def _beta_vae_points(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    num: int,
    batch: int,
    varying: np.ndarray,
    chunk_size: int,
    memo: CodeMemo | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``num`` BetaVAE points: features (num, D) and the shared factor (num,)."""
    k = len(data.factor_sizes)
    first = np.asarray(data.sample_factors(num * batch, rng), dtype=np.int64).reshape(num, batch, k)
    second = np.asarray(data.sample_factors(num * batch, rng), dtype=np.int64).reshape(
        num, batch, k
    )
    shared = varying[rng.integers(0, varying.size, size=num)]
    points = np.arange(num)
    second[points, :, shared] = first[points, :, shared]
    groups_per_chunk = max(1, chunk_size // batch)
    features = []
    for rows in chunks(num, groups_per_chunk):
        n = rows.stop - rows.start
        z1 = encode(data, represent, first[rows].reshape(-1, k), chunk_size=chunk_size, memo=memo)
        z2 = encode(data, represent, second[rows].reshape(-1, k), chunk_size=chunk_size,
                    memo=memo)
        features.append(beta_vae_features(z1.reshape(n, batch, -1), z2.reshape(n, batch, -1)))
    return np.concatenate(features), shared


def beta_vae_score(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    chunk_size: int = CHUNK_SIZE,
    memo: CodeMemo | None = None,
) -> dict[str, float]:
    """BetaVAE score sampled from ground truth: each point is ``batch_size`` image pairs sharing
    one random factor. Keys ``betavae_train_accuracy``, ``betavae_eval_accuracy``. ``memo`` (a
    bank's :class:`metrics.bank.CodeMemo`) reuses codes of rows already encoded."""
    sizes = check_data(data)
    if batch_size < 1 or num_train < 2 or num_eval < 1:
        raise ValueError("BetaVAE: need batch_size >= 1, num_train >= 2, num_eval >= 1")
    varying = varying_factors(sizes, "BetaVAE")
    if varying.size < 2:
        raise ValueError("BetaVAE: needs at least 2 factors with more than one value")
    x_tr, y_tr = _beta_vae_points(data, represent, rng, num_train, batch_size, varying, chunk_size,
                                  memo)
    x_ev, y_ev = _beta_vae_points(data, represent, rng, num_eval, batch_size, varying, chunk_size,
                                  memo)
    return beta_vae_from_features(x_tr, y_tr, x_ev, y_ev, random_state=rng)


@dataclass(frozen=True)
class BetaVAESettings:
    """The reference study's point counts; each point averages ``batch_size`` pairs."""

    batch_size: int = 64
    num_train: int = 10000
    num_eval: int = 5000


@register_metric(
    "betavae", description="BetaVAE score (Higgins et al. 2017)", settings=BetaVAESettings,
    profiles={"quick": {"num_train": 500, "num_eval": 300}},
    keys=(
        ScoreKey("betavae_train_accuracy", "BetaVAE score: logistic-regression train accuracy"),
        ScoreKey("betavae_eval_accuracy", "BetaVAE score: logistic-regression eval accuracy"),
    ),
)
def score_betavae(bank: SampleBank, settings: BetaVAESettings, rng: np.random.Generator
                  ) -> dict[str, float]:
    return beta_vae_score(bank.data, bank.represent, rng, **asdict(settings),
                          chunk_size=bank.chunk_size, memo=bank.memo)
