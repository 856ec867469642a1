"""Shared pieces of the foreign-checkpoint importers: the error type, the strict state-dict load
into a native generator, and the w_avg estimate for formats that do not store one."""

from __future__ import annotations

import argparse
import os
import pickle
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from core.errors import DataError
from models.stylegan2.config import StyleGAN2Config
from models.stylegan2.generator import StyleGAN2Generator


class CheckpointFormatError(DataError):
    """A checkpoint whose content does not match the format it was read as (one-line message).

    A DataError (and so a ValueError): the file is the user's input, not the code."""


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


def refused_global(exc: BaseException) -> str | None:
    """The global a ``weights_only`` torch.load refused, from its error message (None if none)."""
    match = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(exc))
    return match.group(1) if match else None


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
        refused = refused_global(exc)
        if refused:
            raise CheckpointFormatError(
                f"{path}: holds a pickled '{refused}' object, which is not loaded "
                f"(weights_only=True); expected a {kind} checkpoint of tensors / state dicts"
            ) from None
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


def infer_native_config(
    state: Mapping[str, torch.Tensor], source: str, mapping_lr_mul: float = 0.01
) -> StyleGAN2Config:
    """A skip-architecture config read off the shapes of a native-named state dict.

    Formats that store no architecture (genforce) go through this. The channel table becomes
    ``channel_base``/``channel_max`` when NVIDIA's rule reproduces it (32768 or 16384 with 512
    tried first), and an explicit table otherwise. conv_clamp is None (no such format stores
    one)."""
    try:
        resolutions = sorted({int(k.split(".")[1][1:]) for k in state
                              if k.startswith("synthesis.b") and k.split(".")[1][1:].isdigit()})
        if not resolutions:
            raise KeyError("synthesis.b<res>.*")
        resolution = resolutions[-1]
        mapping_layers = 0
        while f"mapping.fc{mapping_layers}.weight" in state:
            mapping_layers += 1
        first = state["mapping.fc0.weight"]
        last = state[f"mapping.fc{mapping_layers - 1}.weight"]
        channels = {4: int(state["synthesis.b4.const"].shape[0])}
        for res in resolutions[1:]:
            channels[res] = int(state[f"synthesis.b{res}.conv0.weight"].shape[0])
        img_channels = int(state["synthesis.b4.torgb.weight"].shape[0])
    except (KeyError, IndexError, ValueError) as exc:
        raise CheckpointFormatError(f"{source}: cannot infer the generator architecture "
                                    f"(missing {first_line(exc)})") from None
    base = {
        "resolution": resolution,
        "z_dim": int(first.shape[1]),
        "w_dim": int(last.shape[0]),
        "mapping_layers": mapping_layers,
        "img_channels": img_channels,
        "use_noise": "synthesis.b4.conv1.noise_strength" in state,
        "mapping_lr_mul": mapping_lr_mul,
    }
    candidates = [(32768, 512), (16384, 512), (channels[resolution] * resolution, channels[4])]
    try:
        for channel_base, channel_max in candidates:
            config = StyleGAN2Config(**base, channel_base=channel_base, channel_max=channel_max)
            if config.channel_table() == channels:
                return config
        return StyleGAN2Config(**base, channels=tuple(sorted(channels.items())))
    except ValueError as exc:
        raise CheckpointFormatError(f"{source}: {first_line(exc)}") from None
