"""Known-answer tests of the dSprites factor grid and the ``dsprites-synth`` rasteriser."""

from __future__ import annotations

import numpy as np
import pytest

from datasets import load_ground_truth
from datasets.dsprites_synth import (
    ORIENTATION_VALUES,
    POSITION_VALUES,
    SCALE_VALUES,
    DSpritesSynth,
    factors_to_values,
    latents,
    rasterise,
)


@pytest.fixture(scope="module")
def synth() -> DSpritesSynth:
    return load_ground_truth("dsprites-synth")


def test_grid_sizes_strides_and_values(synth: DSpritesSynth) -> None:
    assert synth.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert synth.factor_sizes == (3, 6, 40, 32, 32)
    assert synth.factor_strides == (245760, 40960, 1024, 32, 1)
    assert synth.size == 737280
    assert synth.observation_shape == (64, 64, 1)
    np.testing.assert_allclose(SCALE_VALUES, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert ORIENTATION_VALUES[0] == 0.0 and ORIENTATION_VALUES[-1] == pytest.approx(2 * np.pi)
    assert POSITION_VALUES[0] == 0.0 and POSITION_VALUES[-1] == 1.0
    factors = np.array([[2, 3, 7, 5, 9]])
    assert synth.factors_to_index(factors)[0] == 2 * 245760 + 3 * 40960 + 7 * 1024 + 5 * 32 + 9
    index = np.arange(0, synth.size, 997)
    np.testing.assert_array_equal(synth.factors_to_index(synth.index_to_factors(index)), index)


def test_file_latents_include_color_first(synth: DSpritesSynth) -> None:
    factors = np.array([[0, 0, 0, 0, 0], [2, 5, 39, 31, 31]])
    classes, values = latents(factors)
    assert classes.tolist() == [[0, 0, 0, 0, 0, 0], [0, 2, 5, 39, 31, 31]]
    np.testing.assert_allclose(values, [[1, 1, 0.5, 0, 0, 0], [1, 3, 1.0, 2 * np.pi, 1, 1]])
    np.testing.assert_allclose(factors_to_values(factors), values[:, 1:])


def test_observations_binary_uint8_and_deterministic(synth: DSpritesSynth) -> None:
    factors = synth.sample_factors(50, np.random.default_rng(0))
    images = synth.observations(factors)
    assert images.dtype == np.uint8 and images.shape == (50, 64, 64, 1)
    assert set(np.unique(images).tolist()) == {0, 255}
    assert synth.observations(factors).tobytes() == images.tobytes()
    singles = np.concatenate([synth.observations(factors[i:i + 1]) for i in (0, 49)])
    np.testing.assert_array_equal(images[[0, 49]], singles)


def _mask(shape: int, scale: float, angle: float, x: float = 0.5, y: float = 0.5) -> np.ndarray:
    return rasterise(np.array([shape]), np.array([scale]), np.array([angle]), np.array([x]),
                     np.array([y]))[0]


def test_sizes_at_scale_one_and_linear_scaling() -> None:
    square, ellipse, heart = (_mask(s, 1.0, 0.0) for s in range(3))
    assert abs(int(square.sum()) - 19 * 19) <= 2 * 19 + 1
    rows, cols = np.nonzero(square)
    assert np.ptp(rows) + 1 in (19, 20) and np.ptp(cols) + 1 in (19, 20)
    assert abs(int(ellipse.sum()) - np.pi * 12 * 6.5) < 15
    rows, cols = np.nonzero(ellipse)
    assert np.ptp(cols) + 1 in (23, 24, 25) and np.ptp(rows) + 1 in (12, 13, 14)
    rows, cols = np.nonzero(heart)
    assert 16 <= np.ptp(rows) + 1 <= 20 and 16 <= np.ptp(cols) + 1 <= 21
    for shape in range(3):
        ratio = _mask(shape, 0.5, 0.0).sum() / _mask(shape, 1.0, 0.0).sum()
        assert 0.2 < ratio < 0.3  # area grows with the square of the scale


def test_position_moves_the_centre() -> None:
    for pos in (0.0, 0.25, 1.0):
        rows, cols = np.nonzero(_mask(0, 0.5, 0.0, x=pos, y=0.5))
        assert cols.mean() == pytest.approx(16 + 32 * pos, abs=0.6)
        assert rows.mean() == pytest.approx(32, abs=0.6)
        rows, cols = np.nonzero(_mask(0, 0.5, 0.0, x=0.5, y=pos))
        assert rows.mean() == pytest.approx(16 + 32 * pos, abs=0.6)


def test_rotation_counter_clockwise_and_full_turn_repeats(synth: DSpritesSynth) -> None:
    flat = _mask(1, 1.0, 0.0)
    upright = _mask(1, 1.0, np.pi / 2)
    assert np.ptp(np.nonzero(flat)[1]) > np.ptp(np.nonzero(flat)[0])
    assert np.ptp(np.nonzero(upright)[0]) > np.ptp(np.nonzero(upright)[1])
    diagonal = _mask(1, 1.0, np.pi / 4)  # long axis bottom-left to top-right as displayed
    assert diagonal[32 - 7, 32 + 7] and diagonal[32 + 7, 32 - 7]
    assert not diagonal[32 - 7, 32 - 7] and not diagonal[32 + 7, 32 + 7]
    first = synth.observations(np.array([[s, 5, 0, 9, 20] for s in range(3)]))
    last = synth.observations(np.array([[s, 5, 39, 9, 20] for s in range(3)]))
    np.testing.assert_array_equal(first, last)  # orientation 0 and 2 pi are the same pose


def test_heart_points_down_with_lobes_on_top() -> None:
    heart = _mask(2, 1.0, 0.0)
    rows = np.nonzero(heart.any(axis=1))[0]
    top_width = heart[rows[0] + 3].sum()
    bottom_width = heart[rows[-1] - 1].sum()
    assert bottom_width < top_width
    # Two lobes: the top row has a gap in the middle.
    top = np.nonzero(heart[rows[0] + 1])[0]
    assert np.ptp(top) + 1 > len(top)


def test_every_sprite_stays_inside_the_canvas(synth: DSpritesSynth) -> None:
    corners = np.array([[s, 5, o, x, y] for s in range(3) for o in range(0, 40, 3)
                        for x in (0, 31) for y in (0, 31)])
    union = synth.masks(corners).any(axis=0)
    rows, cols = np.nonzero(union)
    assert rows.min() >= 2 and rows.max() <= 61 and cols.min() >= 2 and cols.max() <= 61
    assert synth.masks(corners).sum(axis=(1, 2)).min() > 0


def test_continuous_values(synth: DSpritesSynth) -> None:
    factors = synth.sample_factors(5, np.random.default_rng(2))
    values = factors_to_values(factors)
    np.testing.assert_array_equal(synth.render_continuous(values), synth.observations(factors))
    mid = values[:1].copy()
    mid[0, 0:3] = [1.0, 0.5, 0.0]  # a small upright square: its centroid is its centre
    mid[0, 3] = 0.5 * (POSITION_VALUES[4] + POSITION_VALUES[5])
    rows, cols = np.nonzero(synth.render_continuous(mid)[0, ..., 0])
    assert cols.mean() == pytest.approx(16 + 32 * mid[0, 3], abs=0.6)
    with pytest.raises(ValueError, match="shape"):
        synth.render_continuous(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="shape index"):
        synth.render_continuous(np.array([[4.0, 1.0, 0.0, 0.5, 0.5]]))
