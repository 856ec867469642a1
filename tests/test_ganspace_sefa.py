"""GANSpace and SeFa recover known directions on linear toy generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy_generators import LinearToyGenerator, bundle_of, orthogonal

from methods.ganspace import GANSpaceConfig, StreamingCovariance, run_ganspace
from methods.random_dirs import RandomConfig, run_random
from methods.sefa import SeFaConfig, run_sefa, sefa_eigenpairs

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
