"""Metrics profiles: the settings of a published evaluation protocol, pinned whatever the cell's
profile, each value with where it comes from.

A cell's profile ``<profile>+<name>`` (``bench run --metrics-profile <name>``, e.g.
``quick+disco``) runs the methods, flows and group VAE at ``<profile>`` and scores the
representation metrics the protocol names with exactly its values; metrics it does not name keep
``<profile>``'s settings. The values are written out here, not taken from the suite's defaults,
so that a later change of a default leaves the protocol as published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.config import split_profile
from core.errors import SettingError


@dataclass(frozen=True)
class MetricsProfile:
    """One protocol: per metric (or ``"bank"``, the shared train/test sets) the settings it
    fixes, and per ``"<metric>.<field>"`` the source of the value."""

    name: str
    description: str
    settings: Mapping[str, Mapping[str, Any]]
    sources: Mapping[str, str]


DISCO_COMMIT = "a3ceda76f8589e53da8dace5c8991ab42a2865dd"
_DISCO = f"xrenaa/DisCo@{DISCO_COMMIT[:8]} evaluate.py"
_DLIB_GBT = ("disentanglement_lib evaluation/metrics/dci.py compute_importance_gbt: "
             "GradientBoostingClassifier() with sklearn's defaults (100 stages, learning rate 0.1, "
             "depth 3), DisCo's copy unchanged; the suite's 'exact' mode")

DISCO = MetricsProfile(
    name="disco",
    description="DisCo's evaluate.py: disentanglement_lib's FactorVAE, MIG, DCI and BetaVAE "
    "settings as DisCo binds them (the values of disentanglement_lib's unsupervised_study_v1 "
    "metric configs)",
    settings={
        # MIG's 10,000 points and DCI's 10,000 / 5,000 are the shared i.i.d. sets
        "bank": {"num_train": 10_000, "num_test": 5_000},
        "fvm": {"num_variance_estimate": 10_000, "num_train": 10_000, "num_eval": 5_000,
                       "batch_size": 64, "prune_threshold": 0.05},
        "mig": {"num_bins": 20},
        "dci": {"mode": "exact"},
        "betavae": {"batch_size": 64, "num_train": 10_000, "num_eval": 5_000},
    },
    sources={
        "bank.num_train": f"{_DISCO} line 52 dci.num_train = 10000; line 74 mig.num_train = 10000",
        "bank.num_test": f"{_DISCO} line 53 dci.num_test = 5000",
        "fvm.num_variance_estimate":
            f"{_DISCO} line 61 factor_vae_score.num_variance_estimate = 10000",
        "fvm.num_train": f"{_DISCO} line 62 factor_vae_score.num_train = 10000",
        "fvm.num_eval": f"{_DISCO} line 63 factor_vae_score.num_eval = 5000",
        "fvm.batch_size": f"{_DISCO} line 64 factor_vae_score.batch_size = 64",
        "fvm.prune_threshold": f"{_DISCO} line 65 prune_dims.threshold = 0.05",
        "mig.num_bins": f"{_DISCO} lines 75-76 discretizer.discretizer_fn = "
                        "_histogram_discretize, discretizer.num_bins = 20",
        "dci.mode": _DLIB_GBT,
        "betavae.batch_size": f"{_DISCO} line 42 beta_vae_sklearn.batch_size = 64",
        "betavae.num_train": f"{_DISCO} line 43 beta_vae_sklearn.num_train = 10000",
        "betavae.num_eval": f"{_DISCO} line 44 beta_vae_sklearn.num_eval = 5000",
    },
)

METRICS_PROFILES: dict[str, MetricsProfile] = {DISCO.name: DISCO}


def metrics_profile(profile: str) -> MetricsProfile | None:
    """The metrics profile a cell profile names (``quick+disco`` -> DISCO), None without one;
    an unknown name is a one-line SettingError."""
    _, name = split_profile(profile)
    if name is None:
        return None
    if name not in METRICS_PROFILES:
        raise SettingError(f"unknown metrics profile {name!r} in profile {profile!r} (expected "
                           f"one of {', '.join(METRICS_PROFILES)})")
    return METRICS_PROFILES[name]
