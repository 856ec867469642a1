"""Factor balance: an optional term that asks a GAN generator for the data's factor marginals.

A discriminator scores one image at a time, so it barely sees a generator that draws every
factor value well but some of them too rarely (the shipped shapes3d generator's bell-shaped
scale histogram, docs/generator.md). Following the idea of a classifier in the loop (Rangwani
et al., "Class Balancing GAN with a Classifier in the Loop", UAI 2021), a small classifier
learns the ground-truth factors from the real batches of training, and the generator pays
``balance_penalty`` of its predictions on each generated batch: per factor, the KL divergence
from the uniform marginal (the data's: ground-truth factors are drawn uniformly) to the batch's
mean predicted class distribution. It is zero when the batch covers every class equally and
grows as classes go missing. The classifier is trained with the run, on real images only, and
shares no weights with the attribute predictor that measures generator quality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

CLASSIFIER_LR = 1e-3


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


def balance_penalty(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over factors of KL(uniform || batch-mean softmax); 0 for a perfectly balanced batch."""
    total = torch.zeros(())
    for lg in logits:
        mean_prob = F.softmax(lg, dim=1).mean(dim=0).clamp_min(1e-8)
        classes = lg.shape[1]
        total = total - math.log(classes) - mean_prob.log().mean()
    return total
