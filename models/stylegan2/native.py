"""Native generator checkpoints: ``name.safetensors`` (NVIDIA parameter names, raw values) plus
``name.json`` (architecture config and free-form metadata). Loading runs no code."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from core.io import atomic_path
from models.stylegan2.config import StyleGAN2Config
from models.stylegan2.generator import StyleGAN2Generator

FORMAT_NAME = "disentangle-bench/stylegan2-generator"
FORMAT_VERSION = 1


def checkpoint_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(weights, json) paths for ``name``, ``name.safetensors`` or ``name.json``."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def _atomic_write(target: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` on a temp file beside ``target``, then rename it into place."""
    with atomic_path(target) as tmp:
        write(str(tmp))


def save_generator(G: StyleGAN2Generator, path: str | os.PathLike[str],
                   extra_meta: dict[str, Any] | None = None,
                   dtype: torch.dtype = torch.float32) -> tuple[Path, Path]:
    """Write ``G``'s state dict and config atomically; returns the two paths written.

    ``dtype`` is the storage precision (float16 halves a committed asset; loading casts back
    to float32)."""
    if dtype not in (torch.float32, torch.float16):
        raise ValueError(f"dtype must be torch.float32 or torch.float16, got {dtype}")
    weights_path, json_path = checkpoint_paths(path)
    tensors = {k: v.detach().to("cpu", dtype).contiguous().clone()
               for k, v in G.state_dict().items()}
    doc = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": G.config.to_dict(),
        "meta": dict(extra_meta or {}),
    }
    _atomic_write(weights_path,
                  lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT_NAME}))

    def write_json(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, sort_keys=False)
            fh.write("\n")

    _atomic_write(json_path, write_json)
    return weights_path, json_path


def read_checkpoint_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON side file: {"format", "version", "config", "meta"}."""
    _, json_path = checkpoint_paths(path)
    if not json_path.is_file():
        raise FileNotFoundError(f"generator config {json_path} not found (expected beside the "
                                f".safetensors weights)")
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{json_path}: not valid JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME or "config" not in doc:
        raise ValueError(f"{json_path}: not a {FORMAT_NAME} config file")
    if int(doc.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{json_path}: format version {doc['version']} is newer than supported "
                         f"({FORMAT_VERSION})")
    return doc


def load_generator(path: str | os.PathLike[str], device: str | torch.device = "cpu"
                   ) -> StyleGAN2Generator:
    """Rebuild a generator from ``name.safetensors`` + ``name.json`` with a strict key check.

    The returned module is in eval mode (so ``w_avg`` stays fixed)."""
    weights_path, json_path = checkpoint_paths(path)
    if not weights_path.is_file():
        raise FileNotFoundError(f"generator weights {weights_path} not found")
    doc = read_checkpoint_json(path)
    try:
        config = StyleGAN2Config.from_dict(doc["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{json_path}: invalid config ({err})") from None
    tensors = load_file(str(weights_path), device=str(device))
    G = StyleGAN2Generator(config)
    expected = G.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{weights_path}: state dict does not match its config "
                         f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})")
    wrong = [f"{k} {tuple(tensors[k].shape)} != {tuple(v.shape)}"
             for k, v in expected.items() if tensors[k].shape != v.shape]
    if wrong:
        raise ValueError(f"{weights_path}: tensor shapes do not match the config: {wrong[:5]}")
    G.load_state_dict(tensors, strict=True)
    G.to(device)
    G.eval()
    G.requires_grad_(False)
    return G
