"""The convolutional VAE of the β-VAE paper for 64×64 images (disentanglement_lib's layout).

Encoder: Conv 32 k4s2, Conv 32 k4s2, Conv 64 k2s2, Conv 64 k2s2 (ReLU), FC 256 (ReLU), then two
linear heads for the posterior mean and log-variance. Decoder: FC 256, FC 1024 (ReLU), reshape to
64×4×4, ConvT 64 k4s2, 32 k4s2, 32 k4s2, C k4s2 (ReLU between); the output is a pixel logit.
Reconstruction is Bernoulli (sigmoid cross-entropy against pixel values in [0, 1]); the prior is
N(0, I). Works for 1- or 3-channel images.

``resolution=32`` is the same network one stride-2 stage shorter on each side, for 64×64
observations area-downsampled 2× (:func:`to_resolution`) inside the encoder: about 4x less
compute per image, the interface (uint8 64×64 in, codes out) unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

RESOLUTION = 64  # the observations' size
RESOLUTIONS = (64, 32)  # what the network may work at


@dataclass(frozen=True)
class VAEArchitecture:
    """What fixes the network's shapes (stored beside the weights)."""

    num_latents: int = 10
    channels: int = 3
    resolution: int = RESOLUTION

    def __post_init__(self) -> None:
        if self.num_latents < 1:
            raise ValueError(f"num_latents must be >= 1, got {self.num_latents}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ConvEncoder(nn.Module):
    """Images float NCHW in [0, 1] -> posterior (mean, log-variance), each (n, num_latents)."""

    def __init__(self, arch: VAEArchitecture) -> None:
        super().__init__()
        self.arch = arch
        full = arch.resolution == RESOLUTION
        self.features = nn.Sequential(
            nn.Conv2d(arch.channels, 32, 4, stride=2, padding=1), nn.ReLU(),  # 32×32 (16×16)
            nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),  # 16×16 (8×8)
            nn.Conv2d(32, 64, 2, stride=2), nn.ReLU(),  # 8×8 (4×4)
            *((nn.Conv2d(64, 64, 2, stride=2), nn.ReLU()) if full else ()),  # 4×4
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 256), nn.ReLU(),
        )
        self.mean = nn.Linear(256, arch.num_latents)
        self.logvar = nn.Linear(256, arch.num_latents)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.features(to_resolution(images, self.arch.resolution))
        return self.mean(hidden), self.logvar(hidden)


class DeconvDecoder(nn.Module):
    """Latent codes (n, num_latents) -> pixel logits NCHW (n, C, resolution, resolution)."""

    def __init__(self, arch: VAEArchitecture) -> None:
        super().__init__()
        self.arch = arch
        self.dense = nn.Sequential(
            nn.Linear(arch.num_latents, 256), nn.ReLU(),
            nn.Linear(256, 64 * 4 * 4), nn.ReLU(),
        )
        full = arch.resolution == RESOLUTION
        self.deconv = nn.Sequential(
            *((nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1), nn.ReLU()) if full else ()),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),  # 16×16 (8×8)
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),  # 32×32 (16×16)
            nn.ConvTranspose2d(32, arch.channels, 4, stride=2, padding=1),  # 64×64 (32×32)
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.dense(codes).view(-1, 64, 4, 4))


class VAE(nn.Module):
    """Encoder + decoder; ``forward`` returns what the losses need."""

    def __init__(self, arch: VAEArchitecture) -> None:
        super().__init__()
        self.arch = arch
        self.encoder = ConvEncoder(arch)
        self.decoder = DeconvDecoder(arch)

    def forward(
        self, images: torch.Tensor, noise: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean, logvar, sampled code, reconstruction logits) for images in [0, 1]."""
        mean, logvar = self.encoder(images)
        codes = reparameterise(mean, logvar, noise)
        return mean, logvar, codes, self.decoder(codes)


def to_resolution(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """NCHW images area-downsampled to ``resolution`` (unchanged when already that size)."""
    size = images.shape[-1]
    if size == resolution:
        return images
    if size % resolution:
        raise ValueError(f"images of size {size} cannot be area-downsampled to {resolution}")
    return F.avg_pool2d(images, size // resolution)


def build_vae(arch: VAEArchitecture, seed: int) -> VAE:
    """A freshly initialised VAE whose weights depend only on ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(arch)


def reparameterise(
    mean: torch.Tensor, logvar: torch.Tensor, noise: torch.Generator | None
) -> torch.Tensor:
    """z = mean + exp(logvar / 2)·ε with ε ~ N(0, I) drawn from ``noise``.

    ``noise=None`` returns the mean (deterministic decoding, for evaluation only).
    """
    if noise is None:
        return mean
    eps = torch.randn(mean.shape, generator=noise, dtype=mean.dtype, device=mean.device)
    return mean + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample, summed over latent dims: shape (n,)."""
    return 0.5 * (mean.square() + logvar.exp() - logvar - 1.0).sum(dim=1)


def bernoulli_reconstruction(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy of pixel targets in [0, 1] per sample, summed over pixels: (n,)."""
    loss = F.binary_cross_entropy_with_logits(logits, images, reduction="none")
    return loss.flatten(1).sum(dim=1)


def images_to_tensor(observations: np.ndarray, channels: int | None = None) -> torch.Tensor:
    """uint8 NHWC (n, 64, 64, C) -> float32 NCHW in [0, 1]; a clear error on any other input."""
    if not isinstance(observations, np.ndarray) or observations.dtype != np.uint8:
        kind = getattr(observations, "dtype", type(observations).__name__)
        raise ValueError(f"observations must be a uint8 numpy array (n, H, W, C), got {kind}")
    if observations.ndim != 4 or observations.shape[1:3] != (RESOLUTION, RESOLUTION):
        raise ValueError(
            f"observations must have shape (n, {RESOLUTION}, {RESOLUTION}, C), "
            f"got {observations.shape}"
        )
    if channels is not None and observations.shape[3] != channels:
        raise ValueError(
            f"observations must have {channels} channel(s), got {observations.shape[3]}"
        )
    tensor = torch.from_numpy(np.ascontiguousarray(observations)).permute(0, 3, 1, 2)
    return tensor.to(torch.float32).div_(255.0)

