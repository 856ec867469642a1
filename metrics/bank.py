"""The sample bank every registered metric draws from: ground truth + encoder + shared sets.

``data`` is duck typed like :class:`datasets.base.GroundTruthData` (``factor_sizes``,
``sample_factors(n, rng)``, ``observations(factors) -> uint8 (n, H, W, C)``); ``represent`` maps
such a uint8 batch to float codes (n, D). The i.i.d. train and test sets (``num_train`` and
``num_test`` factor draws, train first) are rendered and encoded once, on first use, and shared by
every metric that scores codes against factors (MIG, SAP, DCI, Modularity); metrics that need
structured samples (FactorVAE and BetaVAE votes) encode their own through :meth:`encode`.
Everything is encoded in chunks of ``chunk_size`` images with all factors drawn up front, so the
numbers do not depend on the chunk size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from metrics._common import check_codes, warn_degenerate

Represent = Callable[[np.ndarray], Any]
CHUNK_SIZE = 256


@dataclass(frozen=True)
class BankSettings:
    """Sizes of the shared i.i.d. sets (the reference study's: 10,000 train, 5,000 test)."""

    num_train: int = 10000
    num_test: int = 5000

    def __post_init__(self) -> None:
        if self.num_train < 1 or self.num_test < 1:
            raise ValueError(f"num_train and num_test must be >= 1, got {self.num_train}, "
                             f"{self.num_test}")


BANK_PROFILES: dict[str, dict[str, Any]] = {"quick": {"num_train": 3000, "num_test": 1500}}


def check_data(data: Any) -> tuple[int, ...]:
    """The factor sizes of ``data``; a clear error if it is not ground-truth data."""
    for attr in ("factor_sizes", "sample_factors", "observations"):
        if not hasattr(data, attr):
            raise ValueError(f"data must provide {attr!r} like datasets.base.GroundTruthData")
    sizes = tuple(int(s) for s in data.factor_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"data.factor_sizes must be positive, got {sizes}")
    return sizes


def chunks(num: int, size: int) -> Iterator[slice]:
    for start in range(0, num, size):
        yield slice(start, min(start + size, num))


def encode(
    data: Any, represent: Represent, factors: np.ndarray, *, chunk_size: int = CHUNK_SIZE
) -> np.ndarray:
    """Render ``factors`` (n, K) and encode them in chunks: float64 codes (n, D)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    parts = []
    for rows in chunks(factors.shape[0], chunk_size):
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
    check_data(data)
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    factors = np.asarray(data.sample_factors(num, rng), dtype=np.int64)
    return encode(data, represent, factors, chunk_size=chunk_size), factors


def varying_factors(sizes: tuple[int, ...], metric: str) -> np.ndarray:
    """Indices of factors with more than one value (a single-valued one is never fixed)."""
    varying = np.flatnonzero(np.array(sizes) > 1)
    if varying.size == 0:
        raise ValueError(f"{metric}: every factor has a single value; nothing to score")
    if varying.size < len(sizes):
        skipped = np.flatnonzero(np.array(sizes) == 1).tolist()
        warn_degenerate(f"{metric}: factors {skipped} have a single value and are never fixed")
    return varying


class SampleBank:
    """Ground truth + encoder + the shared train/test sets (encoded lazily, once)."""

    def __init__(self, data: Any, represent: Represent, settings: BankSettings,
                 rng: np.random.Generator, *, chunk_size: int = CHUNK_SIZE,
                 n_jobs: int | None = None) -> None:
        self.factor_sizes = check_data(data)
        self.data = data
        self.represent = represent
        self.settings = settings
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self._rng = rng

    @cached_property
    def _split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        train = sample_codes(self.data, self.represent, self.settings.num_train, self._rng,
                             chunk_size=self.chunk_size)
        test = sample_codes(self.data, self.represent, self.settings.num_test, self._rng,
                            chunk_size=self.chunk_size)
        return (*train, *test)

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes (num_train, D), factors (num_train, K))."""
        return self._split[0], self._split[1]

    @property
    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(codes_train, factors_train, codes_test, factors_test)."""
        return self._split

    def encode(self, factors: np.ndarray) -> np.ndarray:
        """Render and encode arbitrary factor rows (n, K) with the bank's chunking."""
        return encode(self.data, self.represent, factors, chunk_size=self.chunk_size)
