"""The built-in dataset bundles (the grid's dataset axis)."""

from __future__ import annotations

import os

from datasets import BUNDLES, load_ground_truth
from datasets.bundle import Bundle


@BUNDLES.register(
    "shapes3d-synth",
    description="procedural 3DShapes look-alike (embedded, no download)",
)
def shapes3d_synth(data_dir: str | None = None) -> Bundle:
    gt = load_ground_truth("shapes3d-synth")
    return Bundle("shapes3d-synth", ground_truth=gt, identity={"ground_truth": gt.identity()})


@BUNDLES.register(
    "dsprites-synth",
    description="procedural dSprites look-alike (embedded, no download)",
)
def dsprites_synth(data_dir: str | None = None) -> Bundle:
    gt = load_ground_truth("dsprites-synth")
    return Bundle("dsprites-synth", ground_truth=gt, identity={"ground_truth": gt.identity()})


def real_data_dir(data_dir: str | None) -> str | None:
    """The user's data folder: ``--data-dir`` first, then $BENCH_DATA."""
    return data_dir or os.environ.get("BENCH_DATA") or None
