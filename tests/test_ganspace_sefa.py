"""GANSpace and SeFa recover known directions on linear toy generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy_generators import LinearToyGenerator, bundle_of, orthogonal

from methods.ganspace import (
    GANSpaceConfig,
    StreamingCovariance,
    principal_components,
    run_ganspace,
)
from methods.random_dirs import RandomConfig, run_random
from methods.sefa import SeFaConfig, run_sefa, sefa_eigenpairs
from models.sampling import sample_w

W_DIM = 32
STDS = [6.0, 4.0, 3.0] + [0.5] * (W_DIM - 3)


def test_streaming_covariance_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 5)) * [1, 2, 3, 4, 5] + 100.0  # large offset: cancellation check
    stats = StreamingCovariance(5)
    for chunk in np.array_split(x, 7):
        stats.update(chunk)
    assert np.allclose(stats.mean, x.mean(0))
    assert np.allclose(stats.covariance(), np.cov(x, rowvar=False), rtol=1e-10, atol=1e-10)


def test_ganspace_recovers_high_variance_directions_better_than_random() -> None:
    gen = LinearToyGenerator(w_dim=W_DIM, num_ws=3, stds=STDS, seed=5)
    config = GANSpaceConfig(num_directions=3, num_samples=6000, batch_size=1000)
    dirs = run_ganspace(bundle_of(gen), config, seed=0)
    truth = gen.basis[:, :3]
    cos = (dirs.vectors[:, 0] @ truth).abs()
    assert torch.all(cos.diagonal() > 0.97), cos  # same order: sorted by variance
    rand = run_random(bundle_of(gen), RandomConfig(num_directions=3), seed=0)
    rand_cos = (rand.vectors[:, 0] @ truth).abs().amax(dim=1)
    assert float(cos.diagonal().mean()) > float(rand_cos.mean()) + 0.5
    # native scale = std along the component, variance sorted descending
    assert np.allclose(dirs.scale.numpy(), STDS[:3], rtol=0.05)
    assert dirs.meta["variance"] == sorted(dirs.meta["variance"], reverse=True)
    assert 0 < sum(dirs.meta["variance_ratio"]) < 1


def test_ganspace_layer_range_and_determinism() -> None:
    gen = LinearToyGenerator(w_dim=8, num_ws=4, stds=[3, 2, 1, 1, 1, 1, 1, 1])
    config = GANSpaceConfig(num_directions=2, num_samples=500, batch_size=128,
                            layer_start=1, layer_end=3)
    a = run_ganspace(bundle_of(gen), config, seed=1)
    b = run_ganspace(bundle_of(gen), config, seed=1)
    assert torch.equal(a.vectors, b.vectors)
    assert torch.count_nonzero(a.vectors[:, [0, 3]]) == 0
    assert torch.allclose(a.vectors[:, 1].norm(dim=1), torch.ones(2), atol=1e-5)
    assert a.meta["layers"] == [1, 2]
    with pytest.raises(ValueError, match="layer range"):
        run_ganspace(bundle_of(gen), GANSpaceConfig(2, 500, 128, layer_start=3, layer_end=3), 0)


def _affines_with_subspace(dominant: torch.Tensor, num_ws: int, seed: int) -> list[torch.Tensor]:
    """Affines whose channel weight vectors lie mostly in span(dominant rows)."""
    rng = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_ws):
        coeffs = torch.randn(24, dominant.shape[0], generator=rng) * torch.tensor([3.0, 2.0, 1.5])
        noise = 0.05 * torch.randn(24, dominant.shape[1], generator=rng)
        out.append(coeffs @ dominant + noise)  # [C_in, w_dim]
    return out


def test_sefa_orthonormal_sorted_and_recovers_dominant_subspace() -> None:
    dominant = orthogonal(W_DIM, 9)[:3]  # [3, w_dim] orthonormal rows
    affines = _affines_with_subspace(dominant, num_ws=4, seed=2)
    gen = LinearToyGenerator(w_dim=W_DIM, num_ws=4, affines=affines)
    dirs = run_sefa(bundle_of(gen), SeFaConfig(num_directions=10), seed=0)
    v = dirs.vectors[:, 0].double()
    assert torch.allclose(v @ v.T, torch.eye(10, dtype=torch.float64), atol=1e-5)
    eig = dirs.meta["eigenvalues"]
    assert all(a >= b for a, b in zip(eig, eig[1:], strict=False))
    # the top-3 eigenvectors span the dominant subspace: projections keep ~all their norm
    proj = (v[:3] @ dominant.double().T).norm(dim=1)
    assert torch.all(proj > 0.98), proj
    rest = (v[3:] @ dominant.double().T).norm(dim=1)
    assert torch.all(rest < 0.2), rest
    rand = run_random(bundle_of(gen), RandomConfig(num_directions=3), seed=0)
    rand_proj = (rand.vectors[:, 0].double() @ dominant.double().T).norm(dim=1)
    assert float(rand_proj.mean()) < 0.6


def test_sefa_matches_direct_formula_and_edits_only_selected_layers() -> None:
    rng = torch.Generator().manual_seed(3)
    affines = [torch.randn(6 + i, 8, generator=rng) for i in range(4)]
    gen = LinearToyGenerator(w_dim=8, num_ws=4, affines=affines)
    dirs = run_sefa(bundle_of(gen), SeFaConfig(num_directions=8, layers=(0, 2)), seed=0)
    a = torch.cat([affines[0].T, affines[2].T], dim=1).double()
    a = a / a.norm(dim=0, keepdim=True)
    values, vectors = np.linalg.eigh((a @ a.T).numpy())
    assert np.allclose(dirs.meta["eigenvalues"], values[::-1], atol=1e-6)
    top = torch.from_numpy(vectors[:, -1])
    assert abs(float(dirs.vectors[0, 0].double() @ top)) > 1 - 1e-6
    assert torch.count_nonzero(dirs.vectors[:, [1, 3]]) == 0
    assert torch.equal(dirs.vectors[:, 0], dirs.vectors[:, 2])


def test_sefa_eigenpairs_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="w_dim"):
        sefa_eigenpairs([np.ones((3, 4)), np.ones((3, 5))])
    with pytest.raises(ValueError, match="all-zero"):
        sefa_eigenpairs([np.zeros((2, 4))])


def test_sefa_eigenpairs_known_answer_in_float64() -> None:
    # columns (1, 0), (0, 2), (3, 4) normalise to e0, e1, (0.6, 0.8):
    # A Aᵀ = [[1.36, 0.48], [0.48, 1.64]]
    affine = np.array([[1, 0], [0, 2], [3, 4]], dtype=np.float32)  # [C_in, w_dim]
    values, vectors = sefa_eigenpairs([affine])
    assert values.dtype == vectors.dtype == np.float64  # float32 affines are promoted first
    want_values, want_vectors = np.linalg.eigh(np.array([[1.36, 0.48], [0.48, 1.64]]))
    np.testing.assert_allclose(values, want_values[::-1], rtol=1e-12)
    np.testing.assert_allclose(np.abs(vectors @ want_vectors[:, ::-1]), np.eye(2), atol=1e-12)
    # the same channels split over two affines give the same A Aᵀ
    split_values, _ = sefa_eigenpairs([affine[:1], affine[1:]])
    np.testing.assert_allclose(split_values, values, rtol=1e-12)


def test_sefa_eigenpairs_error_messages() -> None:
    with pytest.raises(ValueError, match="^SeFa needs at least one style affine$"):
        sefa_eigenpairs([])
    with pytest.raises(ValueError, match="^a style affine has an all-zero channel; cannot"):
        sefa_eigenpairs([np.array([[1.0, 2.0], [0.0, 0.0]])])


def test_streaming_covariance_float32_batches_and_per_column_offsets() -> None:
    # float32 rows are accumulated in float64; offsets of +-1e6 per column would cancel
    # catastrophically without the per-column shift
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(2000, 4)) * [1, 2, 3, 4] + [1e6, -1e6, 0.0, 5e5]).astype(np.float32)
    stats = StreamingCovariance(4)
    for chunk in np.array_split(x, 5):
        stats.update(chunk)
    exact = x.astype(np.float64)
    np.testing.assert_allclose(stats.mean, exact.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance(), np.cov(exact, rowvar=False), rtol=1e-9,
                               atol=1e-9)


def test_streaming_covariance_two_samples_and_errors() -> None:
    stats = StreamingCovariance(3)
    with pytest.raises(ValueError, match="^no samples accumulated$"):
        _ = stats.mean
    stats.update(np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="^need at least 2 samples for a covariance, got 1$"):
        stats.covariance()
    stats.update(np.array([[3.0, 2.0, -1.0]]))
    d = np.array([2.0, 0.0, -4.0])  # two samples: covariance d dᵀ / 2 (ddof 1)
    np.testing.assert_allclose(stats.covariance(), np.outer(d, d) / 2, atol=1e-12)
    for bad in (np.ones((2, 4)), np.ones(3)):
        with pytest.raises(ValueError, match=r"^expected rows of width 3, got shape \("):
            stats.update(bad)


def test_principal_components_sorted_and_non_negative() -> None:
    # a rounding-negative eigenvalue of a covariance is clipped to 0 (its std is then 0, not NaN)
    values, vectors = principal_components(np.diag([1.0, 3.0, -1e-12]))
    np.testing.assert_array_equal(values, [3.0, 1.0, 0.0])
    np.testing.assert_array_equal(np.abs(vectors), np.eye(3)[[1, 0, 2]])


class _Bar:
    """A progress factory that records what a method reports."""

    def __init__(self) -> None:
        self.opened: list[tuple[int, str]] = []
        self.updates: list[int] = []
        self.closed = False

    def __call__(self, total: int, desc: str) -> _Bar:
        self.opened.append((total, desc))
        return self

    def update(self, n: int) -> None:
        self.updates.append(n)

    def close(self) -> None:
        self.closed = True


def test_run_sefa_meta_and_argument_checks() -> None:
    rng = torch.Generator().manual_seed(4)
    affines = [torch.randn(5 + i, 6, generator=rng) for i in range(3)]
    gen = LinearToyGenerator(w_dim=6, num_ws=3, affines=affines)
    config = SeFaConfig(num_directions=1, layers=(0, 2))
    dirs = run_sefa(bundle_of(gen), config, seed=7)
    values, _ = sefa_eigenpairs([a.double().numpy() for a in (affines[0], affines[2])])
    # trace of A Aᵀ = number of (unit) columns = 5 + 7 channels
    np.testing.assert_allclose(values.sum(), 12.0, rtol=1e-12)
    assert set(dirs.meta) == {"method", "config", "seed", "native_unit", "names", "layers",
                              "eigenvalues", "eigenvalue_ratio"}
    assert dirs.meta["method"] == "sefa" and dirs.meta["seed"] == 7
    assert dirs.meta["config"] == {"num_directions": 1, "layers": (0, 2)}
    assert dirs.meta["native_unit"] == "unit vector in W on the selected rows"
    assert dirs.meta["names"] == ["sefa0"] and dirs.meta["layers"] == [0, 2]
    np.testing.assert_allclose(dirs.meta["eigenvalues"], values[:1], rtol=1e-12)
    np.testing.assert_allclose(dirs.meta["eigenvalue_ratio"], values[:1] / 12.0, rtol=1e-12)
    with pytest.raises(ValueError, match=r"^num_directions: expected a value in \[1, inf\), got 0"):
        SeFaConfig(num_directions=0)  # refused when the config is made (at planning)
    gen.style_affines = lambda: affines[:2]
    wrong_count = r"^style_affines\(\) returned 2 matrices, expected num_ws=3$"
    with pytest.raises(ValueError, match=wrong_count):
        run_sefa(bundle_of(gen), SeFaConfig(), seed=0)


def test_run_ganspace_meta_progress_and_argument_checks() -> None:
    gen = LinearToyGenerator(w_dim=4, num_ws=2, stds=[0.3, 0.2, 0.1, 0.1], seed=2)
    bar = _Bar()
    config = GANSpaceConfig(num_directions=1, num_samples=250, batch_size=100)
    dirs = run_ganspace(bundle_of(gen), config, seed=3, progress=bar)
    assert bar.opened == [(250, "ganspace: PCA of W")] and bar.updates == [100, 100, 50]
    assert bar.closed
    assert set(dirs.meta) == {"method", "config", "seed", "native_unit", "names", "layers",
                              "variance", "variance_ratio", "w_mean", "num_samples"}
    assert dirs.meta["method"] == "ganspace" and dirs.meta["seed"] == 3
    assert dirs.meta["config"] == {"num_directions": 1, "num_samples": 250, "batch_size": 100,
                                   "layer_start": None, "layer_end": None}
    assert dirs.meta["native_unit"] == "one standard deviation of w along the component"
    assert dirs.meta["names"] == ["pc0"] and dirs.meta["num_samples"] == 250
    # total variance below 1 (stds 0.3, 0.2, 0.1, 0.1): the ratio is still variance / total
    w = torch.cat(list(sample_w(gen, 250, torch.Generator().manual_seed(3), batch=100)))
    w = w.double().numpy()
    total = np.trace(np.cov(w, rowvar=False))
    assert total < 1
    np.testing.assert_allclose(dirs.meta["variance_ratio"],
                               np.array(dirs.meta["variance"]) / total, rtol=1e-9)
    np.testing.assert_allclose(dirs.meta["w_mean"], w.mean(0), rtol=1e-9, atol=1e-12)
    # two samples are enough; fewer, or no direction, is an error
    assert run_ganspace(bundle_of(gen), GANSpaceConfig(1, 2, 2), seed=0).meta["num_samples"] == 2
    with pytest.raises(ValueError, match=r"^num_samples: expected a value in \[2, inf\), got 1$"):
        GANSpaceConfig(1, 1, 1)
    with pytest.raises(ValueError, match=r"^num_directions: expected a value in \[1, inf\)"):
        GANSpaceConfig(0, 10, 10)


def test_run_ganspace_constant_w_has_zero_variance_ratio() -> None:
    gen = LinearToyGenerator(w_dim=3, num_ws=1, stds=[0.0, 0.0, 0.0])
    dirs = run_ganspace(bundle_of(gen), GANSpaceConfig(2, 20, 10), seed=0)
    assert dirs.meta["variance"] == [0.0, 0.0] and dirs.meta["variance_ratio"] == [0.0, 0.0]
    torch.testing.assert_close(dirs.scale, torch.zeros(2, dtype=dirs.scale.dtype))
