"""Seeded sampling of a generator: W codes from z ~ N(0, I), fixed W+ banks and batched images.

The one home of these draws, so that a method's PCA of W, a metric's latent bank and a figure's
traversal all read z from the same CPU stream rule (z never depends on the device).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from models.generator import Generator, generator_device


@torch.no_grad()
def sample_w(
    generator: Generator,
    num: int,
    rng: torch.Generator,
    *,
    batch: int = 10_000,
    truncation_psi: float = 1.0,
) -> Iterator[torch.Tensor]:
    """Yield W batches ``[b, w_dim]`` (float32, CPU) of ``num`` mapped z ~ N(0, I) draws.

    z is drawn on the CPU from ``rng`` so the stream does not depend on the device.
    """
    if num <= 0 or batch <= 0:
        raise ValueError(f"num and batch must be positive (got num={num}, batch={batch})")
    device = generator_device(generator)
    done = 0
    while done < num:
        size = min(batch, num - done)
        z = torch.randn(size, generator.z_dim, generator=rng)
        w = generator.mapping(z.to(device), truncation_psi=truncation_psi)
        yield w.detach().to("cpu", torch.float32)
        done += size


@torch.no_grad()
def map_z(generator: Generator, num: int, seed: int, truncation_psi: float,
          batch: int) -> torch.Tensor:
    """W ``[num, w_dim]`` (CPU float32) of ``num`` z ~ N(0, I) drawn from a seeded CPU stream."""
    if num <= 0:
        raise ValueError(f"number of latents must be positive, got {num}")
    rng = torch.Generator().manual_seed(int(seed))
    device = generator_device(generator)
    out = []
    for start in range(0, num, batch):
        z = torch.randn(min(batch, num - start), generator.z_dim, generator=rng)
        out.append(generator.mapping(z.to(device), truncation_psi=truncation_psi).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def latent_bank(
    generator: Generator, num: int, seed: int, truncation_psi: float, batch: int = 1000
) -> torch.Tensor:
    """A fixed W+ bank ``[num, num_ws, w_dim]`` from ``num`` seeded z (CPU float32)."""
    w = map_z(generator, num, seed, truncation_psi, batch)
    return w[:, None, :].expand(-1, generator.num_ws, -1).contiguous()


@torch.no_grad()
def synthesize(generator: Generator, ws: torch.Tensor, batch: int) -> torch.Tensor:
    """Images (CPU float32 NCHW) of W+ codes, in batches, on the generator's device."""
    device = generator_device(generator)
    out = [
        generator.synthesize(ws[i : i + batch].to(device)).detach().float().cpu()
        for i in range(0, ws.shape[0], batch)
    ]
    return torch.cat(out)
