"""β-VAE baseline (Higgins et al. 2017): Bernoulli ELBO with the KL term weighted by β.

Defaults follow disentanglement_lib's unsupervised study (shared.gin: batch 64, Adam 1e-4,
betas (0.9, 0.999), 300k steps, 10 latents); β = 4 is one of the study's values
{1, 2, 4, 6, 8, 16} (and the β-VAE paper's dSprites choice). The representation is the posterior
mean. Training images are drawn uniformly (i.i.d.) from the ground-truth factor grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from core.progress import StepCallback
from datasets.base import GroundTruthData
from methods.base import register_method
from methods.vae_common import (
    AdamSettings,
    VAEEncoder,
    finish_vae_training,
    load_vae_encoder,
    require_ground_truth,
    start_vae_training,
)
from models.bundle import Bundle
from models.vae import bernoulli_reconstruction, gaussian_kl


@dataclass(frozen=True)
class BetaVAEModelSettings:
    """The β-VAE's own settings, the first fields of ``BetaVAEConfig``."""

    num_latents: int = 10
    beta: float = 4.0
    batch_size: int = 64
    steps: int = 300_000

    RANGES: ClassVar[dict[str, str]] = {
        "num_latents": "[1, inf)", "beta": "[0, inf)", "batch_size": "[1, inf)",
        "steps": "[1, inf)"}


@dataclass(frozen=True)
class BetaVAEConfig(AdamSettings, BetaVAEModelSettings):
    """β-VAE hyper-parameters (its own, then Adam's); defaults are the reference study's (see
    module docstring)."""


# Quick (2 CPU cores): 1200 steps at lr 5e-4 instead of 300k at 1e-4; about 165 s of one core
# (~120 s with 2 threads) on shapes3d-synth. Measured there (seed 0, 1500 steps): lr 5e-4 gave
# MIG 0.088 / FVM 0.74 against 0.052 / 0.54 at the paper's 1e-4 (random encoder: MIG 0.010).
# See benchmarks/vae_quick_profile.py.
QUICK_PROFILE: dict[str, Any] = {"steps": 1200, "lr": 5e-4}


def train_beta_vae(ground_truth: GroundTruthData, config: BetaVAEConfig, seed: int,
                   progress: StepCallback | None = None) -> VAEEncoder:
    """Train a β-VAE on uniform samples of ``ground_truth``; deterministic given ``seed``."""
    training = start_vae_training(ground_truth, config, seed)
    batches, vae, noise = training.batches, training.vae, training.noise
    optimizer = training.optimizer

    def step(_: int) -> dict[str, float]:
        images = batches.next()
        mean, logvar, _, logits = vae(images, noise)
        reconstruction = bernoulli_reconstruction(logits, images).mean()
        kl = gaussian_kl(mean, logvar).mean()
        loss = reconstruction + config.beta * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "reconstruction": reconstruction.item(), "kl": kl.item()}

    return finish_vae_training("beta-vae", ground_truth, config, seed, vae, step, progress)


@register_method(
    "beta-vae",
    description="β-VAE (Higgins et al. 2017): conv VAE with β-weighted KL, trained on ground truth",
    kind="representation",
    config_cls=BetaVAEConfig,
    profiles={"quick": QUICK_PROFILE},
    requires=("ground_truth",),
    load_output=load_vae_encoder,
)
def run(bundle: Bundle, config: BetaVAEConfig, seed: int,
        progress: StepCallback | None = None) -> VAEEncoder:
    """Train on ``bundle.ground_truth``; return the encoder (posterior mean)."""
    return train_beta_vae(require_ground_truth(bundle, "beta-vae"), config, seed, progress)

