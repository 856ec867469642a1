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


def generator_device(generator: Any) -> torch.device:
    """The device a generator's parameters live on (CPU for parameter-free stand-ins)."""
    device = getattr(generator, "device", None)
    if isinstance(device, torch.device | str):
        return torch.device(device)
    parameters = getattr(generator, "parameters", None)
    if callable(parameters):
        for param in parameters():
            return param.device
    return torch.device("cpu")
