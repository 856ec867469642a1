"""Ground-truth data (real files and procedural look-alikes).

``GROUND_TRUTH``: factories ``(data_dir: str | None) -> GroundTruthData``. The grid's dataset
bundles (ground truth + generator + predictor) live in ``bench.planning.bundles``, above the models.
"""

from __future__ import annotations

from collections.abc import Callable

from core.registry import Registry
from datasets.base import GroundTruthData

# the built-ins: the modules whose import registers them, imported on the first lookup
GROUND_TRUTH: Registry[Callable[..., GroundTruthData]] = Registry(
    "ground-truth data",
    modules=("datasets.shapes3d", "datasets.dsprites", "datasets.mpi3d", "datasets.cars3d"))


def load_ground_truth(name: str, data_dir: str | None = None) -> GroundTruthData:
    """Build registered ground-truth data by name (``data_dir`` or $BENCH_DATA for real files)."""
    return GROUND_TRUTH.get(name)(data_dir=data_dir)


__all__ = ["GROUND_TRUTH", "GroundTruthData", "load_ground_truth"]
