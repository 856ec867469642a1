"""DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018).

Two importance models, recorded by the caller as ``dci_mode`` (scores of different modes are not
comparable and must not be mixed):

- ``exact``: sklearn ``GradientBoostingClassifier`` with the reference hyper-parameters passed
  explicitly (:data:`GBT_PARAMS`: 100 stages, learning rate 0.1, depth 3), one model per factor.
- ``fast``: the same classifier on the same full training set with 20 stages at learning rate
  0.5 (:data:`FAST_GBT_PARAMS`; the same total step 20 * 0.5 = 100 * 0.1), about 4.6x less CPU.
  Importances are the same quantity (impurity decrease averaged over trees, normalised by
  sklearn to sum to 1 per factor, absolute value taken); informativeness is the accuracy on the
  train and test sets as in ``exact``. Fitting the reference model on a row subsample instead
  was rejected: with fewer rows the trees overfit the noise dims and spread importance over
  them (on the benchmark codes, 2000 of 10000 rows lowered disentanglement by 0.14 and
  completeness by 0.18), whereas fewer, larger steps on all rows keep each factor's importance
  vector within about 0.01 of ``exact`` (same codes: disentanglement -0.015, completeness
  -0.008, informativeness-test -0.013). Calibrated against ``exact`` in
  ``tests/test_metrics_sampling.py`` and ``benchmarks/bench_metrics.py`` (tolerances in
  :data:`FAST_TOLERANCE`).
- ``hist``: LightGBM histogram gradient boosting with the reference hyper-parameters (100 rounds,
  learning rate 0.1, depth 3, leaves of one sample allowed, all rows and features) and *gain*
  importances, normalised to sum to 1 per factor like sklearn's. LightGBM grows second-order
  (hessian-weighted) trees on 255-bin histograms where sklearn grows first-order trees on exact
  thresholds, so the importances are close but not equal: on the benchmark codes disentanglement
  and completeness are about 0.03 above ``exact`` at 30x less CPU (:data:`HIST_TOLERANCE`).
  Identical code columns share their importance equally (sklearn's random tie-breaking does
  the same on average; LightGBM alone would give it all to the first copy).

The K per-factor fits are independent and run in parallel with joblib (``n_jobs``), the factors
with the most classes first; every fit's
integer ``random_state`` is drawn from the Generator before any fit, so parallel and serial runs
give identical numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from metrics._common import (
    as_generator,
    check_split,
    estimator_seeds,
    informative_factors,
    warn_constant_dims,
)
from metrics.bank import SampleBank
from metrics.registry import ScoreKey, register_metric

# The reference defaults, pinned. The split criterion is friedman_mse in every supported sklearn
# version (the ``criterion`` argument is deprecated without effect in sklearn 1.9, so not passed).
GBT_PARAMS = {
    "loss": "log_loss",
    "learning_rate": 0.1,
    "n_estimators": 100,
    "subsample": 1.0,
    "min_samples_split": 2,
    "min_samples_leaf": 1,
    "min_weight_fraction_leaf": 0.0,
    "max_depth": 3,
    "min_impurity_decrease": 0.0,
    "init": None,
    "max_features": None,
    "max_leaf_nodes": None,
    "warm_start": False,
    "validation_fraction": 0.1,
    "n_iter_no_change": None,
    "tol": 1e-4,
    "ccp_alpha": 0.0,
}
FAST_GBT_PARAMS = {**GBT_PARAMS, "n_estimators": 20, "learning_rate": 0.5}
# LightGBM spelling of the reference model; min_child_samples 1 = sklearn's min_samples_leaf 1.
HIST_PARAMS = {
    "n_estimators": 100,
    "learning_rate": 0.1,
    "max_depth": 3,
    "num_leaves": 8,
    "min_child_samples": 1,
    "min_split_gain": 0.0,
    "reg_lambda": 0.0,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "max_bin": 255,
    "deterministic": True,
    "force_col_wise": True,
    "n_jobs": 1,
    "verbose": -1,
}
DCI_MODES = ("exact", "fast", "hist")
# Documented agreement of ``fast`` with ``exact`` (absolute), checked on synthetic grids.
FAST_TOLERANCE = {
    "dci_disentanglement": 0.03,
    "dci_completeness": 0.03,
    "dci_informativeness_test": 0.03,
}
HIST_TOLERANCE = {
    "dci_disentanglement": 0.05,
    "dci_completeness": 0.05,
    "dci_informativeness_test": 0.05,
}


def _hist_classifier(seed: int) -> Any:
    """LightGBM is imported on use: the other modes never load it."""
    import lightgbm

    return lightgbm.LGBMClassifier(random_state=seed, **HIST_PARAMS)


def _fit_factor(
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_te: np.ndarray,
    y_te: np.ndarray,
    seed: int,
    mode: str,
) -> tuple[np.ndarray, float, float]:
    if mode == "hist":
        # Identical columns are indistinguishable to a tree; sklearn breaks the tie at random
        # per split (so copies share the importance), LightGBM always takes the first copy.
        # Fit on one copy of each and share its importance equally among the copies.
        _, first, group = np.unique(x_tr, axis=1, return_index=True, return_inverse=True)
        group = np.asarray(group).reshape(-1)
        model = _hist_classifier(seed).fit(x_tr[:, first], y_tr)
        gain = np.abs(model.booster_.feature_importance(importance_type="gain"))
        gain = gain[group] / np.bincount(group)[group]
        importance = gain / gain.sum() if gain.sum() > 0 else gain
        x_tr, x_te = x_tr[:, first], x_te[:, first]
    else:
        from sklearn.ensemble import GradientBoostingClassifier  # here: planning needs no sklearn

        params = GBT_PARAMS if mode == "exact" else FAST_GBT_PARAMS
        model = GradientBoostingClassifier(random_state=seed, **params).fit(x_tr, y_tr)
        importance = np.abs(model.feature_importances_)
    acc_tr = float(np.mean(model.predict(x_tr) == y_tr))
    acc_te = float(np.mean(model.predict(x_te) == y_te))
    return importance, acc_tr, acc_te


def dci_importance(
    codes_tr: np.ndarray,
    factors_tr: np.ndarray,
    codes_te: np.ndarray,
    factors_te: np.ndarray,
    *,
    mode: str = "exact",
    random_state: np.random.Generator | int,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Importance matrix R (D, K'), train and test accuracies (K',) and the kept factor indices."""
    if mode not in DCI_MODES:
        raise ValueError(f"DCI: mode must be one of {DCI_MODES}, got {mode!r}")
    codes_tr, factors_tr, codes_te, factors_te = check_split(
        codes_tr, factors_tr, codes_te, factors_te, "DCI"
    )
    rng = as_generator(random_state)
    keep = informative_factors(factors_tr, "DCI")
    if keep.size < 2:
        raise ValueError(
            f"DCI: disentanglement needs at least 2 informative factors (K >= 2), got {keep.size}"
        )
    if codes_tr.shape[1] < 2:
        raise ValueError(
            f"DCI: completeness needs at least 2 code dims (D >= 2), got D={codes_tr.shape[1]}"
        )
    warn_constant_dims(codes_tr, "DCI", "never split on, importance 0")
    seeds = estimator_seeds(rng, keep.size)
    # A multi-class GBT fits one tree per class and stage, so a factor's cost grows with its
    # class count; dispatching the dearest fits first keeps the workers evenly loaded.
    classes = [np.unique(factors_tr[:, j]).size for j in keep]
    order = sorted(range(keep.size), key=lambda i: -classes[i])
    from joblib import Parallel, delayed  # here: planning a cell needs no joblib

    fitted = Parallel(n_jobs=n_jobs)(
        delayed(_fit_factor)(codes_tr, factors_tr[:, keep[i]], codes_te, factors_te[:, keep[i]],
                             seeds[i], mode)
        for i in order
    )
    results: list[tuple[np.ndarray, float, float]] = [None] * keep.size  # type: ignore[list-item]
    for i, result in zip(order, fitted, strict=True):
        results[i] = result  # back in factor order
    importance = np.stack([r[0] for r in results], axis=1)
    acc_tr = np.array([r[1] for r in results])
    acc_te = np.array([r[2] for r in results])
    return importance, acc_tr, acc_te, keep


def dci_from_importance(importance: np.ndarray) -> dict[str, float]:
    """Disentanglement and completeness of an importance matrix R (D codes x K factors).

    D_i = 1 - H_K(row i normalised), weighted by row mass; C_j = 1 - H_D(column j normalised),
    weighted by column mass; 1e-11 is added before normalising; an all-zero R gets uniform
    weights. Raises ValueError when K < 2 or D < 2 (entropy base 1).
    """
    importance = np.asarray(importance, dtype=np.float64)
    if importance.ndim != 2:
        raise ValueError(f"DCI: importance must be (D, K), got shape {importance.shape}")
    d, k = importance.shape
    if k < 2:
        raise ValueError(f"DCI: disentanglement needs K >= 2 factors (log base K), got K={k}")
    if d < 2:
        raise ValueError(f"DCI: completeness needs D >= 2 code dims (log base D), got D={d}")
    if not np.isfinite(importance).all() or (importance < 0).any():
        raise ValueError("DCI: importance must be finite and non-negative")
    import scipy.stats  # here: planning a cell needs no scipy

    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=k)
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=d)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    code_weight = weights.sum(axis=1) / weights.sum()
    factor_weight = weights.sum(axis=0) / weights.sum()
    return {
        "dci_disentanglement": float(np.sum(per_code * code_weight)),
        "dci_completeness": float(np.sum(per_factor * factor_weight)),
    }


def dci(
    codes_tr: np.ndarray,
    factors_tr: np.ndarray,
    codes_te: np.ndarray,
    factors_te: np.ndarray,
    *,
    mode: str = "exact",
    random_state: np.random.Generator | int,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """DCI scores. Keys: ``dci_disentanglement``, ``dci_completeness``,
    ``dci_informativeness_train``, ``dci_informativeness_test`` (mean classification accuracy,
    higher is better, as in the reference library)."""
    importance, acc_tr, acc_te, _ = dci_importance(
        codes_tr,
        factors_tr,
        codes_te,
        factors_te,
        mode=mode,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    scores = dci_from_importance(importance)
    scores["dci_informativeness_train"] = float(np.mean(acc_tr))
    scores["dci_informativeness_test"] = float(np.mean(acc_te))
    return scores


@dataclass(frozen=True)
class DCISettings:
    """``mode``: ``exact`` (the reference GBT), ``fast`` (fewer, larger boosting stages, within
    ``FAST_TOLERANCE`` of exact) or ``hist`` (LightGBM, within ``HIST_TOLERANCE``); a leaderboard
    never mixes modes."""

    mode: str = "exact"

    def __post_init__(self) -> None:
        if self.mode not in DCI_MODES:
            raise ValueError(f"dci mode must be one of {DCI_MODES}, got {self.mode!r}")


@register_metric(
    "dci", description="DCI (Eastwood & Williams 2018) with gradient-boosted trees",
    settings=DCISettings, profiles={"quick": {"mode": "fast"}},
    keys=(
        ScoreKey("dci_disentanglement",
                 "DCI disentanglement (Eastwood & Williams 2018); mode in settings",
                 headline=True),
        ScoreKey("dci_completeness", "DCI completeness"),
        ScoreKey("dci_informativeness_train", "DCI informativeness: GBT train accuracy"),
        ScoreKey("dci_informativeness_test", "DCI informativeness: GBT test accuracy"),
    ),
)
def score_dci(bank: SampleBank, settings: DCISettings, rng: np.random.Generator
              ) -> dict[str, float]:
    return dci(*bank.split, mode=settings.mode, random_state=rng, n_jobs=bank.n_jobs)
