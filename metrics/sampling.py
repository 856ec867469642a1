"""Sampling layer: draw factors from ground truth, render, encode, and feed the array cores.

``data`` is duck typed like :class:`datasets.base.GroundTruthData` (``factor_sizes``,
``sample_factors(n, rng)``, ``observations(factors) -> uint8 (n, H, W, C)``); ``represent`` maps
such a uint8 batch to float codes (n, D). Every sample is rendered and encoded exactly once, in
chunks of ``chunk_size`` images; all factors are drawn up front, so the numbers do not depend on
the chunk size. Every random choice comes from the Generator argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from metrics._common import check_codes, warn_degenerate
from metrics.beta_vae import beta_vae_features, beta_vae_from_features
from metrics.dci import DCI_MODES, FAST_GBT_PARAMS, GBT_PARAMS, dci
from metrics.factor_vae import active_dims, readout, vote_dims
from metrics.mig import mig
from metrics.modularity import LOGISTIC_PARAMS, modularity_explicitness
from metrics.sap import SVC_PARAMS, sap

Represent = Callable[[np.ndarray], Any]
CHUNK_SIZE = 256

PROFILES: dict[str, dict[str, Any]] = {
    # The study settings of the reference library.
    "paper": {
        "num_train": 10000,
        "num_test": 5000,
        "num_bins": 20,
        "sap_continuous_factors": False,
        "dci_mode": "exact",
        "fvm_batch_size": 64,
        "fvm_num_train": 10000,
        "fvm_num_eval": 5000,
        "fvm_num_variance_estimate": 10000,
        "fvm_prune_threshold": 0.05,
        "betavae_batch_size": 64,
        "betavae_num_train": 10000,
        "betavae_num_eval": 5000,
    },
    # Sized for 2 CPU cores (measured serially with benchmarks/bench_metrics.py --only-sampled):
    # about 16 s CPU of metric arithmetic (DCI fast about 11 s) for a 10-dim code on
    # shapes3d-synth; rendering plus an untrained conv VAE encoder cost about 0.35 ms CPU per
    # image, and the profile draws 4500 + 5000 + 51200 (FactorVAE) + 102400 (BetaVAE) images,
    # i.e. about 75 s CPU in all.
    "quick": {
        "num_train": 3000,
        "num_test": 1500,
        "num_bins": 20,
        "sap_continuous_factors": False,
        "dci_mode": "fast",
        "fvm_batch_size": 64,
        "fvm_num_train": 500,
        "fvm_num_eval": 300,
        "fvm_num_variance_estimate": 5000,
        "fvm_prune_threshold": 0.05,
        "betavae_batch_size": 64,
        "betavae_num_train": 500,
        "betavae_num_eval": 300,
    },
}


def _check_data(data: Any) -> tuple[int, ...]:
    for attr in ("factor_sizes", "sample_factors", "observations"):
        if not hasattr(data, attr):
            raise ValueError(f"data must provide {attr!r} like datasets.base.GroundTruthData")
    sizes = tuple(int(s) for s in data.factor_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"data.factor_sizes must be positive, got {sizes}")
    return sizes


def _chunks(num: int, size: int) -> Iterator[slice]:
    for start in range(0, num, size):
        yield slice(start, min(start + size, num))


def encode(
    data: Any, represent: Represent, factors: np.ndarray, *, chunk_size: int = CHUNK_SIZE
) -> np.ndarray:
    """Render ``factors`` (n, K) and encode them in chunks: float64 codes (n, D)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    parts = []
    for rows in _chunks(factors.shape[0], chunk_size):
        images = data.observations(factors[rows])
        codes = np.asarray(represent(images))
        if codes.ndim != 2 or codes.shape[0] != images.shape[0]:
            raise ValueError(
                f"represent must return (n, D) codes for n={images.shape[0]} images, "
                f"got shape {codes.shape}"
            )
        parts.append(check_codes(codes, "represent", "returned codes"))
    return np.concatenate(parts, axis=0)


def sample_codes(
    data: Any,
    represent: Represent,
    num: int,
    rng: np.random.Generator,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """``num`` i.i.d. factor draws and their codes: (codes (num, D), factors (num, K))."""
    _check_data(data)
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    factors = np.asarray(data.sample_factors(num, rng), dtype=np.int64)
    return encode(data, represent, factors, chunk_size=chunk_size), factors


def _varying_factors(sizes: tuple[int, ...], metric: str) -> np.ndarray:
    varying = np.flatnonzero(np.array(sizes) > 1)
    if varying.size == 0:
        raise ValueError(f"{metric}: every factor has a single value; nothing to score")
    if varying.size < len(sizes):
        skipped = np.flatnonzero(np.array(sizes) == 1).tolist()
        warn_degenerate(f"{metric}: factors {skipped} have a single value and are never fixed")
    return varying


def _fixed_factor_groups(
    data: Any, rng: np.random.Generator, num: int, batch: int, varying: np.ndarray
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
    data: Any,
    represent: Represent,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_threshold: float = 0.05,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, float]:
    """FactorVAE score sampled from ground truth. Keys ``fvm_train_accuracy``,
    ``fvm_eval_accuracy``, ``fvm_num_active_dims``.

    Pruned-dimension bug of the reference fixed: the argmin over active dims is mapped back to the
    original dim index and ``fvm_num_active_dims`` counts the active dims (see
    :mod:`metrics.factor_vae`); the accuracies equal the reference's on the same votes.
    Zero-variance dims are always inactive. Votes are processed chunk by chunk (only the voted
    dim of each group is kept), so memory does not grow with ``num_train * batch_size * D``.
    """
    sizes = _check_data(data)
    if batch_size < 2 or num_train < 1 or num_eval < 1 or num_variance_estimate < 2:
        raise ValueError(
            "FactorVAE: need batch_size >= 2, num_train/num_eval >= 1, num_variance_estimate >= 2"
        )
    varying = _varying_factors(sizes, "FactorVAE")
    variance_codes, _ = sample_codes(
        data, represent, num_variance_estimate, rng, chunk_size=chunk_size
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
        for rows in _chunks(factors.shape[0], groups_per_chunk):
            block = factors[rows]
            codes = encode(data, represent, block.reshape(-1, len(sizes)), chunk_size=chunk_size)
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


def _beta_vae_points(
    data: Any,
    represent: Represent,
    rng: np.random.Generator,
    num: int,
    batch: int,
    varying: np.ndarray,
    chunk_size: int,
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
    for rows in _chunks(num, groups_per_chunk):
        n = rows.stop - rows.start
        z1 = encode(data, represent, first[rows].reshape(-1, k), chunk_size=chunk_size)
        z2 = encode(data, represent, second[rows].reshape(-1, k), chunk_size=chunk_size)
        features.append(beta_vae_features(z1.reshape(n, batch, -1), z2.reshape(n, batch, -1)))
    return np.concatenate(features), shared


def beta_vae_score(
    data: Any,
    represent: Represent,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, float]:
    """BetaVAE score sampled from ground truth: each point is ``batch_size`` image pairs sharing
    one random factor. Keys ``betavae_train_accuracy``, ``betavae_eval_accuracy``."""
    sizes = _check_data(data)
    if batch_size < 1 or num_train < 2 or num_eval < 1:
        raise ValueError("BetaVAE: need batch_size >= 1, num_train >= 2, num_eval >= 1")
    varying = _varying_factors(sizes, "BetaVAE")
    if varying.size < 2:
        raise ValueError("BetaVAE: needs at least 2 factors with more than one value")
    x_tr, y_tr = _beta_vae_points(data, represent, rng, num_train, batch_size, varying, chunk_size)
    x_ev, y_ev = _beta_vae_points(data, represent, rng, num_eval, batch_size, varying, chunk_size)
    return beta_vae_from_features(x_tr, y_tr, x_ev, y_ev, random_state=rng)


def metric_settings(
    profile: str = "quick",
    *,
    dci_mode: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The resolved settings of :func:`representation_metrics` (JSON-friendly), for result files:
    sizes, ``dci_mode`` (never mix modes on one leaderboard), pinned sklearn hyper-parameters and
    the FactorVAE index fix. ``overrides`` replaces profile entries (keys of :data:`PROFILES`)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown metric profile {profile!r}; expected one of {sorted(PROFILES)}")
    settings = dict(PROFILES[profile], profile=profile)
    unknown = sorted(set(overrides or {}) - set(PROFILES[profile]))
    if unknown:
        raise ValueError(
            f"unknown metric setting(s) {unknown}; expected {sorted(PROFILES[profile])}"
        )
    settings.update(overrides or {})
    if dci_mode is not None:
        if dci_mode not in DCI_MODES:
            raise ValueError(f"dci_mode must be one of {DCI_MODES}, got {dci_mode!r}")
        settings["dci_mode"] = dci_mode
    if settings["dci_mode"] not in DCI_MODES:
        raise ValueError(f"dci_mode must be one of {DCI_MODES}, got {settings['dci_mode']!r}")
    settings.update(
        fvm_index_fix=True,
        dci_gbt_params=dict(GBT_PARAMS if settings["dci_mode"] == "exact" else FAST_GBT_PARAMS),
        sap_svc_params=dict(SVC_PARAMS),
        logistic_params=dict(LOGISTIC_PARAMS),
        chunk_size=CHUNK_SIZE,
    )
    return settings


def representation_metrics(
    data: Any,
    represent: Represent,
    rng: np.random.Generator,
    profile: str = "quick",
    *,
    dci_mode: str | None = None,
    n_jobs: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, float]:
    """All representation scores of one encoder on one ground-truth dataset.

    One train set and one test set (train drawn first) are encoded once and shared by MIG (train
    set), SAP, DCI and Modularity/Explicitness; FactorVAE and BetaVAE draw their own votes. Each
    consumer gets its own Generator seeded from ``rng``, so adding or resizing one metric does not
    change the samples of another. ``n_jobs`` parallelises the K per-factor DCI fits (same numbers
    as serial; SAP's tiny one-feature fits stay serial: process start-up costs more than they
    do). ``overrides`` changes single settings of the profile; :func:`metric_settings` with the
    same arguments gives the resolved settings to store beside the scores.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a np.random.Generator, got {type(rng).__name__}")
    s = metric_settings(profile, dci_mode=dci_mode, overrides=overrides)
    seeds = rng.integers(0, 2**63 - 1, size=6)
    sample_rng, sap_rng, dci_rng, mod_rng, fvm_rng, bvae_rng = (
        np.random.default_rng(int(seed)) for seed in seeds
    )
    codes_tr, factors_tr = sample_codes(data, represent, s["num_train"], sample_rng)
    codes_te, factors_te = sample_codes(data, represent, s["num_test"], sample_rng)
    split = (codes_tr, factors_tr, codes_te, factors_te)
    scores: dict[str, float] = {}
    scores.update(mig(codes_tr, factors_tr, num_bins=s["num_bins"]))
    scores.update(sap(*split, continuous_factors=s["sap_continuous_factors"], random_state=sap_rng))
    scores.update(
        dci(
            *split,
            mode=s["dci_mode"],
            random_state=dci_rng,
            n_jobs=n_jobs,
        )
    )
    scores.update(modularity_explicitness(*split, random_state=mod_rng, num_bins=s["num_bins"]))
    scores.update(
        factor_vae_score(
            data,
            represent,
            fvm_rng,
            batch_size=s["fvm_batch_size"],
            num_train=s["fvm_num_train"],
            num_eval=s["fvm_num_eval"],
            num_variance_estimate=s["fvm_num_variance_estimate"],
            prune_threshold=s["fvm_prune_threshold"],
        )
    )
    scores.update(
        beta_vae_score(
            data,
            represent,
            bvae_rng,
            batch_size=s["betavae_batch_size"],
            num_train=s["betavae_num_train"],
            num_eval=s["betavae_num_eval"],
        )
    )
    return scores
