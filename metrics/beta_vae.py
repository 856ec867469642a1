"""BetaVAE score (Higgins et al. 2017) on pre-grouped code pairs.

One point is a group of ``batch`` code pairs (z1, z2) whose rows share factor ``k``; its feature is
the mean over the group of |z1 - z2| (a D-vector) and its label is ``k``. A logistic regression
(hyper-parameters pinned, :data:`metrics.modularity.LOGISTIC_PARAMS`) is fitted on the training
points; the scores are its accuracies on the training and evaluation points.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from metrics._common import check_codes, estimator_seeds
from metrics.modularity import LOGISTIC_PARAMS


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
