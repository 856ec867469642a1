"""Perceptual distance between images over a sensor's feature maps (LPIPS's form).

``PerceptualDistance(sensor)`` compares two batches of NCHW images in [-1, 1] image by image:
per feature stage, every spatial position's channel vector is scaled to unit length, the squared
difference is summed over channels (weighted per channel when the sensor carries
``channel_weights``, as LPIPS's learned linear layers do) and averaged over positions; the stages
are summed. That is LPIPS exactly for the ``lpips-vgg`` sensor with its linear weights, and the
same form without learned weights for the others (``shapes3d-disc``, ``alexnet``). A sensor whose
``unit_normalise`` is False (``pixels``: the image at three scales) is compared raw: then the
distance is a multi-scale mean squared error.

Used by the projector (``models.projection``) as its loss and by ``bench edit`` to report how far
a projection is from its photo.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from models.sensors import load_sensor

EPS = 1e-10  # LPIPS's guard when scaling a channel vector to unit length


def unit_channels(x: torch.Tensor) -> torch.Tensor:
    """``x`` [n, c, h, w] with every position's channel vector scaled to unit length."""
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)


class PerceptualDistance(nn.Module):
    """Images -> per-image distance ``[n]`` over the maps of a frozen sensor (see module doc)."""

    def __init__(self, sensor: nn.Module, name: str = "") -> None:
        super().__init__()
        self.sensor = sensor.eval().requires_grad_(False)
        self.name = name or type(sensor).__name__
        self.unit_normalise = bool(getattr(sensor, "unit_normalise", True))
        weights = getattr(sensor, "channel_weights", None)
        self.channel_weights = None if weights is None else [w.detach() for w in weights]

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The sensor's maps of ``images``, unit-normalised per position when the sensor asks."""
        maps = self.sensor(images)
        return [unit_channels(m) for m in maps] if self.unit_normalise else list(maps)

    def between(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        """Per-image distance ``[n]`` between two lists of maps from ``features``."""
        if len(a) != len(b):
            raise ValueError(f"feature lists differ in length ({len(a)} vs {len(b)})")
        total = None
        for stage, (x, y) in enumerate(zip(a, b, strict=True)):
            diff = (x - y).pow(2)
            if self.channel_weights is not None:
                weight = self.channel_weights[stage].to(diff.device, diff.dtype)
                diff = diff * weight.reshape(1, -1, 1, 1)
            part = diff.sum(dim=1).flatten(1).mean(dim=1)
            total = part if total is None else total + part
        if total is None:
            raise ValueError(f"sensor {self.name!r} returned no feature maps")
        return total

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-image distance between two image batches of equal shape."""
        return self.between(self.features(images), self.features(targets))


def perceptual_distance(name: str,
                        weights: str | os.PathLike[str] | None = None) -> PerceptualDistance:
    """The distance over the registered sensor ``name`` (weights as ``load_sensor`` takes)."""
    return PerceptualDistance(load_sensor(name, weights), name)


def psnr(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-image peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2); an
    identical pair gives inf."""
    mse = (images.clamp(-1, 1) - targets.clamp(-1, 1)).double().pow(2).flatten(1).mean(dim=1)
    return (10.0 * torch.log10(4.0 / mse)).float()


__all__ = ["PerceptualDistance", "perceptual_distance", "psnr", "unit_channels"]
