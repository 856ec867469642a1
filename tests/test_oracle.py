"""Known-answer tests of the shapes3d oracle generator (its factor directions are exact)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.generator import Generator
from models.oracle import FACTOR_NAMES, FACTOR_SIZES, OracleConfig, load_oracle_generator


@pytest.fixture(scope="module")
def oracle():
    torch.set_num_threads(1)
    return load_oracle_generator(seed=0)


def _z(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def test_protocol_and_shapes(oracle):
    assert isinstance(oracle, Generator)
    assert (oracle.num_ws, oracle.resolution, oracle.img_channels) == (1, 64, 3)
    w = oracle.mapping(_z(5, oracle.z_dim))
    assert w.shape == (5, oracle.w_dim)
    images = oracle.synthesize(w[:, None, :])
    assert images.shape == (5, 3, 64, 64)
    assert images.min() >= -1 and images.max() <= 1
    torch.testing.assert_close(oracle.synthesize(w), images)  # W and W+ accepted alike
    feats = oracle.features(w[:, None, :], upto_block=4)
    assert [tuple(f.shape) for f in feats] == [(5, 21, 1, 1), (5, 6, 1, 1), (5, 6, 64, 64),
                                               (5, 3, 64, 64)]
    torch.testing.assert_close(feats[-1], images)
    assert len(oracle.style_affines()) == 1 and oracle.style_affines()[0].shape == (21, 32)
    assert oracle.factor_names == FACTOR_NAMES


def test_truncation_and_w_avg(oracle):
    z = _z(4, oracle.z_dim)
    torch.testing.assert_close(oracle.mapping(z, truncation_psi=0.0),
                               oracle.w_avg.expand(4, -1))
    w_mean = oracle.mapping(_z(20000, oracle.z_dim, seed=3)).mean(0)
    assert torch.allclose(w_mean, oracle.w_avg, atol=0.08)


def test_determinism_and_seed(oracle):
    again = load_oracle_generator(seed=0)
    z = _z(3, oracle.z_dim, seed=1)
    torch.testing.assert_close(oracle.synthesize(oracle.mapping(z)),
                               again.synthesize(again.mapping(z)), rtol=0, atol=0)
    other = load_oracle_generator(seed=1)
    assert not torch.allclose(other.true_directions(), oracle.true_directions())


def test_on_grid_ws_reproduce_renderer_images(oracle):
    gt = oracle.ground_truth
    factors = gt.sample_factors(60, np.random.default_rng(5))
    ws = oracle.factors_to_ws(factors)
    assert (oracle.factor_classes(ws).numpy() == factors).all()
    images = (oracle.synthesize(ws) + 1) / 2
    reference = torch.from_numpy(gt.observations(factors)).permute(0, 3, 1, 2).float() / 255
    assert (images - reference).abs().max() <= 0.6 / 255  # uint8 rounding only
    # a nuisance offset leaves the image unchanged
    offset = _z(60, oracle.w_dim, seed=6) * 2
    torch.testing.assert_close(oracle.synthesize(oracle.factors_to_ws(factors, offset=offset)),
                               oracle.synthesize(ws), atol=1e-5, rtol=0)


def test_gradients_flow_to_ws_and_not_along_nuisance(oracle):
    ws = oracle.mapping(_z(6, oracle.z_dim, seed=2))[:, None, :].clone().requires_grad_(True)
    oracle.synthesize(ws).square().sum().backward()
    grad = ws.grad[:, 0]
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    dirs = oracle.true_directions()
    nuisance = grad - (grad @ dirs.T) @ dirs
    assert nuisance.norm() <= 1e-4 * grad.norm()


def test_true_directions_orthonormal_and_move_one_factor(oracle):
    dirs = oracle.true_directions()
    torch.testing.assert_close(dirs @ dirs.T, torch.eye(6), atol=1e-5, rtol=0)
    w = oracle.mapping(_z(50, oracle.z_dim, seed=4))
    base = oracle.factor_values(w)
    for j in range(6):
        moved = oracle.factor_values(w + 1.5 * oracle.factor_stds[j] * dirs[j])
        change = (moved - base).abs().max(dim=0).values
        assert change[j] > 0.5
        assert np.all(np.delete(change.numpy(), j) < 1e-4)


def test_pca_and_sefa_order_match_factor_order(oracle):
    w = oracle.mapping(_z(20000, oracle.z_dim, seed=7)).double()
    centred = w - w.mean(0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    dirs = oracle.true_directions().double()
    cos_pca = (vt[:6] @ dirs.T).abs().diagonal()
    assert torch.all(cos_pca > 0.99), cos_pca
    affine = oracle.style_affines()[0].double()  # [C, w_dim]; SeFa: normalise each channel
    a = (affine / affine.norm(dim=1, keepdim=True)).T
    vals, vecs = torch.linalg.eigh(a @ a.T)
    order = torch.argsort(vals, descending=True)[:6]
    torch.testing.assert_close(vals[order], torch.arange(6, 0, -1).double(), atol=1e-6, rtol=0)
    cos_sefa = (vecs[:, order].T @ dirs.T).abs().diagonal()
    assert torch.all(cos_sefa > 0.999), cos_sefa


def test_factor_classes_uniform_under_mapping(oracle):
    classes = oracle.factor_classes(oracle.mapping(_z(8000, oracle.z_dim, seed=8)))
    for k, size in enumerate(FACTOR_SIZES):
        freq = torch.bincount(classes[:, k], minlength=size).double() / len(classes)
        assert (freq - 1 / size).abs().max() < 0.03, (FACTOR_NAMES[k], freq)


def test_predictor_sees_only_the_moved_factor(oracle):
    from models.predictor import load_shapes3d_predictor

    predictor = load_shapes3d_predictor()
    w = oracle.mapping(_z(40, oracle.z_dim, seed=9))
    dirs = oracle.true_directions()
    base = predictor.predict(oracle.synthesize(w))
    for j in range(6):
        moved = predictor.predict(oracle.synthesize(w + 1.5 * oracle.factor_stds[j] * dirs[j]))
        changed = (moved != base).double().mean(dim=0)
        assert changed[j] >= 0.5, (FACTOR_NAMES[j], changed)
        others = np.delete(changed.numpy(), j)
        assert others.max() <= 0.15, (FACTOR_NAMES[j], changed)


def test_bad_inputs(oracle):
    with pytest.raises(ValueError, match="z must have shape"):
        oracle.mapping(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="ws must have shape"):
        oracle.synthesize(torch.zeros(2, 1, 7))
    with pytest.raises(ValueError, match="upto_block"):
        oracle.features(torch.zeros(2, oracle.w_dim), upto_block=5)
    with pytest.raises(ValueError, match="out of range"):
        oracle.factors_to_ws(np.array([[10, 0, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="factor_stds"):
        OracleConfig(factor_stds=(1.0, 2.0))
