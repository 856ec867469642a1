"""Known-answer tests of the 3DShapes factor grid and the ``shapes3d-synth`` renderer."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pytest

from datasets import load_ground_truth, render3d
from datasets.shapes3d_synth import (
    FACTOR_SIZES,
    HUE_VALUES,
    ORIENTATION_VALUES,
    SCALE_VALUES,
    Shapes3DSynth,
    _read_maps,
    _write_maps,
    factors_to_values,
    render_parameters,
    shape_weights,
    values_to_factors,
)

SKY_UINT8 = (153, 226, 249)


@pytest.fixture(scope="module")
def synth() -> Shapes3DSynth:
    return load_ground_truth("shapes3d-synth")


def test_grid_sizes_strides_and_values(synth: Shapes3DSynth) -> None:
    assert synth.factor_names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape",
                                  "orientation")
    assert synth.factor_sizes == (10, 10, 10, 8, 4, 15)
    assert synth.factor_strides == (48000, 4800, 480, 60, 15, 1)
    assert synth.size == 480000
    assert synth.observation_shape == (64, 64, 3)
    np.testing.assert_allclose(SCALE_VALUES[[0, 3, 7]], [0.75, 0.9643, 1.25], atol=1e-4)
    np.testing.assert_allclose(ORIENTATION_VALUES[[0, 1, 14]], [-30, -25.714, 30], atol=1e-3)
    np.testing.assert_allclose(HUE_VALUES, np.arange(10) / 10)
    factors = np.array([[1, 2, 3, 4, 2, 5]])
    assert synth.factors_to_index(factors)[0] == 48000 + 2 * 4800 + 3 * 480 + 4 * 60 + 2 * 15 + 5


def test_index_and_value_round_trips_over_the_whole_grid(synth: Shapes3DSynth) -> None:
    index = np.arange(synth.size)
    factors = synth.index_to_factors(index)
    np.testing.assert_array_equal(synth.factors_to_index(factors), index)
    values = factors_to_values(factors)
    np.testing.assert_array_equal(values_to_factors(values), factors)
    # Rounding tolerates float noise in stored labels.
    np.testing.assert_array_equal(values_to_factors(values + 1e-4), factors)
    assert factors[-1].tolist() == [s - 1 for s in FACTOR_SIZES]


def test_hue_to_rgb_known_colours_numpy_and_torch() -> None:
    torch = pytest.importorskip("torch")
    hues = np.array([0.0, 0.1, 1 / 3, 0.5, 2 / 3, 0.9, 1.0, -0.5])
    expected = np.array([colorsys.hsv_to_rgb(h % 1.0, 1.0, 1.0) for h in hues])
    np.testing.assert_allclose(render3d.hue_to_rgb(hues), expected, atol=1e-12)
    np.testing.assert_allclose(render3d.hue_to_rgb(0.1), [1.0, 0.6, 0.0])
    got = render3d.hue_to_rgb(torch.tensor(hues, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_deterministic_and_cache_matches_a_fresh_render(synth: Shapes3DSynth) -> None:
    rng = np.random.default_rng(3)
    factors = synth.sample_factors(32, rng)
    first = synth.observations(factors)
    assert first.dtype == np.uint8 and first.shape == (32, 64, 64, 3)
    assert synth.observations(factors).tobytes() == first.tobytes()
    again = Shapes3DSynth().sample_factors(32, np.random.default_rng(3))
    np.testing.assert_array_equal(again, factors)
    maps = synth.coefficient_maps()
    assert maps.shape == (8, 4, 15, 64, 64, 6) and maps.dtype == np.float32
    for scale_i, shape_i, orient_i in [(0, 0, 0), (5, 3, 9), (7, 2, 14)]:
        fresh = render3d.render_geometry(shape_i, SCALE_VALUES[scale_i],
                                         ORIENTATION_VALUES[orient_i])
        np.testing.assert_array_equal(fresh, maps[scale_i, shape_i, orient_i])


def test_observations_keep_batch_order_across_internal_steps(synth: Shapes3DSynth) -> None:
    factors = synth.sample_factors(300, np.random.default_rng(0))
    whole = synth.observations(factors)
    singles = np.concatenate([synth.observations(factors[i:i + 1]) for i in (0, 150, 299)])
    np.testing.assert_array_equal(whole[[0, 150, 299]], singles)


def test_bad_factors_raise(synth: Shapes3DSynth) -> None:
    with pytest.raises(ValueError, match="out of range"):
        synth.observations(np.array([[0, 0, 0, 8, 0, 0]]))
    with pytest.raises(ValueError, match="shape"):
        synth.observations(np.zeros((2, 5), np.int64))


def _hue_of(pixel: np.ndarray) -> float:
    return colorsys.rgb_to_hsv(*(pixel / 255.0))[0]


def _hue_distance(a: float, b: float) -> float:
    return min(abs(a - b), 1 - abs(a - b))


def test_images_look_like_3dshapes(synth: Shapes3DSynth) -> None:
    rng = np.random.default_rng(7)
    factors = synth.sample_factors(64, rng)
    factors[:, 5] = 7  # orientation 0: no side wall at the left edge
    images = synth.observations(factors)
    # Sky band on top, exact sky colour.
    assert (images[:, 0:4].reshape(-1, 3) == SKY_UINT8).all()  # tall capsules reach row 4
    for img, f in zip(images, factors, strict=True):
        floor_hue, wall_hue = HUE_VALUES[f[0]], HUE_VALUES[f[1]]
        assert _hue_distance(_hue_of(img[62, 2].astype(float)), floor_hue) < 0.02
        assert _hue_distance(_hue_of(img[22, 3].astype(float)), wall_hue) < 0.02
        # Fully saturated floor, bright at the left.
        assert img[62, 2].max() >= 240 and img[62, 2].min() <= 5


def test_object_pixels_follow_object_hue_only(synth: Shapes3DSynth) -> None:
    base = np.array([[2, 5, 0, 4, 2, 7]])  # sphere, mid scale
    other_object = base.copy()
    other_object[0, 2] = 6
    other_room = base.copy()
    other_room[0, 0:2] = [8, 1]
    a, b, c = (synth.observations(x)[0] for x in (base, other_object, other_room))
    centre = (slice(40, 46), slice(29, 35))
    assert np.abs(a[centre].astype(int) - b[centre]).max() > 100
    np.testing.assert_array_equal(a[centre], c[centre])
    assert _hue_distance(_hue_of(a[43, 30].astype(float)), 0.0) < 0.03
    assert _hue_distance(_hue_of(b[43, 30].astype(float)), 0.6) < 0.03


def test_layout_object_centred_on_floor_with_shadow_to_the_right(synth: Shapes3DSynth) -> None:
    maps = synth.coefficient_maps()
    for scale_i in range(8):
        for shape_i in range(4):
            for orient_i in range(15):
                obj = maps[scale_i, shape_i, orient_i, :, :, 2] > 0.5
                rows, cols = np.nonzero(obj)
                assert 29.5 < cols.mean() < 33.5
                assert 50 <= rows.max() <= 56
    # Sky ends near row 15, the floor starts near row 42 (empty column at the left edge).
    column = maps[0, 2, 7, :, 2]
    assert 13 <= np.nonzero(column[:, 3] > 0.5)[0].max() <= 17
    assert 40 <= np.nonzero(column[:, 0] > 0.5)[0].min() <= 44
    # Shadow right of the sphere: pure-floor pixels much darker there than left of it.
    geo = maps[3, 2, 7]
    pure_floor = (geo[..., 0] > 0) & (geo[..., 2] == 0) & (geo[..., 1] == 0)
    right = geo[46:60, 34:56, 0][pure_floor[46:60, 34:56]]
    left = geo[46:60, 4:24, 0][pure_floor[46:60, 4:24]]
    assert right.min() < 0.4 and left.min() > 0.75
    # Side walls: darker bands at the right for orientation -30 and at the left for +30.
    assert maps[0, 2, 0, 25, 60, 1] < 0.7 < maps[0, 2, 0, 25, 4, 1]
    assert maps[0, 2, 14, 25, 3, 1] < 0.7 < maps[0, 2, 14, 25, 59, 1]


def test_object_grows_with_scale(synth: Shapes3DSynth) -> None:
    maps = synth.coefficient_maps()
    for shape_i in range(4):
        areas = maps[:, shape_i, 7, :, :, 2].sum(axis=(1, 2))
        assert (np.diff(areas) > 0).all()
    sphere = maps[:, 2, 7, :, :, 2] > 0.5
    widths = [np.ptp(np.nonzero(m.any(0))[0]) + 1 for m in sphere[[0, 7]]]
    assert 16 <= widths[0] <= 20 and 27 <= widths[1] <= 32


def test_continuous_on_grid_values_reproduce_grid_images(synth: Shapes3DSynth) -> None:
    factors = synth.sample_factors(6, np.random.default_rng(11))
    images = synth.observations(factors)
    values = factors_to_values(factors)
    interp = synth.render_continuous(values, as_uint8=True)
    assert np.abs(interp.astype(int) - images).max() <= 1
    exact = synth.render_continuous(values[:2], exact=True, as_uint8=True)
    assert np.abs(exact.astype(int) - images[:2]).max() <= 1
    as_float = synth.render_continuous(values)
    assert as_float.dtype == np.float32 and 0.0 <= as_float.min() and as_float.max() <= 1.0


def test_continuous_midway_values_lie_between_neighbours(synth: Shapes3DSynth) -> None:
    lo, hi = factors_to_values(np.array([[0, 3, 5, 2, 2, 6], [0, 3, 5, 3, 2, 6]]))
    mid = (lo + hi) / 2
    images = synth.render_continuous(np.stack([lo, mid, hi]))
    assert ((images[1] >= np.minimum(images[0], images[2]) - 1e-5)
            & (images[1] <= np.maximum(images[0], images[2]) + 1e-5)).all()
    # Exact ray casting: the midway sphere's area lies strictly between its neighbours'.
    exact = np.stack([render3d.render_geometry(2, v[3], v[5])[..., 2].sum()
                      for v in (lo, mid, hi)])
    assert exact[0] < exact[1] < exact[2]
    # Continuous hue: midway between two hues gives the midway colour on the floor.
    v = np.array([lo, lo, lo])
    v[:, 0] = [0.0, 0.05, 0.1]
    floor = synth.render_continuous(v)[:, 62, 2]
    np.testing.assert_allclose(floor[1], (floor[0] + floor[2]) / 2, atol=1e-5)


def test_shape_blend_weights() -> None:
    np.testing.assert_allclose(shape_weights(np.array([0.0, 1.25, 3.0])),
                               [[1, 0, 0, 0], [0, 0.75, 0.25, 0], [0, 0, 0, 1]])


def test_render_soft_torch_matches_numpy_and_is_differentiable(synth: Shapes3DSynth) -> None:
    torch = pytest.importorskip("torch")
    values = np.array([[0.13, 0.52, 0.77, 0.9, 1.0, -12.0], [0.95, 0.05, 0.3, 1.2, 3.0, 21.0]])
    reference = synth.render_continuous(values)
    t = torch.tensor(values, dtype=torch.float32, requires_grad=True)
    weights = torch.tensor(shape_weights(values[:, 4]), dtype=torch.float32)
    images = synth.render_soft(t[:, 0], t[:, 1], t[:, 2], t[:, 3], weights, t[:, 5])
    assert images.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(images.clamp(0, 1).detach().numpy(), reference, atol=1e-5)
    images.sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()
    assert (t.grad[:, [0, 1, 2, 3]].abs() > 0).all()


def test_continuous_rejects_bad_values(synth: Shapes3DSynth) -> None:
    with pytest.raises(ValueError, match="shape"):
        synth.render_continuous(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="finite"):
        synth.render_continuous(np.full((1, 6), np.nan))
    with pytest.raises(ValueError, match="integral shape"):
        synth.render_continuous(np.array([[0, 0, 0, 1.0, 1.5, 0.0]]), exact=True)


def test_map_cache_rejects_stale_or_damaged_files(tmp_path: Path) -> None:
    params = render_parameters()
    path = tmp_path / "maps.npz"
    _write_maps(path, np.zeros((2, 2), np.float32), params)
    assert _read_maps(path, params) is None  # wrong shape
    good = np.zeros((8, 4, 15, 64, 64, 6), np.float32)
    _write_maps(path, good, params)
    assert _read_maps(path, params) is not None
    assert _read_maps(path, {**params, "FOCAL_PX": 1.0}) is None  # other scene constants
    path.write_bytes(b"not an npz")
    assert _read_maps(path, params) is None
    assert [p.name for p in tmp_path.iterdir()] == ["maps.npz"]  # no temp files left


def test_pickles_without_the_maps(synth: Shapes3DSynth) -> None:
    import pickle

    synth.coefficient_maps()
    blob = pickle.dumps(synth)
    assert len(blob) < 100_000
    factors = np.array([[1, 2, 3, 4, 1, 5]])
    np.testing.assert_array_equal(pickle.loads(blob).observations(factors),
                                  synth.observations(factors))
