"""Ground-truth data (real files and procedural look-alikes) and dataset bundles.

Two registries:
- ``GROUND_TRUTH``: factories ``(data_dir: str | None) -> GroundTruthData``.
- ``BUNDLES``: the grid's dataset axis, factories ``(data_dir: str | None) -> Bundle``.
"""

from __future__ import annotations

from collections.abc import Callable

from core.registry import Registry
from datasets.base import GroundTruthData
from datasets.bundle import Bundle

GROUND_TRUTH: Registry[Callable[..., GroundTruthData]] = Registry("ground-truth data")
BUNDLES: Registry[Callable[..., Bundle]] = Registry("dataset")


def load_ground_truth(name: str, data_dir: str | None = None) -> GroundTruthData:
    """Build registered ground-truth data by name (``data_dir`` or $BENCH_DATA for real files)."""
    _import_builtin()
    return GROUND_TRUTH.get(name)(data_dir=data_dir)


def load_bundle(name: str, data_dir: str | None = None) -> Bundle:
    """Build a registered dataset bundle by name."""
    _import_builtin()
    return BUNDLES.get(name)(data_dir=data_dir)


def _import_builtin() -> None:
    """Import the modules whose import registers the built-in datasets."""
    import importlib

    for module in ("datasets.shapes3d", "datasets.dsprites", "datasets.bundles"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:  # a module not written yet registers nothing
            if err.name != module:
                raise


__all__ = ["BUNDLES", "GROUND_TRUTH", "Bundle", "GroundTruthData", "load_bundle",
           "load_ground_truth"]
