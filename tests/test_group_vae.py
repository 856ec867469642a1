"""Known-answer tests of the group VAE: posterior fusion, pair reading, training."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from distill.group_vae import (
    GroupVAEConfig,
    PairSource,
    PreparedPairs,
    fuse_posteriors,
    group_vae_config,
    group_vae_loss,
    open_pairs,
    train_group_vae,
)
from methods.vae_common import fresh_encoder
from models.vae import VAEArchitecture, images_to_tensor, to_resolution

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _posteriors() -> tuple[torch.Tensor, ...]:
    mu_a = torch.tensor([[1.0, 2.0, 3.0]])
    lv_a = torch.tensor([[0.0, 0.0, math.log(4.0)]])
    mu_b = torch.tensor([[3.0, 4.0, 5.0]])
    lv_b = torch.tensor([[math.log(4.0), 1.0, 0.0]])
    varied = torch.tensor([[False, True, False]])
    return mu_a, lv_a, mu_b, lv_b, varied


def test_fusion_variance_averaging() -> None:
    mu_a, lv_a, mu_b, lv_b, varied = _posteriors()
    fa, fla, fb, flb = fuse_posteriors(mu_a, lv_a, mu_b, lv_b, varied, "var")
    # Varied dim 1 keeps each image's own posterior.
    assert fa[0, 1] == 2.0 and fb[0, 1] == 4.0 and fla[0, 1] == 0.0 and flb[0, 1] == 1.0
    # Shared dims: equal fused posteriors, mean of means, log of the mean variance.
    assert torch.equal(fa[0, [0, 2]], fb[0, [0, 2]]) and torch.equal(fla[0, [0, 2]], flb[0, [0, 2]])
    assert torch.allclose(fa[0, [0, 2]], torch.tensor([2.0, 4.0]))
    expected = torch.tensor([math.log((1.0 + 4.0) / 2), math.log((4.0 + 1.0) / 2)])
    assert torch.allclose(fla[0, [0, 2]], expected)


def test_fusion_logvar_averaging_differs_as_expected() -> None:
    mu_a, lv_a, mu_b, lv_b, varied = _posteriors()
    fa, fla, fb, flb = fuse_posteriors(mu_a, lv_a, mu_b, lv_b, varied, "logvar")
    _, fla_var, _, _ = fuse_posteriors(mu_a, lv_a, mu_b, lv_b, varied, "var")
    # Mean of logvars = log of the geometric mean variance: log 2 instead of log 2.5.
    assert torch.allclose(fla[0, [0, 2]], torch.full((2,), math.log(2.0)))
    assert (fla[0, [0, 2]] < fla_var[0, [0, 2]]).all()  # AM-GM: strictly below when vars differ
    assert torch.equal(fla[0, 1], lv_a[0, 1]) and torch.equal(flb[0, 1], lv_b[0, 1])
    assert torch.allclose(fa[0, [0, 2]], torch.tensor([2.0, 4.0]))
    # Equal variances: the two modes agree.
    same = fuse_posteriors(mu_a, lv_a, mu_b, lv_a, varied, "var")[1]
    assert torch.allclose(same, fuse_posteriors(mu_a, lv_a, mu_b, lv_a, varied, "logvar")[1])


def test_loss_equals_the_reference_formulation_on_hand_made_pairs() -> None:
    """½(rec_a + rec_b) + β·½(KL_a + KL_b) on the fused posteriors, computed by hand."""
    mu_a, lv_a, mu_b, lv_b, _ = _posteriors()  # one pair, 3 latents, label 1
    images_a = torch.tensor([0.25, 1.0]).reshape(1, 1, 1, 2)
    images_b = torch.tensor([0.5, 0.0]).reshape(1, 1, 1, 2)

    def encoder(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert torch.equal(images, torch.cat([images_a, images_b]))
        return torch.cat([mu_a, mu_b]), torch.cat([lv_a, lv_b])

    def decoder(z: torch.Tensor) -> torch.Tensor:  # logits = the first two latents
        return z[:, :2].reshape(-1, 1, 1, 2)

    loss, rec, kl = group_vae_loss(encoder, decoder, images_a, images_b, torch.tensor([1]), 3,
                                   beta=2.0, fusion="var", noise=None)

    def bce(logit: float, target: float) -> float:
        return math.log1p(math.exp(logit)) - logit * target

    def kl_term(mu: float, logvar: float) -> float:
        return 0.5 * (mu * mu + math.exp(logvar) - logvar - 1.0)

    # fused: a = (2, 2, 4) with logvars (log 2.5, 0, log 2.5); b = (2, 4, 4), (log 2.5, 1, log 2.5)
    rec_a = bce(2.0, 0.25) + bce(2.0, 1.0)
    rec_b = bce(2.0, 0.5) + bce(4.0, 0.0)
    l25 = math.log(2.5)
    kl_a = kl_term(2.0, l25) + kl_term(2.0, 0.0) + kl_term(4.0, l25)
    kl_b = kl_term(2.0, l25) + kl_term(4.0, 1.0) + kl_term(4.0, l25)
    assert float(rec) == pytest.approx((rec_a + rec_b) / 2, rel=1e-6)
    assert float(kl) == pytest.approx((kl_a + kl_b) / 2, rel=1e-6)
    assert float(loss) == pytest.approx((rec_a + rec_b) / 2 + 2.0 * (kl_a + kl_b) / 2, rel=1e-6)
    # the label picks the latent that keeps its own posterior: label 0 gives another loss
    other, _, _ = group_vae_loss(encoder, decoder, images_a, images_b, torch.tensor([0]), 3,
                                 beta=2.0, fusion="var", noise=None)
    assert float(other) != pytest.approx(float(loss))


def test_fusion_rejects_bad_input() -> None:
    mu_a, lv_a, mu_b, lv_b, varied = _posteriors()
    with pytest.raises(ValueError, match="fusion mode"):
        fuse_posteriors(mu_a, lv_a, mu_b, lv_b, varied, "mean")
    with pytest.raises(ValueError, match="bool"):
        fuse_posteriors(mu_a, lv_a, mu_b, lv_b, varied.float())
    with pytest.raises(ValueError, match="shape"):
        fuse_posteriors(mu_a, lv_a, mu_b[:, :2], lv_b, varied)
    with pytest.raises(ValueError, match="fusion"):
        GroupVAEConfig(fusion="mean")  # type: ignore[arg-type]


# A toy world: three vertical stripes, factor j = grey level (4 values) of stripe j; pair k
# changes factor k only.
SIZES = (4, 4, 4)


def _render(factors: np.ndarray) -> np.ndarray:
    images = np.zeros((len(factors), 64, 64, 1), np.uint8)
    for j in range(len(SIZES)):
        images[:, :, 21 * j:21 * j + 21, 0] = (30 + 70 * factors[:, j])[:, None, None]
    return images


def _pairs(num: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    factors = np.stack([rng.integers(0, s, num) for s in SIZES], axis=1)
    labels = rng.integers(0, len(SIZES), num)
    edited = factors.copy()
    rows = np.arange(num)
    sizes = np.asarray(SIZES)[labels]
    edited[rows, labels] = (factors[rows, labels] + rng.integers(1, sizes)) % sizes
    assert ((edited != factors).sum(axis=1) == 1).all()
    return _render(factors), _render(edited), labels


def test_pair_source_arrays_and_hdf5_agree(tmp_path) -> None:
    a, b, k = _pairs(50, np.random.default_rng(0))
    path = tmp_path / "pairs.h5"
    with h5py.File(path, "w") as f:
        f["images_orig"], f["images_edit"], f["labels"] = a, b, k
    in_memory = PairSource(a, b, k).batch(20, np.random.default_rng(3))
    with h5py.File(path, "r") as f:  # on-disk sorted-index reads (with repeated indices)
        on_disk = PairSource.from_mapping(f).batch(20, np.random.default_rng(3))
    with open_pairs(path) as source:  # small file: loaded into memory
        from_path = source.batch(20, np.random.default_rng(3))
    for x, y, z in zip(in_memory, on_disk, from_path, strict=True):
        assert np.array_equal(x, y) and np.array_equal(x, z)
    index = np.random.default_rng(3).integers(0, 50, 20)
    assert np.array_equal(in_memory[0], a[index]) and np.array_equal(in_memory[2], k[index])


def test_pair_source_errors(tmp_path) -> None:
    a, b, k = _pairs(10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="missing pair dataset"):
        PairSource.from_mapping({"images_orig": a, "labels": k})
    with pytest.raises(ValueError, match="uint8"):
        PairSource(a.astype(np.float32), b, k)
    with pytest.raises(ValueError, match="agree"):
        PairSource(a, b[:5], k)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        train_group_vae(tmp_path / "missing.h5", 3, GroupVAEConfig(steps=1), seed=0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        train_group_vae((a, b, k), 2, GroupVAEConfig(steps=1), seed=0)


def test_profiles() -> None:
    assert group_vae_config("paper") == GroupVAEConfig()
    assert GroupVAEConfig().steps == 300_000 and GroupVAEConfig().fusion == "var"
    assert group_vae_config("quick", fusion="logvar").steps < 10_000
    with pytest.raises(ValueError, match="profile"):
        group_vae_config("fast")


def _varied_dim_accuracy(encoder, pairs) -> float:
    """How often the code dim that moves most within a pair is the pair's label."""
    a, b, k = pairs
    moved = np.abs(encoder.represent(a) - encoder.represent(b))
    return float((moved.argmax(axis=1) == k).mean())


def test_group_vae_puts_each_varied_factor_on_its_labelled_dim() -> None:
    train = _pairs(1000, np.random.default_rng(0))
    held_out = _pairs(300, np.random.default_rng(1))
    config = GroupVAEConfig(batch_size=16, steps=100, lr=1e-3)
    encoder = train_group_vae(train, len(SIZES), config, seed=0)
    history = encoder.meta["loss_history"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert encoder.num_latents == 3 and encoder.meta["config"]["fusion"] == "var"
    assert _varied_dim_accuracy(encoder, held_out) > 0.8  # chance is 1/3
    random_encoder = fresh_encoder(VAEArchitecture(num_latents=3, channels=1), seed=0)
    assert _varied_dim_accuracy(random_encoder, held_out) < 0.6


@pytest.mark.parametrize(("channels", "resolution"), [(1, 64), (3, 32), (3, 64)])
def test_pairs_converted_once_train_to_the_same_bits(channels, resolution) -> None:
    """``PreparedPairs`` (every pair converted once, rows gathered per step) against the
    per-batch conversion: the same weights and losses to the last bit, also with batches
    that draw a pair twice."""
    a, b, k = _pairs(60, np.random.default_rng(2))
    if channels == 3:
        rng = np.random.default_rng(3)  # colour noise: the channels must not be mixed up
        a = np.concatenate([a, rng.integers(0, 256, a.shape, np.uint8),
                            rng.integers(0, 256, a.shape, np.uint8)], axis=3)
        b = np.concatenate([b, rng.integers(0, 256, b.shape, np.uint8),
                            rng.integers(0, 256, b.shape, np.uint8)], axis=3)
    config = GroupVAEConfig(batch_size=40, steps=4, lr=1e-3, resolution=resolution)
    once = train_group_vae((a, b, k), len(SIZES), config, seed=5)
    per_batch = train_group_vae((a, b, k), len(SIZES), config, seed=5, prepare=False)
    assert once.meta["loss_history"] == per_batch.meta["loss_history"]
    for (name, x), (_, y) in zip(once.vae.state_dict().items(),
                                 per_batch.vae.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    source = PairSource(a, b, k)
    prepared = PreparedPairs(source, resolution, chunk=7)  # chunks not a batch's size
    images_a, images_b, labels = prepared.batch(40, np.random.default_rng(4))
    raw_a, raw_b, raw_k = source.batch(40, np.random.default_rng(4))
    assert torch.equal(labels, torch.from_numpy(raw_k))
    for mine, raw in ((images_a, raw_a), (images_b, raw_b)):
        expected = to_resolution(images_to_tensor(raw, channels), resolution)
        assert mine.stride() == expected.stride() or channels == 1
        assert torch.equal(mine, expected)
    assert PreparedPairs.fits(source, 32)
