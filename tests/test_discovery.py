"""Discovery metrics: hand-made R matrices, the edit/predict sampler and edit-scale calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy_generators import LinearToyGenerator, PixelAttributeGenerator

from methods.directions import Directions
from metrics.discovery import (
    CalibrationConfig,
    DiscoveryConfig,
    attribute_changes,
    calibrate_scales,
    discovery_metrics,
    discovery_scores,
    normalise_rows,
    score_matrix,
)


def test_permutation_matrix_is_perfect() -> None:
    r = np.eye(5)[[3, 0, 4, 1, 2]] * np.array([[2.0], [0.5], [1.0], [7.0], [3.0]])
    scores = discovery_scores(r)
    assert scores == {"disentanglement_score": 1.0, "attribute_count": 5.0}


def test_identical_rows_count_one_attribute() -> None:
    r = np.tile([0.2, 0.9, 0.3], (4, 1))
    scores = discovery_scores(r)
    assert scores["attribute_count"] == 1.0
    assert scores["disentanglement_score"] == pytest.approx(1 - 0.3 / 0.9)


def test_mixed_example_by_hand() -> None:
    r = np.array([[2.0, 1.0, 0.0], [0.1, 0.4, 0.3], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])
    # normalised rows: [1, .5, 0] gap .5; [.25, 1, .75] gap .25; [1, 1, 1] gap 0; zero row gap 0
    scores = discovery_scores(r)
    assert scores["disentanglement_score"] == pytest.approx((0.5 + 0.25 + 0.0 + 0.0) / 4)
    assert scores["attribute_count"] == 2.0  # argmaxes 0, 1, 0 (tie -> first); zero row none


def test_bad_r_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        discovery_scores(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        discovery_scores(np.array([[-1.0, 1.0]]))
    with pytest.raises(ValueError, match="2 attribute"):
        discovery_scores(np.ones((3, 1)))
    assert np.array_equal(normalise_rows(np.zeros((1, 2))), np.zeros((1, 2)))


def test_attribute_change_total_variation_and_meandiff() -> None:
    plus = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.7, 0.2])]
    minus = [np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0.2, 0.7])]
    changes, diffs = attribute_changes(plus, minus)
    assert np.allclose(changes, [[1.0, 0.5], [1.0, 0.5]])  # TV of a flip is 1
    assert np.allclose(diffs.mean(0), 0.0)  # opposite changes cancel in the mean difference


def _pixel_predict(images: torch.Tensor) -> list[np.ndarray]:
    """One scalar attribute per image channel (the PixelAttributeGenerator's W coordinates)."""
    flat = images.reshape(images.shape[0], -1).numpy()
    return [flat[:, i] for i in range(flat.shape[1])]


def test_sampler_scores_axis_directions_perfect_and_mixed_ones_zero() -> None:
    gen = PixelAttributeGenerator(w_dim=4, num_ws=2)
    w = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    axis = Directions.from_w(w, num_ws=2, scale=torch.tensor([0.5, 1.0, 2.0]))
    mixed = Directions.from_w(torch.tensor([[1.0, 1.0, 0, 0], [0, 2.0, 0, 2.0]]), num_ws=2)
    config = DiscoveryConfig(num_samples=20, batch_size=8, num_directions=30)
    r = score_matrix(gen, axis, _pixel_predict, config)
    assert r["absdiff"].shape == (3, 4)
    assert np.allclose(r["absdiff"], np.diag([1.0, 2.0, 4.0])[:, [0, 0, 1, 2]] * [1, 0, 1, 1])
    scores = discovery_metrics(r)
    assert scores["disentanglement_score"] == 1.0 and scores["attribute_count"] == 3.0
    assert scores["disentanglement_score_meandiff"] == 1.0
    mixed_scores = discovery_metrics(score_matrix(gen, mixed, _pixel_predict, config))
    assert mixed_scores["disentanglement_score"] == pytest.approx(0.0, abs=1e-6)


def test_sampler_is_seeded_and_limits_rows() -> None:
    gen = LinearToyGenerator(w_dim=6, num_ws=2, resolution=2, seed=1)
    dirs = Directions.from_w(torch.eye(6), num_ws=2)

    def predict(images: torch.Tensor) -> list[np.ndarray]:
        flat = torch.tanh(images.reshape(images.shape[0], -1)).numpy()
        return [flat[:, :2], flat[:, 2]]

    config = DiscoveryConfig(num_samples=10, batch_size=4, num_directions=4)
    a = score_matrix(gen, dirs, predict, config)
    b = score_matrix(gen, dirs, predict, config)
    assert a["absdiff"].shape == (4, 2)
    assert np.array_equal(a["absdiff"], b["absdiff"])
    assert np.all(a["meandiff"] <= a["absdiff"] + 1e-12)  # |mean| <= mean |.|


def test_calibration_hits_pixel_target_on_linear_toy() -> None:
    gen = LinearToyGenerator(w_dim=8, num_ws=3, resolution=4, seed=2)
    w = torch.eye(8)[:3]
    dirs = Directions.from_w(w, num_ws=3, layers=[0, 1], scale=torch.tensor([5.0, 1.0, 0.1]),
                             meta={"method": "toy"})
    config = CalibrationConfig(target_pixel_change=0.05, num_samples=4, spread_samples=500)
    out = calibrate_scales(gen, dirs, config)
    cal = out.meta["calibration"]
    assert np.allclose(cal["achieved_pixel_change"], 0.05, rtol=0.01)
    # linear generator: pixel change = s * mean |M d| exactly
    for j in range(3):
        expected = 0.05 / float((gen.synthesize(dirs.vectors[j : j + 1]).abs()).mean())
        assert float(out.scale[j]) == pytest.approx(expected, rel=0.01)
    assert out.meta["native_scale"] == pytest.approx([5.0, 1.0, 0.1])
    assert not any(cal["capped"])
    assert cal["mean_w_plus_displacement"] == pytest.approx(
        float((out.scale * 2 ** 0.5).mean()), rel=1e-5)  # unit W vector on 2 rows


def test_calibration_caps_a_direction_that_changes_nothing() -> None:
    gen = LinearToyGenerator(w_dim=4, num_ws=2, resolution=2, seed=3)
    gen.synthesis_matrix[:, 0] = 0.0  # W+ row 0, coordinate 0 is invisible
    gen.synthesis_matrix[:, 4] = 0.0  # W+ row 1, coordinate 0 is invisible
    dirs = Directions.from_w(torch.eye(4)[:2], num_ws=2)
    config = CalibrationConfig(target_pixel_change=0.05, num_samples=4, max_displacement=1.5,
                               spread_samples=500)
    out = calibrate_scales(gen, dirs, config)
    cal = out.meta["calibration"]
    assert cal["capped"] == [True, False]
    assert float(out.scale[0]) == pytest.approx(1.5 * cal["w_spread"], rel=1e-5)
    assert cal["achieved_pixel_change"][0] == 0.0


@pytest.mark.parametrize("curve", [lambda s: 0.3 * s, lambda s: 2.0 * s**2,
                                   lambda s: float(np.tanh(s)) * 0.5, lambda s: s**0.5])
def test_scale_solver_converges_on_monotone_curves(curve) -> None:
    from metrics.discovery import _solve_scale

    config = CalibrationConfig(target_pixel_change=0.1, tolerance=0.01, max_evaluations=12)
    s, f, capped, evals = _solve_scale(curve, 0.1, cap=100.0, config=config)
    assert not capped and abs(f / 0.1 - 1) <= 0.01 and curve(s) == pytest.approx(f)
    assert evals <= 8


def test_scale_solver_reports_cap() -> None:
    from metrics.discovery import _solve_scale

    config = CalibrationConfig(target_pixel_change=0.1)
    s, f, capped, _ = _solve_scale(lambda s: 1e-4 * s, 0.1, cap=50.0, config=config)
    assert capped and s == 50.0 and f == pytest.approx(5e-3)
