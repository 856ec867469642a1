"""Known-answer stand-ins for the Generator protocol used by the direction tests.

``LinearToyGenerator``: w = mean + Q diag(stds) z (Q a known orthogonal matrix, so the principal
directions of W are Q's first columns), images = M · (flattened W+), so pixel changes are exactly
linear in an edit; ``style_affines`` returns caller-given matrices (for SeFa).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch


def orthogonal(dim: int, seed: int) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=rng, dtype=torch.float64))
    return q.float()


class LinearToyGenerator:
    """A linear generator with a known anisotropic W distribution."""

    def __init__(
        self,
        w_dim: int = 16,
        num_ws: int = 3,
        resolution: int = 4,
        img_channels: int = 1,
        stds: list[float] | None = None,
        affines: list[torch.Tensor] | None = None,
        seed: int = 0,
    ) -> None:
        self.z_dim = w_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.resolution = resolution
        self.img_channels = img_channels
        stds = stds if stds is not None else [1.0] * w_dim
        self.stds = torch.tensor(stds, dtype=torch.float32)
        self.basis = orthogonal(w_dim, seed)  # columns: principal directions of W
        rng = torch.Generator().manual_seed(seed + 1)
        self.mean = 0.1 * torch.randn(w_dim, generator=rng)
        pixels = img_channels * resolution * resolution
        self.synthesis_matrix = torch.randn(pixels, num_ws * w_dim, generator=rng) / (
            num_ws * w_dim
        ) ** 0.5
        self._affines = affines
        self.mapping_calls = 0

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        self.mapping_calls += 1
        w = self.mean + (z * self.stds) @ self.basis.T
        return self.mean + truncation_psi * (w - self.mean)

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        flat = ws.reshape(ws.shape[0], -1) @ self.synthesis_matrix.T
        return flat.reshape(-1, self.img_channels, self.resolution, self.resolution)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mean

    def style_affines(self) -> list[torch.Tensor]:
        if self._affines is None:
            raise NotImplementedError("this toy has no style affines")
        return self._affines

    def features(self, ws: torch.Tensor, upto_block: int) -> list[torch.Tensor]:
        return [self.synthesize(ws)]


class PixelAttributeGenerator:
    """Image = the W+ row 0 itself, one pixel per W coordinate (attributes are readable)."""

    def __init__(self, w_dim: int = 4, num_ws: int = 2) -> None:
        self.z_dim = self.w_dim = w_dim
        self.num_ws = num_ws
        self.resolution = 1
        self.img_channels = w_dim

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        return truncation_psi * z

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        return ws[:, 0, :, None, None]

    @property
    def w_avg(self) -> torch.Tensor:
        return torch.zeros(self.w_dim)

    def style_affines(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def features(self, ws: torch.Tensor, upto_block: int) -> list[torch.Tensor]:
        return [self.synthesize(ws)]


def bundle_of(generator: object) -> SimpleNamespace:
    """The minimum of a Bundle that direction methods touch."""
    return SimpleNamespace(generator=generator, name="toy")
