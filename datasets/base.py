"""The ground-truth data interface shared by real-file loaders and procedural look-alikes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class GroundTruthData(ABC):
    """A full Cartesian factor grid with row-major indexing (last factor fastest).

    ``factors`` are always int64 factor *indices* of shape (n, K); ``observations`` are uint8
    images of shape (n, H, W, C). Every random choice comes from an explicit Generator.

    A subclass sets the grid's three attributes below: as class attributes where they are fixed,
    ``factor_sizes`` in ``__init__`` where the caller picks a subset of the grid.
    """

    name: str = "ground-truth"
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    observation_shape: tuple[int, int, int]  # (H, W, C) of one observation

    @abstractmethod
    def observations(self, factors: np.ndarray) -> np.ndarray:
        """Images for factor indices (n, K): uint8 (n, H, W, C)."""

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    @property
    def size(self) -> int:
        return int(np.prod(self.factor_sizes))

    @property
    def factor_strides(self) -> tuple[int, ...]:
        sizes = self.factor_sizes
        return tuple(int(np.prod(sizes[i + 1 :])) for i in range(len(sizes)))

    def identity(self) -> dict[str, object]:
        """What identifies this data for caching (name, grid and source)."""
        return {"name": self.name, "factor_sizes": list(self.factor_sizes)}

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform factor indices, int64 (num, K), one vectorised draw per factor."""
        cols = [rng.integers(0, size, size=num) for size in self.factor_sizes]
        return np.stack(cols, axis=1).astype(np.int64) if cols else np.zeros((num, 0), np.int64)

    def sample(self, num: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        factors = self.sample_factors(num, rng)
        return factors, self.observations(factors)

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        factors = self.check_factors(factors)
        return np.ravel_multi_index(tuple(factors.T), self.factor_sizes).astype(np.int64)

    def index_to_factors(self, index: np.ndarray | Sequence[int]) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.size):
            raise ValueError(f"{self.name}: index out of range [0, {self.size})")
        return np.stack(np.unravel_index(index, self.factor_sizes), axis=-1).astype(np.int64)

    def check_factors(self, factors: np.ndarray) -> np.ndarray:
        """Validate an (n, K) integer factor-index array and return it as int64."""
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != self.num_factors:
            raise ValueError(
                f"{self.name}: factors must have shape (n, {self.num_factors}), got {factors.shape}"
            )
        if not np.issubdtype(factors.dtype, np.integer):
            raise ValueError(f"{self.name}: factors must be integer indices, got {factors.dtype}")
        sizes = np.asarray(self.factor_sizes)
        if factors.size and ((factors < 0).any() or (factors >= sizes).any()):
            raise ValueError(f"{self.name}: factor index out of range for sizes {tuple(sizes)}")
        return factors.astype(np.int64, copy=False)
