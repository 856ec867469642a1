"""Guard on the shipped shapes3d generator: a cheap re-measure of its quality figures must stay
close to the figures committed in its asset JSON, so a worse generator cannot ship unnoticed."""

from __future__ import annotations

import json
import math

import pytest

from datasets import load_ground_truth
from models.predictor import SHAPES3D_PREDICTOR, load_predictor
from models.stylegan2 import load_generator
from training.quality import generator_quality

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

# Sampling noise of a TV distance between two histograms of n draws is about sqrt(K / (π n)):
# 0.05 for 15 classes at n = 2,000 (a 10,000-image figure carries about half of it).
N = 2000
TV_SLACK = 0.08
FRECHET_FACTOR = 1.5  # plus the reference Fréchet distance of two rendered sets at this n


@pytest.fixture(scope="module")
def committed_and_measured():
    from bench.planning.bundles import SHAPES3D_GENERATOR

    if not SHAPES3D_GENERATOR.is_file() or not SHAPES3D_PREDICTOR.is_file():
        pytest.skip("shipped generator or predictor absent")
    asset = json.loads(SHAPES3D_GENERATOR.with_suffix(".json").read_text(encoding="utf-8"))
    measured = generator_quality(load_generator(SHAPES3D_GENERATOR),
                                 load_predictor(SHAPES3D_PREDICTOR),
                                 load_ground_truth("shapes3d-synth"), n=N, seed=0, floor=False)
    return asset["quality"], measured


def test_every_factor_stays_near_its_committed_tv_distance(committed_and_measured) -> None:
    committed, measured = committed_and_measured
    for name, figures in committed["factors"].items():
        tv = measured["factors"][name]["tv_distance"]
        assert tv <= figures["tv_distance"] + TV_SLACK, (name, tv, figures["tv_distance"])


def test_frechet_distance_stays_near_the_committed_one(committed_and_measured) -> None:
    committed, measured = committed_and_measured
    bound = FRECHET_FACTOR * committed["frechet_distance"] + measured["reference"][
        "frechet_distance"]
    assert math.isfinite(measured["frechet_distance"])
    assert measured["frechet_distance"] <= bound, (measured["frechet_distance"], bound)
    # the guard can fail: the untrained floor committed beside the figures is far above it
    assert committed["floor"]["frechet_distance"] > bound


def test_shipped_assets_give_their_committed_outputs() -> None:
    """Generator, predictor and sensor outputs on a fixed batch equal the committed ones
    (tests/golden/make_shipped.py), so an asset replaced by accident is caught at once."""
    import sys
    from pathlib import Path

    import numpy as np

    golden = Path(__file__).resolve().parent / "golden"
    sys.path.insert(0, str(golden))
    try:
        from make_shipped import OUT, shipped_outputs
    finally:
        sys.path.remove(str(golden))
    expected = json.loads(OUT.read_text(encoding="utf-8"))
    got = shipped_outputs()
    assert np.allclose(got["images_8x8"], expected["images_8x8"], atol=1e-4)
    for g, e in zip(got["predictor"], expected["predictor"], strict=True):
        assert np.allclose(g, e, atol=1e-4)
    assert np.allclose(got["sensor_mean_abs"], expected["sensor_mean_abs"], rtol=1e-4)
