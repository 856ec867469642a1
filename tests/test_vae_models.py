"""Known-answer tests of the conv VAE, the encoder wrapper and the β-VAE / FactorVAE trainers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from datasets.base import GroundTruthData
from distill.group_vae import GroupVAEConfig
from methods.base import method_spec
from methods.beta_vae import BetaVAEConfig, train_beta_vae
from methods.factor_vae import FactorVAEConfig, permute_dims, train_factor_vae
from methods.vae_common import SeedStreams, VAEEncoder, fresh_encoder, load_vae_encoder
from models.vae import (
    VAEArchitecture,
    bernoulli_reconstruction,
    build_vae,
    gaussian_kl,
    images_to_tensor,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class SquareGrid(GroundTruthData):
    """A bright 16×16 square on a dark 64×64 canvas; factors: x position (4), y position (4)."""

    name = "toy-squares"

    def __init__(self, channels: int = 1) -> None:
        self.channels = channels

    @property
    def factor_names(self) -> tuple[str, ...]:
        return ("x", "y")

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return (4, 4)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (64, 64, self.channels)

    def observations(self, factors: np.ndarray) -> np.ndarray:
        factors = self.check_factors(factors)
        images = np.zeros((len(factors), 64, 64, self.channels), np.uint8)
        for i, (x, y) in enumerate(factors):
            images[i, 4 + 12 * y:20 + 12 * y, 4 + 12 * x:20 + 12 * x] = 230
        return images


def test_shapes_and_channels() -> None:
    for channels in (1, 3):
        vae = build_vae(VAEArchitecture(num_latents=7, channels=channels), seed=0)
        x = torch.rand(5, channels, 64, 64)
        mean, logvar, codes, logits = vae(x, torch.Generator().manual_seed(0))
        assert mean.shape == logvar.shape == codes.shape == (5, 7)
        assert logits.shape == (5, channels, 64, 64)


def test_build_is_seeded_and_leaves_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a = build_vae(VAEArchitecture(), seed=3).state_dict()
    b = build_vae(VAEArchitecture(), seed=3).state_dict()
    c = build_vae(VAEArchitecture(), seed=4).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_loss_terms_known_values() -> None:
    # KL of the prior itself is 0; of N(1, e^0) per dim 0.5; summed over dims.
    zeros = torch.zeros(2, 3)
    assert torch.allclose(gaussian_kl(zeros, zeros), torch.zeros(2))
    assert torch.allclose(gaussian_kl(torch.ones(2, 3), zeros), torch.full((2,), 1.5))
    # Bernoulli loss of logit 0 is log 2 per pixel whatever the target.
    logits = torch.zeros(2, 1, 64, 64)
    target = torch.rand(2, 1, 64, 64)
    expected = torch.full((2,), 64 * 64 * np.log(2.0), dtype=torch.float32)
    assert torch.allclose(bernoulli_reconstruction(logits, target), expected)


def test_bad_observations_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(np.zeros((2, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        images_to_tensor(np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="channel"):
        images_to_tensor(np.zeros((2, 64, 64, 3), np.uint8), channels=1)
    with pytest.raises(ValueError, match="channels"):
        VAEArchitecture(channels=2)


def test_encoder_save_load_round_trip(tmp_path) -> None:
    encoder = fresh_encoder(VAEArchitecture(num_latents=5, channels=3), seed=1)
    encoder.meta["note"] = "round trip"
    images = np.random.default_rng(0).integers(0, 256, (9, 64, 64, 3), dtype=np.uint8)
    codes = encoder.represent(images)
    assert codes.shape == (9, 5) and codes.dtype == np.float32
    encoder.save(tmp_path / "enc")
    files = sorted(p.name for p in (tmp_path / "enc").iterdir())
    assert files == ["vae.json", "vae.safetensors"]  # no temp files left behind
    info = json.loads((tmp_path / "enc" / "vae.json").read_text())
    assert info["architecture"] == {"num_latents": 5, "channels": 3, "resolution": 64}
    loaded = load_vae_encoder(tmp_path / "enc")
    assert np.array_equal(loaded.represent(images), codes)
    assert loaded.meta["note"] == "round trip"
    # Batching does not change the codes.
    assert np.allclose(loaded.represent(images, batch_size=2), codes, atol=1e-6)


def test_represent_codes_do_not_depend_on_the_batch() -> None:
    """What ``represent.batch_invariant`` declares (the metrics' code reuse relies on it): a row's
    code is bit-identical whatever batch size (>= 12), position and neighbours it is encoded in."""
    encoder = fresh_encoder(VAEArchitecture(num_latents=10, channels=3), seed=2)
    assert encoder.represent.batch_invariant
    images = np.random.default_rng(1).integers(0, 256, (256, 64, 64, 3), dtype=np.uint8)
    codes = encoder.represent(images, batch_size=256)
    assert np.array_equal(encoder.represent(images), codes)
    order = np.random.default_rng(2).permutation(256)
    assert np.array_equal(encoder.represent(images[order], batch_size=64), codes[order])
    for size in (12, 33, 100):
        assert np.array_equal(encoder.represent(images[order[:size]], batch_size=size),
                              codes[order[:size]])


def test_half_resolution_network_reads_64_pixel_observations(tmp_path) -> None:
    """resolution 32: same interface (uint8 64x64 in), 2x-downsampled inside, 32x32 logits."""
    half = fresh_encoder(VAEArchitecture(num_latents=4, channels=3, resolution=32), seed=2)
    full = fresh_encoder(VAEArchitecture(num_latents=4, channels=3), seed=2)
    images = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    assert half.represent(images).shape == (3, 4)
    assert half.decode(np.zeros((2, 4))).shape == (2, 32, 32, 3)
    count = [sum(p.numel() for p in e.vae.parameters()) for e in (half, full)]
    assert count[0] < count[1]
    # the encoder sees the 2x2 block means: a checkerboard of 0/255 equals flat grey 127.5
    board = np.zeros((1, 64, 64, 3), np.uint8)
    board[:, ::2, ::2] = board[:, 1::2, 1::2] = 255
    grey = torch.full((1, 3, 32, 32), 0.5)
    expected = half.vae.encoder(grey)[0].detach().numpy()
    assert np.allclose(half.represent(board), expected, atol=1e-5)
    half.save(tmp_path / "half")
    assert np.array_equal(load_vae_encoder(tmp_path / "half").represent(images),
                          half.represent(images))
    with pytest.raises(ValueError, match="resolution must be one of"):
        VAEArchitecture(num_latents=4, resolution=16)


def test_load_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="vae.safetensors"):
        VAEEncoder.load(tmp_path)
    encoder = fresh_encoder(VAEArchitecture(num_latents=3, channels=1), seed=0)
    encoder.save(tmp_path)
    info = json.loads((tmp_path / "vae.json").read_text())
    info["architecture"]["num_latents"] = 4
    (tmp_path / "vae.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="do not match"):
        VAEEncoder.load(tmp_path)


def test_seed_streams_are_independent_and_reproducible() -> None:
    a, b = SeedStreams(5), SeedStreams(5)
    assert a.numpy("data").integers(1 << 30) == b.numpy("data").integers(1 << 30)
    assert a.torch_seed("init") == b.torch_seed("init") != a.torch_seed("noise")
    assert SeedStreams(6).torch_seed("init") != a.torch_seed("init")
    with pytest.raises(ValueError, match="seed"):
        SeedStreams(-1)


def test_permute_dims_permutes_each_column() -> None:
    codes = torch.arange(40, dtype=torch.float32).view(10, 4)
    permuted = permute_dims(codes, torch.Generator().manual_seed(0))
    for j in range(4):
        assert torch.equal(permuted[:, j].sort().values, codes[:, j])
    assert not torch.equal(permuted, codes)
    # Columns are shuffled independently, so rows are broken up.
    assert not all(torch.equal(permuted[:, 0] - codes[0, 0], permuted[:, j] - codes[0, j])
                   for j in range(1, 4))


def test_vae_configs_keep_their_field_order_with_the_shared_adam_settings() -> None:
    """The configs' own fields come first, then AdamSettings' (as before the shared base, so
    ``asdict`` and the cell ids are unchanged); the optimiser and its checks are the base's."""
    adam = ["lr", "adam_betas", "adam_eps"]
    loop = ["batch_size", "steps"]
    assert list(dataclasses.asdict(BetaVAEConfig())) == ["num_latents", "beta", *loop, *adam]
    assert list(dataclasses.asdict(FactorVAEConfig())) == [
        "num_latents", "gamma", *loop, *adam, "disc_layers", "disc_width", "disc_lr",
        "disc_adam_betas"]
    assert list(dataclasses.asdict(GroupVAEConfig())) == [
        "beta", *loop, *adam, "fusion", "resolution"]
    config = GroupVAEConfig(lr=3e-4, adam_betas=(0.5, 0.9), adam_eps=1e-6)
    optimizer = config.optimizer([torch.zeros(2, requires_grad=True)])
    assert optimizer.defaults["lr"] == 3e-4 and optimizer.defaults["betas"] == (0.5, 0.9)
    assert optimizer.defaults["eps"] == 1e-6
    for cls in (BetaVAEConfig, FactorVAEConfig, GroupVAEConfig):
        with pytest.raises(ValueError, match=r"adam_eps: expected a value in \(0, inf\)"):
            cls(adam_eps=0.0)
    with pytest.raises(ValueError, match=r"batch_size: expected a value in \[2, inf\)"):
        FactorVAEConfig(batch_size=1)


def test_registered_with_profiles() -> None:
    for name, cls in (("beta-vae", BetaVAEConfig), ("factor-vae", FactorVAEConfig)):
        spec = method_spec(name)
        assert spec.kind == "representation" and spec.requires == ("ground_truth",)
        paper = spec.config("paper")
        assert isinstance(paper, cls) and paper.steps == 300_000 and paper.batch_size == 64
        assert paper.lr == 1e-4 and paper.num_latents == 10
        assert spec.config("quick").steps < 5000
    assert method_spec("factor-vae").config("paper").disc_layers == 6
    with pytest.raises(ValueError, match="beta"):
        BetaVAEConfig(beta=-1.0)


def _first_last(history: list[dict[str, float]], key: str) -> tuple[float, float]:
    return history[0][key], history[-1][key]


def test_beta_vae_training_reduces_loss() -> None:
    config = BetaVAEConfig(num_latents=4, beta=1.0, batch_size=16, steps=60, lr=1e-3)
    history = train_beta_vae(SquareGrid(), config, seed=0).meta["loss_history"]
    first, last = _first_last(history, "loss")
    assert last < 0.7 * first


def test_training_is_deterministic_given_seed() -> None:
    config = BetaVAEConfig(num_latents=4, batch_size=8, steps=4, lr=1e-3)
    images = SquareGrid().sample(8, np.random.default_rng(1))[1]
    codes = [train_beta_vae(SquareGrid(), config, seed=s).represent(images) for s in (0, 0, 1)]
    assert np.array_equal(codes[0], codes[1])
    assert not np.array_equal(codes[0], codes[2])


def test_factor_vae_training_reduces_loss() -> None:
    config = FactorVAEConfig(num_latents=4, batch_size=16, steps=60, lr=1e-3, disc_layers=2,
                             disc_width=32)
    enc = train_factor_vae(SquareGrid(channels=3), config, seed=0)
    history = enc.meta["loss_history"]
    first, last = _first_last(history, "reconstruction")
    assert last < 0.7 * first
    assert all(np.isfinite(h["disc_loss"]) for h in history)


def test_ground_truth_shape_checked() -> None:
    class Small(SquareGrid):
        @property
        def observation_shape(self) -> tuple[int, int, int]:
            return (32, 32, 1)

    with pytest.raises(ValueError, match="64x64"):
        train_beta_vae(Small(), BetaVAEConfig(steps=1), seed=0)
