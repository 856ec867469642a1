"""ContraFeat's navigator: a direction branch and an attention branch over W+ rows.

- Direction branch: ``pca`` learns coefficients ``C [nv, k]`` (init N(0, 1)) on the top-k
  principal directions of W (``basis`` rows, not scaled by their std), ``d_j = rms(C_j V_k)``;
  ``frozen`` keeps given directions (the ``+att`` add-on on GANSpace, SeFa, ...). Every direction
  is RMS-normalised (L2 norm ``sqrt(w_dim)``), as in the paper's code.
- Attention branch: ``fixed`` learns logits ``[nv, num_ws]`` (init N(0, 1)); weights =
  softmax over rows, then a Gaussian of size 3, std 1 with reflect padding (no renormalisation,
  so rows sum to about 1); ``none`` is uniform ``1 / num_ws``. A generator with fewer rows than
  the filter's half-width + 1 (e.g. one row) is not smoothed.
- Edit: ``E_j = a_j ⊗ d_j`` ``[num_ws, w_dim]``; ``ws' = ws + s E_j``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DIRECTION_BRANCHES = ("pca", "frozen")
ATTENTION_BRANCHES = ("fixed", "none")


def rms_normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Rows scaled to root-mean-square 1 (StyleGAN2's ``normalize_2nd_moment``)."""
    return x * (x.square().mean(dim=-1, keepdim=True) + eps).rsqrt()


def gaussian_kernel(size: int, std: float) -> torch.Tensor:
    """A 1-D Gaussian of ``size`` taps normalised to sum 1 (size 3, std 1: 0.2741, 0.4519, ...)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian_size must be a positive odd number, got {size}")
    if std <= 0:
        raise ValueError(f"gaussian_std must be positive, got {std}")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-(x**2) / (2 * std**2))
    return (kernel / kernel.sum()).float()


def smooth_rows(weights: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Reflect-padded 1-D convolution of each row of ``weights [nv, L]`` with ``kernel``."""
    pad = (kernel.numel() - 1) // 2
    if pad == 0 or weights.shape[1] <= pad:
        return weights
    padded = F.pad(weights[:, None, :], (pad, pad), mode="reflect")
    return F.conv1d(padded, kernel.to(weights)[None, None, :])[:, 0, :]


class Navigator(nn.Module):
    """Learnable W+ edits ``[nv, num_ws, w_dim]`` (input-independent, as the paper's ``fixedE``)."""

    def __init__(
        self,
        num_directions: int,
        num_ws: int,
        w_dim: int,
        *,
        basis: torch.Tensor | None = None,
        frozen: torch.Tensor | None = None,
        attention: str = "fixed",
        gaussian_size: int = 3,
        gaussian_std: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if num_directions < 1:
            raise ValueError(f"num_directions must be positive, got {num_directions}")
        if (basis is None) == (frozen is None):
            raise ValueError("give exactly one of basis (pca branch) or frozen directions")
        if attention not in ATTENTION_BRANCHES:
            raise ValueError(f"attention must be one of {ATTENTION_BRANCHES}, got {attention!r}")
        self.num_directions, self.num_ws, self.w_dim = num_directions, num_ws, w_dim
        self.attention_type = attention
        if basis is not None:
            basis = torch.as_tensor(basis, dtype=torch.float32)
            if basis.ndim != 2 or basis.shape[1] != w_dim:
                raise ValueError(f"basis must be [k, {w_dim}], got {tuple(basis.shape)}")
            self.branch = "pca"
            self.register_buffer("basis", basis.clone())
            self.coefficients = nn.Parameter(
                torch.randn(num_directions, basis.shape[0], generator=generator))
        else:
            frozen = torch.as_tensor(frozen, dtype=torch.float32)
            if frozen.shape != (num_directions, w_dim):
                raise ValueError(f"frozen directions must be [{num_directions}, {w_dim}], got "
                                 f"{tuple(frozen.shape)}")
            self.branch = "frozen"
            self.register_buffer("frozen", rms_normalize(frozen))
        if attention == "fixed":
            self.logits = nn.Parameter(torch.randn(num_directions, num_ws, generator=generator))
        self.register_buffer("kernel", gaussian_kernel(gaussian_size, gaussian_std))

    def directions(self) -> torch.Tensor:
        """RMS-normalised W directions ``[nv, w_dim]``."""
        if self.branch == "frozen":
            return self.frozen
        return rms_normalize(self.coefficients @ self.basis)

    def attention(self) -> torch.Tensor:
        """Per-direction weights over W+ rows ``[nv, num_ws]``."""
        if self.attention_type == "none":
            return torch.full((self.num_directions, self.num_ws), 1.0 / self.num_ws,
                              device=self.kernel.device)
        return smooth_rows(torch.softmax(self.logits, dim=1), self.kernel)

    def edits(self) -> torch.Tensor:
        """``E_j = a_j ⊗ d_j``: ``[nv, num_ws, w_dim]``."""
        return self.attention()[:, :, None] * self.directions()[:, None, :]

    @property
    def direction_norm(self) -> float:
        return math.sqrt(self.w_dim)
