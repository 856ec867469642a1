"""Image-pair dataset for distillation: (G(w - s d_k), G(w + s d_k), k) in a chunked HDF5.

Layout (what ``distill.group_vae``'s pair reader expects):
- ``images_orig``, ``images_edit``: uint8 ``[N, H, W, C]``, pixel = round((x + 1) * 127.5) clamped
  to [0, 255] for generator output x in [-1, 1];
- ``labels``: int64 ``[N]``, the index of the edited direction *among the kept ones*;
- file attributes: ``kept_indices`` (original direction indices, in label order), ``scales``
  (the edit size s of each kept direction), ``removed_indices``, ``seed``, ``truncation_psi``,
  ``dedup_threshold``, ``num_labels``, ``directions_meta`` (JSON).

Duplicates are removed before sampling (unlike the reference script, which keeps sampling them
with zero edits): direction i is dropped when |cos| between its flattened W+ vector and that of an
earlier kept direction exceeds ``dedup_threshold``. A dropped direction is never drawn.
The file is written under a temporary name in the target folder and renamed when complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from core.io import atomic_path
from core.progress import Bar
from models.directions import Directions
from models.generator import Generator, generator_device

DEFAULT_DEDUP_THRESHOLD = 0.95
EDIT_SAMPLING = ("fixed", "uniform")


def deduplicate(directions: Directions, threshold: float = DEFAULT_DEDUP_THRESHOLD) -> list[int]:
    """Kept indices, in order: i is dropped if |cos(i, j)| > threshold for a kept j < i."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"dedup threshold must be in (0, 1], got {threshold}")
    flat = directions.vectors.flatten(1).double()
    norms = flat.norm(dim=1)
    if torch.any(norms == 0):
        bad = torch.nonzero(norms == 0).flatten().tolist()
        raise ValueError(f"directions {bad} are all-zero; they cannot be edited along")
    unit = flat / norms[:, None]
    kept: list[int] = []
    for i in range(unit.shape[0]):
        if not kept or float((unit[kept] @ unit[i]).abs().max()) <= threshold:
            kept.append(i)
    return kept


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW float in [-1, 1] -> NHWC uint8 (rounded, clamped)."""
    pixels = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255)
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


@torch.no_grad()
def make_pairs(
    generator: Generator,
    directions: Directions,
    path: str | os.PathLike[str],
    *,
    num_pairs: int,
    seed: int,
    batch: int = 256,
    truncation_psi: float = 1.0,
    keep: Sequence[int] | None = None,
    dedup_threshold: float = DEFAULT_DEDUP_THRESHOLD,
    edit_multiplier: float = 1.0,
    edit_sampling: str = "fixed",
    progress: Bar | None = None,
) -> dict[str, Any]:
    """Write ``num_pairs`` pairs to ``path``; return a summary (kept/removed, label counts).

    ``keep`` restricts sampling to those original direction indices (the caller's own dedup);
    None runs ``deduplicate(directions, dedup_threshold)``. z ~ N(0, I) and the labels come from
    generators seeded by ``seed``; ψ = 1 (no truncation) is the reference setting.
    The edit is ``t · edit_multiplier · scale_k · d_k`` on both sides of w (``w ∓ edit``), with
    ``t = 1`` (``edit_sampling="fixed"``, the reference default) or ``t ~ U(-1, 1)``
    (``"uniform"``, the reference's dynamic uniform scale).
    ``progress``: optional bar with ``update(n)`` (advanced by pairs written).
    """
    if num_pairs <= 0 or batch <= 0:
        raise ValueError(f"num_pairs and batch must be positive (got {num_pairs}, {batch})")
    if not edit_multiplier > 0:
        raise ValueError(f"edit_multiplier must be positive, got {edit_multiplier}")
    if edit_sampling not in EDIT_SAMPLING:
        raise ValueError(f"edit_sampling must be one of {EDIT_SAMPLING}, got {edit_sampling!r}")
    k_all = directions.num_directions
    if keep is None:
        kept = deduplicate(directions, dedup_threshold)
    else:
        kept = [int(i) for i in keep]
        if not kept or len(set(kept)) != len(kept) or min(kept) < 0 or max(kept) >= k_all:
            raise ValueError(f"keep must be distinct indices in [0, {k_all}), got {list(keep)}")
    removed = sorted(set(range(k_all)) - set(kept))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    device = generator_device(generator)
    z_rng = torch.Generator().manual_seed(int(seed))
    label_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    deltas = (edit_multiplier * directions.scale[kept, None, None]
              * directions.vectors[kept]).float()  # [m, L, D]
    amount_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    h = w = int(generator.resolution)
    c = int(generator.img_channels)
    chunk = (min(batch, 256, num_pairs), h, w, c)

    counts = np.zeros(len(kept), dtype=np.int64)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            orig = f.create_dataset("images_orig", (num_pairs, h, w, c), np.uint8, chunks=chunk)
            edit = f.create_dataset("images_edit", (num_pairs, h, w, c), np.uint8, chunks=chunk)
            labels = f.create_dataset("labels", (num_pairs,), np.int64, chunks=(chunk[0],))
            for start in range(0, num_pairs, batch):
                size = min(batch, num_pairs - start)
                z = torch.randn(size, generator.z_dim, generator=z_rng)
                wv = generator.mapping(z.to(device), truncation_psi=truncation_psi).float().cpu()
                ws = wv[:, None, :].expand(-1, generator.num_ws, -1)
                label = label_rng.integers(0, len(kept), size=size)
                d = deltas[torch.from_numpy(label)]
                if edit_sampling == "uniform":
                    t = amount_rng.uniform(-1.0, 1.0, size=size).astype(np.float32)
                    d = d * torch.from_numpy(t)[:, None, None]
                # each side goes to uint8 before the next is made: one float batch at a time
                orig[start : start + size] = to_uint8(generator.synthesize((ws - d).to(device)))
                edit[start : start + size] = to_uint8(generator.synthesize((ws + d).to(device)))
                labels[start : start + size] = label
                counts += np.bincount(label, minlength=len(kept))
                if progress is not None:
                    progress.update(size)
            f.attrs["kept_indices"] = np.asarray(kept, dtype=np.int64)
            f.attrs["removed_indices"] = np.asarray(removed, dtype=np.int64)
            f.attrs["scales"] = directions.scale[kept].numpy().astype(np.float64)
            f.attrs["num_labels"] = len(kept)
            f.attrs["seed"] = int(seed)
            f.attrs["truncation_psi"] = float(truncation_psi)
            f.attrs["edit_multiplier"] = float(edit_multiplier)
            f.attrs["edit_sampling"] = edit_sampling
            f.attrs["dedup_threshold"] = float(dedup_threshold) if keep is None else -1.0
            f.attrs["directions_meta"] = json.dumps(directions.meta, sort_keys=True, default=str)
    return {
        "path": str(path),
        "num_pairs": int(num_pairs),
        "kept_indices": kept,
        "removed_indices": removed,
        "label_counts": counts.tolist(),
        "seed": int(seed),
        "truncation_psi": float(truncation_psi),
        "edit_multiplier": float(edit_multiplier),
        "edit_sampling": edit_sampling,
    }


def read_pair_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The attributes of a pair file (kept indices, scales, seed, ...) as plain Python values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pair file not found: {path}")
    with h5py.File(path, "r") as f:
        missing = [k for k in ("images_orig", "images_edit", "labels") if k not in f]
        if missing:
            raise ValueError(f"{path}: not a pair file (missing datasets {missing})")
        out: dict[str, Any] = {}
        for key, value in f.attrs.items():
            out[key] = value.tolist() if hasattr(value, "tolist") else value
        out["num_pairs"] = int(f["labels"].shape[0])
    return out
