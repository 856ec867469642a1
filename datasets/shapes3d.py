"""3DShapes ground truth: the real DeepMind file (``shapes3d``) and the look-alike
(``shapes3d-synth``), registered in ``datasets.GROUND_TRUTH``."""

from __future__ import annotations

from datasets import GROUND_TRUTH
from datasets.shapes3d_real import Shapes3D, resolve_shapes3d_path
from datasets.shapes3d_synth import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    FACTOR_VALUES,
    Shapes3DSynth,
    factors_to_values,
    values_to_factors,
)


@GROUND_TRUTH.register(
    "shapes3d-synth",
    description="procedural 3DShapes look-alike, exact factor grid (10,10,10,8,4,15), 64x64 RGB",
)
def shapes3d_synth(data_dir: str | None = None) -> Shapes3DSynth:
    """The procedural look-alike; ``data_dir`` is not used (maps live in the cache folder)."""
    return Shapes3DSynth()


@GROUND_TRUTH.register(
    "shapes3d",
    description="DeepMind 3dshapes.h5 (real images), read lazily from --data-dir or $BENCH_DATA",
)
def shapes3d(data_dir: str | None = None) -> Shapes3D:
    """The real file; FileNotFoundError (saying how to provide it) when it is absent."""
    return Shapes3D(data_dir)


__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "FACTOR_VALUES", "Shapes3D", "Shapes3DSynth",
           "factors_to_values", "resolve_shapes3d_path", "shapes3d", "shapes3d_synth",
           "values_to_factors"]
