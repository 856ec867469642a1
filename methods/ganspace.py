"""GANSpace (Härkönen et al. 2020) in W: principal components of mapped latents.

PCA runs on w = mapping(z), z ~ N(0, I), no truncation. The covariance is accumulated in one
streaming pass in float64 (shifted by the first batch's mean against cancellation) and
eigendecomposed with a symmetric solver. Unlike GANSpace's IncrementalPCA this is exact for the
samples drawn, deterministic and needs only O(w_dim^2) memory. Components are ordered by variance;
each is unit-norm with a deterministic sign, and its native edit unit (``scale``) is the std of the
projections onto it (GANSpace's ``lat_stdev``; here taken from the same samples, not 5,000 fresh
ones). Edits go to the W+ rows ``[layer_start, layer_end)`` (all rows by default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import torch

from core.config import check_ranges
from core.progress import BarFactory, open_bar
from methods.base import register_method
from models.bundle import Bundle
from models.directions import Directions, orient_signs
from models.sampling import sample_w


@dataclass(frozen=True)
class GANSpaceConfig:
    """Paper settings: 1,000,000 samples (GANSpace README), 80 components (its CLI default)."""

    num_directions: int = 80
    num_samples: int = 1_000_000
    batch_size: int = 10_000
    layer_start: int | None = None
    layer_end: int | None = None

    RANGES: ClassVar[dict[str, str]] = {
        "num_directions": "[1, inf)", "num_samples": "[2, inf)", "batch_size": "[1, inf)",
        "layer_start": "[0, inf)", "layer_end": "[1, inf)"}

    def __post_init__(self) -> None:
        check_ranges(self)


class StreamingCovariance:
    """Mean and covariance of a stream of row batches, accumulated in float64."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.count = 0
        self.shift: np.ndarray | None = None
        self.total = np.zeros(dim)
        self.outer = np.zeros((dim, dim))

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64)
        if batch.ndim != 2 or batch.shape[1] != self.dim:
            raise ValueError(f"expected rows of width {self.dim}, got shape {batch.shape}")
        if self.shift is None:
            self.shift = batch.mean(axis=0)
        centred = batch - self.shift
        self.total += centred.sum(axis=0)
        self.outer += centred.T @ centred
        self.count += batch.shape[0]

    @property
    def mean(self) -> np.ndarray:
        if self.shift is None:
            raise ValueError("no samples accumulated")
        return self.shift + self.total / self.count

    def covariance(self) -> np.ndarray:
        if self.count < 2:
            raise ValueError(f"need at least 2 samples for a covariance, got {self.count}")
        mean_c = self.total / self.count
        cov = (self.outer - self.count * np.outer(mean_c, mean_c)) / (self.count - 1)
        return (cov + cov.T) / 2


def principal_components(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a covariance, sorted by eigenvalue descending: (values [d], vectors [d, d])."""
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    return np.clip(values[order], 0.0, None), vectors[:, order].T


def layer_range(start: int | None, end: int | None, num_ws: int) -> list[int]:
    """The W+ rows of the half-open range ``[start, end)``; None means the first / last row."""
    lo = 0 if start is None else int(start)
    hi = num_ws if end is None else int(end)
    if not 0 <= lo < hi <= num_ws:
        raise ValueError(f"layer range [{start}, {end}) is empty or outside [0, {num_ws})")
    return list(range(lo, hi))


def run_ganspace(
    bundle: Bundle, config: GANSpaceConfig, seed: int, progress: BarFactory | None = None
) -> Directions:
    generator = bundle.generator
    rows = layer_range(config.layer_start, config.layer_end, generator.num_ws)
    rng = torch.Generator().manual_seed(int(seed))
    stats = StreamingCovariance(generator.w_dim)
    bar = open_bar(progress, config.num_samples, "ganspace: PCA of W")
    for w in sample_w(generator, config.num_samples, rng, batch=config.batch_size):
        stats.update(w.numpy())
        bar.update(w.shape[0])
    bar.close()
    values, components = principal_components(stats.covariance())
    k = min(config.num_directions, generator.w_dim)  # at most w_dim orthogonal directions
    vectors = orient_signs(torch.from_numpy(components[:k].copy()))
    std = np.sqrt(values[:k])
    total = float(values.sum())
    meta = {
        "method": "ganspace",
        "config": asdict(config),
        "seed": int(seed),
        "native_unit": "one standard deviation of w along the component",
        "names": [f"pc{i}" for i in range(k)],
        "layers": rows,
        "variance": values[:k].tolist(),
        "variance_ratio": (values[:k] / total if total > 0 else values[:k] * 0).tolist(),
        "w_mean": stats.mean.tolist(),
        "num_samples": stats.count,
    }
    return Directions.from_w(
        vectors, generator.num_ws, layers=rows, scale=torch.from_numpy(std), meta=meta
    )


# registered by a call, not a decorator: mutmut leaves decorated functions unmutated
register_method(
    "ganspace",
    description="GANSpace: PCA of W (Härkönen et al. 2020), edits in component-std units",
    kind="directions",
    config_cls=GANSpaceConfig,
    profiles={"quick": {"num_directions": 10, "num_samples": 20_000, "batch_size": 5_000}},
    requires=("generator",),
    load_output=Directions.load,
)(run_ganspace)
