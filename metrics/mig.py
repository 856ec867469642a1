"""Mutual Information Gap (Chen et al. 2018) with the reference 20-bin histogram discretiser."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metrics._common import (
    check_pair,
    discrete_entropy,
    histogram_discretize,
    informative_factors,
    mutual_info_matrix,
    warn_constant_dims,
)
from metrics.bank import SampleBank
from metrics.registry import ScoreKey, register_metric


def mig_details(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20) -> dict:
    """MIG with its intermediate quantities.

    Returns ``mi`` (D, K') in nats, ``entropy`` (K',), ``gaps`` (K',) normalised gaps and
    ``factors_used`` (the K' factor indices kept; single-valued factors are excluded with a
    warning). Raises ValueError if D < 2 (the gap needs a second-largest MI).
    """
    codes, factors = check_pair(codes, factors, "MIG")
    if codes.shape[1] < 2:
        raise ValueError(f"MIG: needs at least 2 code dims (D >= 2), got D={codes.shape[1]}")
    keep = informative_factors(factors, "MIG")
    warn_constant_dims(codes, "MIG", "one bin, zero mutual information")
    factors = factors[:, keep]
    mi = mutual_info_matrix(histogram_discretize(codes, num_bins), factors)
    entropy = discrete_entropy(factors)
    top_two = -np.sort(-mi, axis=0)[:2]
    gaps = (top_two[0] - top_two[1]) / entropy
    return {"mi": mi, "entropy": entropy, "gaps": gaps, "factors_used": keep}


def mig(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20) -> dict[str, float]:
    """MIG of codes (N, D) against integer factors (N, K): mean over factors of
    (largest - second largest MI with a code dim) / factor entropy. Key ``mig``."""
    return {"mig": float(np.mean(mig_details(codes, factors, num_bins=num_bins)["gaps"]))}


@dataclass(frozen=True)
class MIGSettings:
    """The reference discretiser: equal-width histograms of each code dim."""

    num_bins: int = 20


@register_metric(
    "mig", description="Mutual Information Gap (Chen et al. 2018) on the shared train set",
    settings=MIGSettings,
    keys=(ScoreKey("mig", "Mutual Information Gap (Chen et al. 2018), 20-bin discretiser",
                   headline=True),),
)
def score_mig(bank: SampleBank, settings: MIGSettings, rng: np.random.Generator
              ) -> dict[str, float]:
    return mig(*bank.train, num_bins=settings.num_bins)
