"""Modularity and Explicitness (Ridgeway & Zemel 2018)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from metrics._common import (
    check_pair,
    check_split,
    estimator_seeds,
    histogram_discretize,
    informative_factors,
    mutual_info_matrix,
    warn_constant_dims,
    warn_degenerate,
)
from metrics.bank import SampleBank
from metrics.registry import ScoreKey, register_metric

# Today's sklearn defaults, pinned (lbfgs is multinomial for multi-class targets; the penalty is
# the default L2, not passed because sklearn 1.8 deprecates the ``penalty`` argument).
LOGISTIC_PARAMS = {
    "C": 1.0,
    "solver": "lbfgs",
    "max_iter": 100,
    "tol": 1e-4,
    "fit_intercept": True,
}


def modularity_from_mi(mi: np.ndarray) -> float:
    """Mean over code dims of 1 - delta_i, delta_i = (sum_j m_ij^2 - max_j m_ij^2) /
    (max_j m_ij^2 (K - 1)); a dim with zero MI to every factor scores 0."""
    mi = np.asarray(mi, dtype=np.float64)
    if mi.ndim != 2 or mi.shape[1] < 2:
        raise ValueError(f"Modularity: needs K >= 2 factors (divides by K - 1), got MI {mi.shape}")
    sq = mi**2
    top = sq.max(axis=1)
    # top == 0 only where the whole row is 0, so the one division by zero is 0 / 0
    with np.errstate(invalid="ignore"):
        delta = (sq.sum(axis=1) - top) / (top * (mi.shape[1] - 1))
    score = np.where(top == 0.0, 0.0, 1.0 - delta)
    return float(np.mean(score))


def modularity(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20) -> dict[str, float]:
    """Modularity on one set of codes (N, D) and integer factors (N, K). Key ``modularity``."""
    codes, factors = check_pair(codes, factors, "Modularity")
    keep = informative_factors(factors, "Modularity")
    warn_constant_dims(codes, "Modularity", "zero mutual information, modularity 0")
    if keep.size < 2:
        raise ValueError(f"Modularity: needs K >= 2 informative factors, got {keep.size}")
    mi = mutual_info_matrix(histogram_discretize(codes, num_bins), factors[:, keep])
    return {"modularity": modularity_from_mi(mi)}


def _macro_auc(classes: np.ndarray, labels: np.ndarray, proba: np.ndarray) -> float | None:
    """Macro ROC-AUC over the classifier's classes that are both present and absent in
    ``labels`` (one-hot against the full class set); None if no class qualifies."""
    onehot = labels[:, None] == classes[None, :]
    valid = onehot.any(axis=0) & ~onehot.all(axis=0)
    if not valid.any():
        return None
    from sklearn.metrics import roc_auc_score  # here: planning a cell needs no sklearn

    return float(np.mean([roc_auc_score(onehot[:, c], proba[:, c]) for c in np.flatnonzero(valid)]))


def explicitness(
    codes_tr: np.ndarray,
    factors_tr: np.ndarray,
    codes_te: np.ndarray,
    factors_te: np.ndarray,
    *,
    random_state: np.random.Generator | int,
) -> dict[str, float]:
    """Explicitness: per factor, logistic regression on the standardised codes (train mean/std;
    a constant dim uses std 1), macro ROC-AUC of ``predict_proba`` on train and test, averaged
    over factors. Labels are one-hot against the classifier's full class set, so a class missing
    from the test set only drops that class's AUC from the macro average.
    Keys ``explicitness_train``, ``explicitness_test``."""
    codes_tr, factors_tr, codes_te, factors_te = check_split(
        codes_tr, factors_tr, codes_te, factors_te, "Explicitness"
    )
    keep = informative_factors(factors_tr, "Explicitness")
    mean = codes_tr.mean(axis=0)
    std = codes_tr.std(axis=0)
    const = warn_constant_dims(codes_tr, "Explicitness", "standardised with std 1")
    std[const] = 1.0
    x_tr, x_te = (codes_tr - mean) / std, (codes_te - mean) / std
    from sklearn.exceptions import ConvergenceWarning  # here: planning a cell needs no sklearn
    from sklearn.linear_model import LogisticRegression

    seeds = estimator_seeds(random_state, keep.size)
    auc_tr: list[float] = []
    auc_te: list[float] = []
    for j, seed in zip(keep, seeds, strict=True):
        clf = LogisticRegression(random_state=seed, **LOGISTIC_PARAMS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the reference runs 100 iters
            clf.fit(x_tr, factors_tr[:, j])
        # an informative factor has two or more classes in training, so its train AUC exists
        train_auc = _macro_auc(clf.classes_, factors_tr[:, j], clf.predict_proba(x_tr))
        if train_auc is not None:
            auc_tr.append(train_auc)
        unseen = ~np.isin(factors_te[:, j], clf.classes_)
        if unseen.any():
            warn_degenerate(
                f"Explicitness: factor {j} has test classes "
                f"{np.unique(factors_te[unseen, j]).tolist()} never seen in training"
            )
        test_auc = _macro_auc(clf.classes_, factors_te[:, j], clf.predict_proba(x_te))
        if test_auc is None:
            warn_degenerate(
                f"Explicitness: factor {j} has a single class in the test set; "
                "excluded from the average"
            )
        else:
            auc_te.append(test_auc)
    if not auc_te:
        raise ValueError("Explicitness: no factor has two classes in both train and test sets")
    return {
        "explicitness_train": float(np.mean(auc_tr)),
        "explicitness_test": float(np.mean(auc_te)),
    }


def modularity_explicitness(
    codes_tr: np.ndarray,
    factors_tr: np.ndarray,
    codes_te: np.ndarray,
    factors_te: np.ndarray,
    *,
    random_state: np.random.Generator | int,
    num_bins: int = 20,
) -> dict[str, float]:
    """Modularity (on the training codes) and Explicitness. Keys ``modularity``,
    ``explicitness_train``, ``explicitness_test``."""
    scores = modularity(codes_tr, factors_tr, num_bins=num_bins)
    scores.update(
        explicitness(codes_tr, factors_tr, codes_te, factors_te, random_state=random_state)
    )
    return scores


@dataclass(frozen=True)
class ModularitySettings:
    """The reference discretiser of the Modularity mutual information."""

    num_bins: int = 20


@register_metric(
    "modularity", description="Modularity and Explicitness (Ridgeway & Zemel 2018)",
    settings=ModularitySettings,
    keys=(
        ScoreKey("modularity", "Modularity (Ridgeway & Zemel 2018)"),
        ScoreKey("explicitness_train",
                 "Explicitness: macro ROC-AUC of logistic regression, train set", low=0.5),
        ScoreKey("explicitness_test",
                 "Explicitness: macro ROC-AUC of logistic regression, test set", low=0.5),
    ),
)
def score_modularity(bank: SampleBank, settings: ModularitySettings, rng: np.random.Generator
                     ) -> dict[str, float]:
    return modularity_explicitness(*bank.split, random_state=rng, num_bins=settings.num_bins)
