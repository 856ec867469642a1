"""Known answers for ContraFeat's parts: attention, edits, L2 mask, losses, sensors, resume."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from methods.contrast import (
    binary_contrast_loss,
    diversity_loss,
    l2_norm_mask,
    pair_similarity,
    pattern_contrast_loss,
    pattern_similarity,
)
from methods.navigator import Navigator, gaussian_kernel, smooth_rows
from models.sensors import (
    ALEXNET_KEYS,
    AlexNetSensor,
    load_sensor,
    sensor_identity,
)

# -- attention and edits ----------------------------------------------------------------------


def test_gaussian_kernel_is_the_papers() -> None:
    assert torch.allclose(gaussian_kernel(3, 1.0), torch.tensor([0.2741, 0.4519, 0.2741]),
                          atol=1e-4)
    with pytest.raises(ValueError):
        gaussian_kernel(2, 1.0)


def test_attention_equals_hand_computation() -> None:
    nav = Navigator(2, 5, 4, basis=torch.eye(4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        nav.logits.copy_(torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0, 1.0]]))
    a = torch.softmax(nav.logits.detach(), dim=1)
    k0, k1 = 0.27406862, 0.45186276  # Gaussian size 3, std 1
    hand = torch.empty_like(a)
    for j in range(2):
        row = a[j]
        padded = torch.cat([row[1:2], row, row[-2:-1]])  # reflect padding
        hand[j] = k0 * padded[:-2] + k1 * padded[1:-1] + k0 * padded[2:]
    got = nav.attention().detach()
    assert torch.allclose(got, hand, atol=1e-6)
    # reflect padding without renormalisation: the sum is 1 + k0 * (a1 + a_{L-2} - a0 - a_{L-1})
    expected_sum = 1 + k0 * (a[:, 1] + a[:, -2] - a[:, 0] - a[:, -1])
    assert torch.allclose(got.sum(dim=1), expected_sum, atol=1e-6)
    assert torch.allclose(got[1], torch.full((5,), 0.2), atol=1e-6)  # uniform stays uniform


def test_one_row_generator_is_not_smoothed() -> None:
    weights = torch.ones(3, 1)
    assert torch.equal(smooth_rows(weights, gaussian_kernel(3, 1.0)), weights)


def test_edits_are_attention_times_rms_normalised_direction() -> None:
    basis = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1)))[0]
    nav = Navigator(3, 4, 16, basis=basis[:5], generator=torch.Generator().manual_seed(2))
    edits = nav.edits().detach()
    assert edits.shape == (3, 4, 16)
    d = nav.directions().detach()
    assert torch.allclose(d.norm(dim=1), torch.full((3,), math.sqrt(16)), atol=1e-4)
    # each direction lies in the span of the 5 basis rows
    residual = d - (d @ basis[:5].T) @ basis[:5]
    assert residual.abs().max() < 1e-4
    a = nav.attention().detach()
    for layer in range(4):
        assert torch.allclose(edits[:, layer], a[:, layer, None] * d, atol=1e-6)


def test_frozen_branch_keeps_the_given_directions() -> None:
    given = torch.randn(3, 8, generator=torch.Generator().manual_seed(3))
    nav = Navigator(3, 2, 8, frozen=given, generator=torch.Generator().manual_seed(4))
    assert [n for n, _ in nav.named_parameters()] == ["logits"]
    cos = F.cosine_similarity(nav.directions(), given, dim=1)
    assert torch.allclose(cos, torch.ones(3), atol=1e-6)


# -- the spatial L2-norm mask and the losses --------------------------------------------------


def _corner_change(noise_seed: int) -> torch.Tensor:
    """A difference [1, 4, 8, 8]: a strong change in the top-left 2x2 corner (channel 0) and
    weak static-region noise on channel ``1 + noise_seed % 3``."""
    diff = torch.zeros(1, 4, 8, 8)
    diff[0, 0, :2, :2] = 5.0
    diff[0, 1 + noise_seed % 3, 2:, 2:] = 0.05
    diff[0, 1 + noise_seed % 3, :2, 2:] = 0.05
    return diff


def test_mask_is_minmax_normalised_norm() -> None:
    diff = _corner_change(0)
    mask = l2_norm_mask(diff)
    assert mask.shape == (1, 8, 8)
    assert torch.allclose(mask[0, :2, :2], torch.ones(2, 2), atol=1e-5)
    assert mask[0, 4, 4] == pytest.approx(0.05 / 5.0, abs=1e-6)  # weak noise: 1 % of the peak
    assert mask[0, 4, 0] == pytest.approx(0.0, abs=1e-6)  # no change at all


def test_masked_similarity_ignores_the_static_region() -> None:
    # same corner change; the static regions change along orthogonal channels (cos 0 there)
    a, b = _corner_change(0), _corner_change(1)
    assert float(pair_similarity(a, b, "l2mask")) == pytest.approx(1.0, abs=2e-3)
    # without focus the 60 static positions (cos 0) dilute the 4 changed ones
    assert float(pair_similarity(a, b, "nofoc")) == pytest.approx(4 / 64, abs=1e-4)


def test_pooled_is_the_unmasked_loss_on_pooled_features() -> None:
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(3, 6, 5, 5, generator=gen), torch.randn(3, 6, 5, 5, generator=gen)
    pooled = pair_similarity(a, b, "pooled")
    on_pooled = pair_similarity(a.mean(dim=(2, 3), keepdim=True),
                                b.mean(dim=(2, 3), keepdim=True), "nofoc")
    assert torch.allclose(pooled, on_pooled, atol=1e-6)
    hand = F.cosine_similarity(a.mean(dim=(2, 3)), b.mean(dim=(2, 3)), dim=1) ** 2
    assert torch.allclose(pooled, hand, atol=1e-6)


def test_binary_loss_rewards_consistency_and_orthogonality() -> None:
    gen = torch.Generator().manual_seed(6)
    q = torch.randn(4, 8, 3, 3, generator=gen)
    other = torch.randn(4, 8, 3, 3, generator=gen)
    best = binary_contrast_loss([q], [2 * q], [other], "l2mask")
    worst = binary_contrast_loss([q], [other], [q], "l2mask")
    assert float(best) < 0 < float(worst)
    # perfect consistency and a negative with no change at all: the loss is exactly -1 per stage
    assert float(binary_contrast_loss([q, q], [q, q], [0 * q, 0 * q], "nofoc")) == pytest.approx(
        -2.0, abs=1e-5)


def test_pattern_similarity_hand_computation() -> None:
    diff = torch.zeros(2, 3, 1, 2)
    diff[0, 0] = 1.0  # sample 0 changes channel 0 everywhere
    diff[1, 1, 0, 0] = 1.0  # sample 1 changes channel 1 at one position
    patterns = torch.zeros(2, 3, 1, 2)
    patterns[0, 0] = 2.0
    patterns[1, 1] = 1.0
    sim = pattern_similarity(diff, patterns, "nofoc")
    assert torch.allclose(sim, torch.tensor([[1.0, 0.0], [0.0, 0.5]]), atol=1e-5)
    loss = pattern_contrast_loss([diff], [patterns], torch.tensor([0, 1]), "nofoc")
    assert float(loss) == pytest.approx(-(1.0 + 0.5) / 2 + 0.0, abs=1e-5)


def test_diversity_loss_known_values() -> None:
    eye = torch.eye(4).reshape(4, 2, 2)
    assert float(diversity_loss(eye)) == pytest.approx(0.0, abs=1e-7)
    same = torch.ones(3, 2, 2)
    assert float(diversity_loss(same)) == pytest.approx(6.0, abs=1e-5)  # both orders count


# -- sensors ----------------------------------------------------------------------------------


def test_discriminator_sensor_maps() -> None:
    sensor = load_sensor("shapes3d-disc")
    maps = sensor(torch.zeros(2, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8),
                                              (2, 128, 4, 4)]
    assert not any(p.requires_grad for p in sensor.parameters())
    assert sensor_identity("shapes3d-disc")["sha256"]


def test_alexnet_loads_torchvision_weights_from_a_path(tmp_path) -> None:
    torch.manual_seed(0)
    reference = AlexNetSensor()
    state = {k: v for k, v in reference.state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(2, 2)  # a full torchvision file has a classifier
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    sensor = load_sensor("alexnet", path)
    maps = sensor(torch.zeros(1, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 15, 15), (192, 7, 7), (384, 3, 3),
                                                  (256, 3, 3), (256, 3, 3)]
    x = torch.rand(1, 3, 64, 64)
    assert torch.allclose(sensor(x)[-1], reference(x)[-1])


def test_alexnet_errors_name_the_path_and_keys(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BENCH_ALEXNET", raising=False)
    with pytest.raises(FileNotFoundError, match="BENCH_ALEXNET"):
        load_sensor("alexnet")
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_sensor("alexnet", missing)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match=r"wrong\.pth.*features\.0\.weight"):
        load_sensor("alexnet", wrong)
    assert len(ALEXNET_KEYS) == 10


def test_traversal_grid_draws_attention_beside_the_rows(tmp_path) -> None:
    import numpy as np
    from PIL import Image

    from bench.flows.figures import save_traversal_grid
    from models.directions import Directions
    from models.oracle import load_oracle_generator

    generator = load_oracle_generator(num_ws=12)
    directions = Directions(torch.randn(3, 12, 32, generator=torch.Generator().manual_seed(0)),
                            torch.ones(3))
    kwargs = {"rows": 3, "steps": 3, "num_seeds": 1}
    plain = save_traversal_grid(generator, directions, tmp_path / "plain.png", **kwargs)
    with_att = save_traversal_grid(generator, directions, tmp_path / "att.png",
                                   attention=np.full((3, 12), 1 / 12), **kwargs)
    assert Image.open(with_att).size[0] > Image.open(plain).size[0]
