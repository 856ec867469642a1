"""StyleGAN2 residual discriminator (NVIDIA parameter names: ``b{res}.{fromrgb,conv0,conv1,skip}``,
``b4.{conv,fc,out}``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from models.stylegan2.config import StyleGAN2Config
from models.stylegan2.ops import Conv2dLayer, FullyConnectedLayer


class DiscriminatorBlock(nn.Module):
    """Residual block: main = conv3x3 -> blur + stride-2 conv3x3; skip = blur + stride-2 1x1;
    output (main + skip) / sqrt 2. The first block also holds the fromRGB 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, img_channels: int,
                 first: bool, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.first = first
        if first:
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu",
                                       conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu",
                                 conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", down=2,
                                 conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.first:
            x = self.fromrgb(x)
        gain = math.sqrt(0.5)
        y = self.skip(x, gain=gain)
        x = self.conv0(x)
        x = self.conv1(x, gain=gain)
        return y + x


def minibatch_stddev(x: torch.Tensor, group_size: int, num_channels: int = 1) -> torch.Tensor:
    """Append the group std (averaged over channels and pixels) as ``num_channels`` extra maps.

    Groups are formed NVIDIA-style: sample i belongs to group ``i % (n // G)``.
    """
    n, c, h, w = x.shape
    g = min(group_size, n) if group_size else n
    if n % g:
        raise ValueError(f"batch size {n} must be divisible by the minibatch-stddev group {g}")
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)
    y = y - y.mean(dim=0)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()
    y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
    y = y.repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev, 3x3 conv, dense C*16 -> C, dense C -> 1."""

    def __init__(self, channels: int, mbstd_group: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.mbstd_group = mbstd_group
        self.conv = Conv2dLayer(channels + 1, channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(channels * 16, channels, activation="lrelu")
        self.out = FullyConnectedLayer(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = minibatch_stddev(x, self.mbstd_group)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        return self.out(x)


class StyleGAN2Discriminator(nn.Module):
    """Resnet discriminator with the config's discriminator channel table (the generator's unless
    ``disc_channels`` is set); returns logits [n, 1]."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        if config.resolution < 8:
            raise ValueError(f"the discriminator needs resolution >= 8, got {config.resolution}")
        self.config = config
        self.resolution = config.resolution
        self.img_channels = config.img_channels
        self.block_resolutions = [r for r in reversed(config.block_resolutions) if r > 4]
        for res in self.block_resolutions:
            block = DiscriminatorBlock(config.disc_channels_at(res),
                                       config.disc_channels_at(res // 2),
                                       config.img_channels, first=res == config.resolution,
                                       conv_clamp=config.conv_clamp)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(config.disc_channels_at(4), config.mbstd_group,
                                        conv_clamp=config.conv_clamp)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        expected = (self.img_channels, self.resolution, self.resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"discriminator expects images [n, {expected[0]}, {expected[1]}, "
                             f"{expected[2]}], got {tuple(img.shape)}")
        x = img
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x)
        return self.b4(x)
