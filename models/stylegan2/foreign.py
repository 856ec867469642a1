"""Shared pieces of the foreign-checkpoint importers: the error type, the strict state-dict load
into a native generator, and the w_avg estimate for formats that do not store one."""

from __future__ import annotations

import argparse
import os
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from models.stylegan2.config import StyleGAN2Config
from models.stylegan2.generator import StyleGAN2Generator


class CheckpointFormatError(ValueError):
    """A checkpoint whose content does not match the format it was read as (one-line message)."""


class UnsafePickleError(CheckpointFormatError):
    """A pickle that references a global outside the importer's allowlist."""


def short_list(keys: Iterable[str], limit: int = 8) -> str:
    """``a, b, c, ... (N in all)`` for error messages; ``none`` when empty."""
    keys = list(keys)
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def first_line(exc: BaseException) -> str:
    """The first line of an exception message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_torch_checkpoint(path: str | os.PathLike[str], kind: str) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, allowing ``argparse.Namespace`` (the
    ``args`` of rosinality training checkpoints) and nothing else beyond torch's own allowlist.

    Unreadable files raise ``CheckpointFormatError`` naming the file and ``kind``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {kind} checkpoint file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile,
            AttributeError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise CheckpointFormatError(
            f"{path}: cannot be read as a {kind} torch.save checkpoint with weights_only=True "
            f"({first_line(exc)})"
        ) from None


@torch.no_grad()
def estimate_w_avg(G: StyleGAN2Generator, num_samples: int = 10_000, seed: int = 0,
                   batch_size: int = 2_000) -> torch.Tensor:
    """Mean of ``G.mapping`` over ``num_samples`` standard-normal z drawn from a seeded generator.

    Used for formats that keep no running average (rosinality training checkpoints)."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    rng = torch.Generator().manual_seed(seed)
    device = G.w_avg.device
    total = torch.zeros(G.w_dim, dtype=torch.float64, device=device)
    done = 0
    while done < num_samples:
        n = min(batch_size, num_samples - done)
        z = torch.randn(n, G.z_dim, generator=rng).to(device)
        total += G.mapping(z, update_w_avg=False).to(torch.float64).sum(dim=0)
        done += n
    return (total / num_samples).to(torch.float32)


def generator_from_state_dict(
    config: StyleGAN2Config,
    state: Mapping[str, torch.Tensor],
    source: str,
    optional: Iterable[str] = (),
) -> StyleGAN2Generator:
    """Build ``StyleGAN2Generator(config)`` and load ``state`` strictly.

    Keys in ``optional`` may be absent (the module keeps its initial values); any other missing
    key, unknown key or shape mismatch raises a ``CheckpointFormatError`` naming ``source``.
    The result is in eval mode with gradients off.
    """
    G = StyleGAN2Generator(config)
    expected = G.state_dict()
    optional = set(optional)
    missing = sorted(k for k in expected if k not in state and k not in optional)
    unknown = sorted(k for k in state if k not in expected)
    if missing or unknown:
        raise CheckpointFormatError(
            f"{source}: tensors do not match a {config.resolution}x{config.resolution} "
            f"StyleGAN2 generator; missing: {short_list(missing)}; unknown: {short_list(unknown)}"
        )
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if wrong:
        raise CheckpointFormatError(f"{source}: tensor shapes do not match the inferred "
                                    f"architecture: {short_list(wrong, 4)}")
    merged = {k: (state[k] if k in state else v) for k, v in expected.items()}
    merged = {k: v.detach().to(torch.float32) for k, v in merged.items()}
    G.load_state_dict(merged, strict=True)
    G.eval()
    G.requires_grad_(False)
    return G
