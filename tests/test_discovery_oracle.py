"""Known answers on the ``shapes3d-oracle`` generator, whose factor directions are known."""

from __future__ import annotations

import pytest
import torch
from toy_generators import bundle_of

from methods.ganspace import GANSpaceConfig, run_ganspace
from methods.random_dirs import RandomConfig, run_random
from methods.sefa import SeFaConfig, run_sefa
from metrics.discovery import CalibrationConfig, calibrate_scales

oracle = pytest.importorskip("models.oracle")


@pytest.fixture(scope="module")
def generator():
    return oracle.load_oracle_generator(seed=0)


def _matched_cos(dirs, truth: torch.Tensor) -> torch.Tensor:
    """|cos| between direction i (W part of its first edited row) and true factor direction i."""
    v = dirs.vectors[: truth.shape[0], 0].double()
    v = v / v.norm(dim=1, keepdim=True)
    return (v * truth.double()).sum(1).abs()


def test_ganspace_and_sefa_find_the_factor_directions_random_does_not(generator) -> None:
    truth = generator.true_directions()
    bundle = bundle_of(generator)
    ganspace = run_ganspace(bundle, GANSpaceConfig(num_directions=6, num_samples=4000,
                                                   batch_size=1000), seed=0)
    sefa = run_sefa(bundle, SeFaConfig(num_directions=6), seed=0)
    rand = run_random(bundle, RandomConfig(num_directions=6), seed=0)
    g_cos, s_cos, r_cos = (_matched_cos(d, truth) for d in (ganspace, sefa, rand))
    assert float(g_cos.mean()) > 0.95, g_cos
    assert float(s_cos.mean()) > 0.99, s_cos
    best_random = (rand.vectors[:, 0].double() @ truth.double().T).abs().amax(dim=1)
    assert float(best_random.mean()) < 0.6
    assert float(g_cos.mean()) > float(best_random.mean()) + 0.35


def test_calibration_reaches_target_on_the_oracle(generator) -> None:
    truth = generator.true_directions()
    from methods.directions import Directions

    dirs = Directions.from_w(truth[:3], generator.num_ws)
    config = CalibrationConfig(target_pixel_change=0.08, num_samples=6, spread_samples=500)
    out = calibrate_scales(generator, dirs, config)
    cal = out.meta["calibration"]
    for achieved, capped in zip(cal["achieved_pixel_change"], cal["capped"], strict=True):
        assert capped or abs(achieved / 0.08 - 1) <= 0.05
    assert max(cal["evaluations"]) <= config.max_evaluations
