"""Factor balance: an optional term that asks a GAN generator for the data's factor marginals.

A discriminator scores one image at a time, so it barely sees a generator that draws every
factor value well but some of them too rarely (the shipped shapes3d generator's bell-shaped
scale histogram, docs/generator.md). Following the idea of a classifier in the loop (Rangwani
et al., "Class Balancing GAN with a Classifier in the Loop", UAI 2021), a small classifier
learns the ground-truth factors from the real batches of training, and the generator's
predicted class marginal per factor is tracked as a running average over generated batches.
The generator pays ``balance_loss``, the first-order change of KL(uniform || running marginal)
that its batch would cause: each class's mean predicted probability weighted by one over its
running frequency, so rare classes pull and common ones push. (The KL of one batch's own mean
is no estimate of it: a batch of 32 leaves some of 10 or 15 classes empty by chance, and its
gradient would chase that noise.) Uniform is the target because ground-truth factors are drawn
uniformly. The classifier is trained with the run, on real images only, and shares no weights
with the attribute predictor that measures generator quality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

CLASSIFIER_LR = 1e-3
# running marginal: about 50 batches of 32 (1,600 images, some 100-200 per class of a factor)
MARGINAL_MOMENTUM = 0.02
MIN_FREQUENCY = 1e-3  # caps a missing class's weight at 1 / (K * MIN_FREQUENCY)


class FactorClassifier(nn.Module):
    """Small convnet: images [n, C, R, R] in [-1, 1] -> concatenated per-factor logits."""

    def __init__(self, resolution: int, img_channels: int, factor_sizes: Sequence[int],
                 width: int = 32) -> None:
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        if not factor_sizes or min(factor_sizes) < 2:
            raise ValueError(f"factor_sizes must name factors of >= 2 classes, got "
                             f"{tuple(factor_sizes)}")
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        layers: list[nn.Module] = []
        channels, size = img_channels, resolution
        while size > 4:
            out = min(width * (resolution // size), 4 * width)
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.LeakyReLU(0.2),
                       nn.AvgPool2d(2)]
            channels, size = out, size // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(channels * 16, sum(self.factor_sizes))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """One logit tensor [n, size] per factor."""
        return list(self.head(self.features(images)).split(self.factor_sizes, dim=1))

    def loss(self, images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """Cross-entropy summed over factors, for ``factors`` int64 [n, num_factors]."""
        logits = self(images)
        return sum((F.cross_entropy(lg, factors[:, i]) for i, lg in enumerate(logits)),
                   torch.zeros(()))


def batch_marginals(logits: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per factor, the batch's mean predicted class distribution (differentiable)."""
    return [F.softmax(lg, dim=1).mean(dim=0) for lg in logits]


def uniform_marginals(factor_sizes: Sequence[int]) -> list[torch.Tensor]:
    """The target (and starting) marginal of every factor."""
    return [torch.full((size,), 1.0 / size) for size in factor_sizes]


def update_marginals(running: Sequence[torch.Tensor], batch: Sequence[torch.Tensor],
                     momentum: float = MARGINAL_MOMENTUM) -> list[torch.Tensor]:
    """Exponential running average of batch marginals (detached)."""
    return [r.lerp(b.detach(), momentum) for r, b in zip(running, batch, strict=True)]


def balance_loss(batch: Sequence[torch.Tensor], running: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over factors of 1 - mean_k p_k / r_k for batch marginal p and running marginal r.

    Its gradient is that of KL(uniform || r) to first order in a step of the running average
    towards p; it is 0 when p = r and zero-gradient when r is uniform.
    """
    total = torch.zeros(())
    for p, r in zip(batch, running, strict=True):
        total = total + 1.0 - (p / r.detach().clamp_min(MIN_FREQUENCY)).mean()
    return total


def marginal_kl(marginals: Sequence[torch.Tensor]) -> float:
    """Sum over factors of KL(uniform || marginal): 0 when every factor is balanced."""
    total = 0.0
    for m in marginals:
        total += -math.log(m.numel()) - float(m.detach().clamp_min(1e-8).log().mean())
    return total
