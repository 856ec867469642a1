"""Separated Attribute Predictability (Kumar et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from sklearn.svm import LinearSVC

from metrics._common import (
    check_split,
    estimator_seeds,
    informative_factors,
    warn_constant_dims,
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


def _svc_accuracy(
    x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, seed: int
) -> float:
    clf = LinearSVC(random_state=seed, **SVC_PARAMS).fit(x_tr[:, None], y_tr)
    return float(np.mean(clf.predict(x_te[:, None]) == y_te))


def _correlation_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation (D, K); 0 where the code variance is <= 1e-12."""
    scores = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            cov = np.cov(codes[:, i], factors[:, j].astype(np.float64), ddof=1)
            if cov[0, 0] > 1e-12:
                scores[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
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
) -> tuple[np.ndarray, np.ndarray]:
    """SAP score matrix (D, K') and the kept factor indices (single-valued factors excluded).

    Discrete: S[i, j] = test accuracy of a one-feature LinearSVC(C=0.01, balanced, dual=True)
    on code dim i predicting factor j. Continuous: squared correlation on the train set.
    The D*K seeds are drawn row-major from ``random_state`` before any fit, so ``n_jobs`` does
    not change the numbers.
    """
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
) -> dict[str, float]:
    """SAP: mean over factors of (largest - second largest) score-matrix entry. Key ``sap``.

    With a single code dim the second-largest entry does not exist and ValueError is raised.
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
    )
    top_two = -np.sort(-scores, axis=0)[:2]
    return {"sap": float(np.mean(top_two[0] - top_two[1]))}


@dataclass(frozen=True)
class SAPSettings:
    """The reference: factors treated as discrete (classification with a LinearSVC)."""

    continuous_factors: bool = False


@register_metric(
    "sap", description="Separated Attribute Predictability (Kumar et al. 2018)",
    settings=SAPSettings,
    keys=(ScoreKey("sap", "Separated Attribute Predictability (Kumar et al. 2018), "
                   "LinearSVC C=0.01"),),
)
def score_sap(bank: SampleBank, settings: SAPSettings, rng: np.random.Generator
              ) -> dict[str, float]:
    return sap(*bank.split, continuous_factors=settings.continuous_factors, random_state=rng)
