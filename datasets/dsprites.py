"""dSprites ground truth: the real DeepMind npz (``dsprites``) and the look-alike
(``dsprites-synth``), registered in ``datasets.GROUND_TRUTH``."""

from __future__ import annotations

from datasets import GROUND_TRUTH
from datasets.dsprites_real import DSprites, resolve_dsprites_path
from datasets.dsprites_synth import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    FACTOR_VALUES,
    DSpritesSynth,
    factors_to_values,
    rasterise,
)


@GROUND_TRUTH.register(
    "dsprites-synth",
    description="procedural dSprites look-alike, factor grid (3,6,40,32,32), 64x64x1 0/255",
)
def dsprites_synth(data_dir: str | None = None) -> DSpritesSynth:
    """The procedural look-alike; ``data_dir`` is not used."""
    return DSpritesSynth()


@GROUND_TRUTH.register(
    "dsprites",
    description="DeepMind dSprites npz (real images), from --data-dir or $BENCH_DATA",
)
def dsprites(data_dir: str | None = None) -> DSprites:
    """The real file; FileNotFoundError (saying how to provide it) when it is absent."""
    return DSprites(data_dir)


__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "FACTOR_VALUES", "DSprites", "DSpritesSynth",
           "dsprites", "dsprites_synth", "factors_to_values", "rasterise",
           "resolve_dsprites_path"]
