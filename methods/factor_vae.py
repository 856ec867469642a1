"""FactorVAE baseline (Kim & Mnih 2018): VAE ELBO + γ·TC, with the total correlation estimated by
a discriminator that tells samples of q(z) from dimension-wise permuted samples.

Per step, two independent batches: the first trains the VAE (loss = reconstruction + KL +
γ·(logit_joint − logit_permuted) of the discriminator on its codes); the second is encoded without
gradient and its codes, permuted independently per dimension, are the discriminator's "product of
marginals" class, against the (detached) codes of the first batch.

Defaults: VAE as the β-VAE baseline (batch 64, Adam 1e-4, betas (0.9, 0.999), 300k steps, 10
latents); discriminator an MLP of 6 hidden layers × 1000 units, LeakyReLU 0.2, 2 logits, Adam 1e-4,
betas (0.5, 0.9) (the FactorVAE paper). γ = 10 is the smallest value of disentanglement_lib's
unsupervised-study grid {10, 20, 30, 40, 50, 100}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from core.progress import StepCallback
from datasets.base import GroundTruthData
from methods.base import register_method
from methods.vae_common import (
    AdamSettings,
    VAEEncoder,
    adam,
    finish_vae_training,
    load_vae_encoder,
    require_ground_truth,
    start_vae_training,
)
from models.bundle import Bundle
from models.vae import bernoulli_reconstruction, gaussian_kl, reparameterise


@dataclass(frozen=True)
class FactorVAEModelSettings:
    """The FactorVAE's own settings, the first fields of ``FactorVAEConfig``."""

    num_latents: int = 10
    gamma: float = 10.0
    batch_size: int = 64
    steps: int = 300_000

    # batch_size >= 2: the total-correlation term permutes codes across the batch
    RANGES: ClassVar[dict[str, str]] = {
        "num_latents": "[1, inf)", "gamma": "[0, inf)", "batch_size": "[2, inf)",
        "steps": "[1, inf)"}


@dataclass(frozen=True)
class FactorVAEConfig(AdamSettings, FactorVAEModelSettings):
    """FactorVAE hyper-parameters (its own, the VAE's Adam, then the discriminator's); defaults
    are the paper's / reference study's."""

    disc_layers: int = 6
    disc_width: int = 1000
    disc_lr: float = 1e-4
    disc_adam_betas: tuple[float, float] = (0.5, 0.9)

    RANGES: ClassVar[dict[str, str]] = {
        "disc_layers": "[1, inf)", "disc_width": "[1, inf)", "disc_lr": "(0, inf)",
        "disc_adam_betas": "[0, 1)"}


# Quick (2 CPU cores): a smaller discriminator (2 × 256; the paper's 6 × 1000 would double the
# step cost on CPU) and 1000 VAE steps at lr 5e-4 (as the β-VAE quick profile), discriminator
# optimiser as in the paper; about 160 s of one core on shapes3d-synth.
QUICK_PROFILE: dict[str, Any] = {"steps": 1000, "lr": 5e-4, "disc_layers": 2, "disc_width": 256}


def build_discriminator(num_latents: int, layers: int, width: int, seed: int) -> nn.Module:
    """MLP: ``layers`` hidden Linear+LeakyReLU(0.2) of ``width`` units, then 2 logits
    (index 0 = sample of q(z), index 1 = permuted sample)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        blocks: list[nn.Module] = []
        size = num_latents
        for _ in range(layers):
            blocks += [nn.Linear(size, width), nn.LeakyReLU(0.2)]
            size = width
        blocks.append(nn.Linear(size, 2))
        return nn.Sequential(*blocks)


def permute_dims(codes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shuffle each column of (n, D) codes independently: samples of the product of marginals."""
    order = torch.rand(codes.shape, generator=generator).argsort(dim=0)
    return codes.gather(0, order)


def train_factor_vae(ground_truth: GroundTruthData, config: FactorVAEConfig, seed: int,
                     progress: StepCallback | None = None) -> VAEEncoder:
    """Train a FactorVAE on uniform samples of ``ground_truth``; deterministic given ``seed``."""
    training = start_vae_training(ground_truth, config, seed)
    streams, batches, vae = training.streams, training.batches, training.vae
    noise, vae_opt = training.noise, training.optimizer
    disc = build_discriminator(config.num_latents, config.disc_layers, config.disc_width,
                               streams.torch_seed("disc-init")).train()
    permutation = streams.torch("permutation")
    disc_opt = adam(disc.parameters(), config.disc_lr, config.disc_adam_betas)
    joint_labels = torch.zeros(config.batch_size, dtype=torch.long)
    permuted_labels = torch.ones(config.batch_size, dtype=torch.long)

    def step(_: int) -> dict[str, float]:
        images, images_other = batches.next(), batches.next()
        # VAE update: ELBO + γ·TC estimate.
        mean, logvar, codes, logits = vae(images, noise)
        reconstruction = bernoulli_reconstruction(logits, images).mean()
        kl = gaussian_kl(mean, logvar).mean()
        disc.requires_grad_(False)  # the TC term trains the VAE only
        disc_logits = disc(codes)
        disc.requires_grad_(True)
        tc = (disc_logits[:, 0] - disc_logits[:, 1]).mean()
        vae_loss = reconstruction + kl + config.gamma * tc
        vae_opt.zero_grad(set_to_none=True)
        vae_loss.backward()
        vae_opt.step()
        # Discriminator update: codes of batch 1 vs permuted codes of batch 2.
        with torch.no_grad():
            other_codes = reparameterise(*vae.encoder(images_other), noise)
            permuted = permute_dims(other_codes, permutation)
        disc_loss = 0.5 * (F.cross_entropy(disc(codes.detach()), joint_labels)
                           + F.cross_entropy(disc(permuted), permuted_labels))
        disc_opt.zero_grad(set_to_none=True)
        disc_loss.backward()
        disc_opt.step()
        return {"loss": vae_loss.item(), "reconstruction": reconstruction.item(),
                "kl": kl.item(), "tc": tc.item(), "disc_loss": disc_loss.item()}

    return finish_vae_training("factor-vae", ground_truth, config, seed, vae, step, progress)


@register_method(
    "factor-vae",
    description="FactorVAE (Kim & Mnih 2018): conv VAE + discriminator-estimated TC penalty",
    kind="representation",
    config_cls=FactorVAEConfig,
    profiles={"quick": QUICK_PROFILE},
    requires=("ground_truth",),
    load_output=load_vae_encoder,
)
def run(bundle: Bundle, config: FactorVAEConfig, seed: int,
        progress: StepCallback | None = None) -> VAEEncoder:
    """Train on ``bundle.ground_truth``; return the encoder (posterior mean)."""
    return train_factor_vae(require_ground_truth(bundle, "factor-vae"), config, seed, progress)
