"""Discovery metrics: hand-made R matrices, the edit/predict sampler and edit-scale calibration."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from toy_generators import LinearToyGenerator, PixelAttributeGenerator

from metrics.discovery import (
    CalibrationConfig,
    DiscoveryConfig,
    attribute_changes,
    calibrate_scales,
    discovery_metrics,
    discovery_scores,
    fixed_scales,
    normalise_rows,
    score_matrix,
)
from models.directions import Directions


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


def test_fixed_edit_scale_is_the_notebooks_unit_rms_step() -> None:
    """ContraFeat's evaluate_model edits w +/- var_scale * d with d of unit second moment
    (normalize_2nd_moment over w_dim): a unit W vector in 8 dims has rms 1/sqrt(8), so its scale
    is e * sqrt(8) whatever its native scale; a W+ direction is normalised on its largest row."""
    gen = LinearToyGenerator(w_dim=8, num_ws=3, resolution=4, seed=2)
    dirs = Directions.from_w(torch.eye(8)[:2] * torch.tensor([[1.0], [3.0]]), num_ws=3,
                             scale=torch.tensor([5.0, 0.1]))
    uneven = torch.zeros(1, 3, 8)
    uneven[0, 0, 2], uneven[0, 2, 2] = 2.0, 1.0  # largest row: rms 2 / sqrt(8)
    dirs = Directions(torch.cat([dirs.vectors, uneven]), torch.tensor([5.0, 0.1, 1.0]))
    config = CalibrationConfig(num_samples=4, spread_samples=500)
    out = fixed_scales(gen, dirs, 2.0, config)
    root8 = 8 ** 0.5
    assert out.scale.tolist() == pytest.approx([2 * root8, 2 * root8 / 3, root8])
    edits = out.scale[:, None, None] * out.vectors  # every largest row moves by 2 rms units
    assert edits.pow(2).mean(dim=2).sqrt().amax(dim=1).tolist() == pytest.approx([2.0] * 3)
    cal = out.meta["calibration"]
    assert cal["edit_scale"] == 2.0 and cal["protocol"].startswith("fixed edit scale")
    assert out.meta["native_scale"] == pytest.approx([5.0, 0.1, 1.0])
    assert cal["capped"] == [False] * 3 and cal["evaluations"] == [1] * 3
    for j in range(3):  # linear generator: the pixel change of a step is s * mean |M d|
        expected = float(out.scale[j]) * float(gen.synthesize(dirs.vectors[j:j + 1]).abs().mean())
        assert cal["achieved_pixel_change"][j] == pytest.approx(expected, rel=1e-4)
    assert cal["w_plus_displacement"][0] == pytest.approx(2 * root8 * 3 ** 0.5, rel=1e-5)
    with pytest.raises(ValueError, match="edit_scale must be > 0"):
        fixed_scales(gen, dirs, 0.0, config)
    with pytest.raises(ValueError, match="all-zero"):
        fixed_scales(gen, Directions(torch.zeros(1, 3, 8), torch.ones(1)), 1.0, config)


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


def _solve_scale(
    change: Callable[[float], float], target: float, cap: float, config: CalibrationConfig
) -> tuple[float, float, bool, int]:
    """Drive the edit-scale search (a generator of scales) with a plain function, one
    evaluation at a time, as ``calibrate_scales`` drives it with the generator's images."""
    from metrics.discovery import _scale_search

    search = _scale_search(target, cap, config)
    s = next(search)
    while True:
        try:
            s = search.send(change(s))
        except StopIteration as done:
            return done.value


@pytest.mark.parametrize("curve", [lambda s: 0.3 * s, lambda s: 2.0 * s**2,
                                   lambda s: float(np.tanh(s)) * 0.5, lambda s: s**0.5])
def test_scale_solver_converges_on_monotone_curves(curve) -> None:
    config = CalibrationConfig(target_pixel_change=0.1, tolerance=0.01, max_evaluations=12)
    s, f, capped, evals = _solve_scale(curve, 0.1, cap=100.0, config=config)
    assert not capped and abs(f / 0.1 - 1) <= 0.01 and curve(s) == pytest.approx(f)
    assert evals <= 8


def test_scale_solver_reports_cap() -> None:
    config = CalibrationConfig(target_pixel_change=0.1)
    s, f, capped, _ = _solve_scale(lambda s: 1e-4 * s, 0.1, cap=50.0, config=config)
    assert capped and s == 50.0 and f == pytest.approx(5e-3)


def _searched(change, target: float, cap: float, **config) -> tuple[list[float], tuple]:
    """Every s the edit-scale search tries on ``change`` and what it returns."""
    tried: list[float] = []

    def recorded(s: float) -> float:
        tried.append(s)
        return change(s)

    return tried, _solve_scale(recorded, target, cap, CalibrationConfig(**config))


def test_scale_search_steps_known_answers() -> None:
    """The search's s sequence on curves where each step is known by hand: first s = cap / 16;
    one point -> linear secant; two points -> log-log secant when the slope is in [0.2, 5]
    (else linear); a proposal outside a two-sided bracket -> its geometric mean; a zero change
    -> x16; a point at the cap below target -> capped."""
    assert _searched(lambda s: 0.01 * s, 0.04, 16.0) == ([1.0, 4.0], (4.0, 0.04, False, 2))
    assert _searched(lambda s: 100 * s, 0.04, 16.0) == ([1.0, 0.0004], (0.0004, 0.04, False, 2))
    assert _searched(lambda s: 0.001 * s, 0.04, 16.0) == ([1.0, 16.0], (16.0, 0.016, True, 2))
    # cubic: slope 3 from (1, 0.01) and (4, 0.64) -> 4 * (1/16) ** (1/3)
    tried, (s, f, capped, count) = _searched(lambda s: 0.01 * s**3, 0.04, 16.0)
    assert tried == pytest.approx([1.0, 4.0, 4 * 16 ** (-1 / 3)], rel=1e-12)
    assert (capped, count) == (False, 3) and f == pytest.approx(0.04)
    # slope exactly 5 is used: 2 * (1/16) ** (1/5) = 2 ** (1/5)
    tried, _ = _searched(lambda s: 0.02 * s**5, 0.04, 16.0)
    assert tried == pytest.approx([1.0, 2.0, 2 ** 0.2], rel=1e-12)
    # slope 8 (and 5.5) is not: linear proposals leave the bracket -> geometric means
    tried, (_, _, _, count) = _searched(lambda s: 0.01 * s**8, 0.04, 16.0)
    assert tried == pytest.approx([1.0, 4.0, 2.0, 2**0.5, 2**0.25], rel=1e-12) and count == 5
    tried, _ = _searched(lambda s: 0.01 * s**5.5, 0.04, 16.0)
    assert tried[:4] == pytest.approx([1.0, 4.0, 2.0, 2**0.5], rel=1e-12)
    # ... and when the evaluations run out, the point closest to the target is returned (here
    # neither the smallest s nor the smallest change)
    _, result = _searched(lambda s: 0.01 * s**5.5, 0.04, 16.0, max_evaluations=4)
    assert result == pytest.approx((2**0.5, 0.01 * 2**2.75, False, 4), rel=1e-12)
    # zero change below s = 8: x16 from a zero point, geometric means of the bracket after it;
    # the search runs out and returns the closest point tried (0.4 with change 0, the first
    # of the two points 0.04 from the target), not capped
    tried, result = _searched(lambda s: 0.0 if s < 8 else 0.1 * s, 0.04, 1024.0,
                              max_evaluations=6)
    hi = [(6.4 * 64) ** 0.5]
    hi += [(6.4 * hi[-1]) ** 0.5, (6.4 * (6.4 * hi[-1]) ** 0.5) ** 0.5]
    assert tried == pytest.approx([64.0, 0.4, 6.4, *hi], rel=1e-12)
    assert result == pytest.approx((0.4, 0.0, False, 6), rel=1e-12)
    # tolerance is inclusive: |0.75 / 0.5 - 1| = 0.5
    assert _searched(lambda s: 0.75, 0.5, 16.0, tolerance=0.5) == ([1.0], (1.0, 0.75, False, 1))
    # a constant change short of the target: x16 (capped at the cap) and reported as capped
    assert _searched(lambda s: 0.0, 0.04, 1024.0)[0] == [64.0, 1024.0]


def test_discovery_core_known_answers_and_messages() -> None:
    """normalise_rows / discovery_scores / attribute_changes / group_change: exact values,
    float64 results from integer, float32 and torch inputs, and their messages."""
    normed = normalise_rows(np.array([[2, 1], [0, 0]]))
    assert normed.dtype == np.float64 and np.array_equal(normed, [[1.0, 0.5], [0.0, 0.0]])
    for bad in (np.ones(3), np.ones((0, 2)), np.ones((2, 0))):
        with pytest.raises(ValueError, match=r"^R must be 2-D \[directions, attributes\], "
                                             rf"non-empty; got \({bad.shape[0]},"):
            normalise_rows(bad)
    with pytest.raises(ValueError, match="^R contains NaN or inf$"):
        normalise_rows(np.array([[np.inf, 1.0]]))
    with pytest.raises(ValueError, match=r"^R must be non-negative \(it holds magnitudes of "
                                         r"attribute changes\)$"):
        normalise_rows(np.array([[1.0, -0.5]]))
    with pytest.raises(ValueError, match="^R needs at least 2 attribute columns, got 1$"):
        discovery_scores(np.ones((2, 1)))
    # two columns; a zero row counts for no attribute (its argmax would be column 0)
    assert discovery_scores(np.array([[0.0, 0.0], [0.0, 3.0]])) == {
        "disentanglement_score": 0.5, "attribute_count": 1.0}

    from metrics.discovery import group_change

    widths = [1, 2]
    assert np.array_equal(group_change(np.array([-0.25, 0.25, -0.5]), widths), [0.25, 0.375])
    out = group_change(np.array([-0.5, 0.25, -0.5], dtype=np.float32), widths)
    assert out.dtype == np.float64 and np.array_equal(out, [0.5, 0.375])
    plus = [torch.tensor([0.5, 0.25]), torch.tensor([[1.0, 0.0], [0.5, 0.5]])]
    minus = [torch.tensor([0.25, 0.75]), torch.tensor([[0.0, 1.0], [0.5, 0.5]])]
    changes, diffs = attribute_changes(plus, minus)
    assert changes.dtype == np.float64 and np.array_equal(changes, [[0.25, 1.0], [0.5, 0.0]])
    assert np.array_equal(diffs, [[0.25, 1.0, -1.0], [-0.5, 0.0, 0.0]])
    message = "^predictor outputs of the two edits must be non-empty and aligned$"
    for a, b in (([], []), (plus, minus[:1]), (plus[:1], minus)):
        with pytest.raises(ValueError, match=message):
            attribute_changes(a, b)


class _Counter:
    def __init__(self) -> None:
        self.steps: list[int] = []

    def update(self, n: int) -> None:
        self.steps.append(n)


def test_discovery_metrics_keys_and_progress() -> None:
    """Both R variants reach their keys; the sampler and the calibration advance a progress bar
    once per direction."""
    absdiff = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]])
    meandiff = np.array([[1.0, 0.5, 0.0], [1.0, 0.0, 0.0]])
    assert discovery_metrics({"absdiff": absdiff, "meandiff": meandiff}) == {
        "disentanglement_score": 0.75, "attribute_count": 2.0,
        "disentanglement_score_meandiff": 0.75, "attribute_count_meandiff": 1.0}
    gen = PixelAttributeGenerator(w_dim=4, num_ws=2)
    dirs = Directions.from_w(torch.eye(4)[:3], num_ws=2)
    bar = _Counter()
    score_matrix(gen, dirs, _pixel_predict, DiscoveryConfig(num_samples=4, batch_size=4),
                 progress=bar)
    assert bar.steps == [1, 1, 1]
    bar = _Counter()
    calibrate_scales(gen, dirs, CalibrationConfig(num_samples=4, spread_samples=100),
                     progress=bar)
    assert bar.steps == [1, 1, 1]
