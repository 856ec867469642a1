"""The generator protocol every direction-discovery method talks to."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Generator(Protocol):
    """A StyleGAN2-like generator with a W / W+ latent space.

    ``mapping`` returns W codes ``[n, w_dim]``; ``synthesize`` takes W+ codes
    ``[n, num_ws, w_dim]`` and returns NCHW images roughly in [-1, 1].
    """

    z_dim: int
    w_dim: int
    num_ws: int
    resolution: int
    img_channels: int

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor: ...

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor: ...

    @property
    def w_avg(self) -> torch.Tensor: ...

    def style_affines(self) -> list[torch.Tensor]:
        """Affine weights ``[C_in, w_dim]`` of the layer reading each W+ index, in index order."""
        ...

    def features(self, ws: torch.Tensor, upto_block: int) -> list[torch.Tensor]:
        """Intermediate synthesis feature maps of the first ``upto_block`` blocks."""
        ...


def broadcast_ws(w: torch.Tensor, num_ws: int) -> torch.Tensor:
    """W ``[n, w_dim]`` -> W+ ``[n, num_ws, w_dim]`` (a view, not a copy)."""
    if w.ndim == 3:
        return w
    return w.unsqueeze(1).expand(-1, num_ws, -1)


def generator_device(generator: Generator) -> torch.device:
    """The device a generator's parameters live on (CPU for parameter-free stand-ins)."""
    device = getattr(generator, "device", None)
    if isinstance(device, torch.device | str):
        return torch.device(device)
    parameters = getattr(generator, "parameters", None)
    if callable(parameters):
        for param in parameters():
            return param.device
    return torch.device("cpu")


def nearest_upsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """NCHW images with each pixel repeated ``factor`` times along both axes."""
    if factor == 1:
        return images
    return images.repeat_interleave(factor, -2).repeat_interleave(factor, -1)


class UpsampledGenerator(torch.nn.Module):
    """A generator seen at a larger image size: ``synthesize`` repeats each pixel ``size //
    resolution`` times along both axes (nearest upsampling), everything else is the wrapped
    generator's.

    It lets a 32-px generator feed a pipeline built for 64-px images (the shapes3d predictor,
    the group VAE) without changing what the generator learnt: area-downsampling the output by
    the same factor gives the native images back exactly. ``native_resolution`` is the wrapped
    generator's own size (``bench quality`` compares at that size).
    """

    def __init__(self, generator: Generator, size: int) -> None:
        super().__init__()
        native = int(generator.resolution)
        if size < native or size % native:
            raise ValueError(f"cannot upsample {native}-px images to {size} px "
                             "(needs a whole multiple)")
        self.generator = generator
        self.factor = size // native
        self.native_resolution = native
        self.resolution = int(size)
        self.z_dim = int(generator.z_dim)
        self.w_dim = int(generator.w_dim)
        self.num_ws = int(generator.num_ws)
        self.img_channels = int(generator.img_channels)

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        return self.generator.mapping(z, truncation_psi=truncation_psi)

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        return nearest_upsample(self.generator.synthesize(ws), self.factor)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.generator.w_avg

    def style_affines(self) -> list[torch.Tensor]:
        return self.generator.style_affines()

    def features(self, ws: torch.Tensor, upto_block: int) -> list[torch.Tensor]:
        return self.generator.features(ws, upto_block)


def seen_at(generator: Generator, size: int) -> Any:
    """``generator`` itself when its images are ``size`` px, else an ``UpsampledGenerator``."""
    if int(generator.resolution) == int(size):
        return generator
    return UpsampledGenerator(generator, size)
