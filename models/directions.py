"""Directions: the output of every direction-discovery method (a set of W+ edits).

It lives below ``methods`` and ``metrics`` because both speak it: methods return it, the
discovery metrics and the flows read it.

A direction is a W+ tensor ``[num_ws, w_dim]``: a plain W direction is the same vector on every
W+ row (or on the rows its method selects, zeros elsewhere). ``scale[k]`` is the edit size the
discovery metrics and the pair dataset use: an edit moves ``ws`` by ``amount * scale[k] *
vectors[k]``. Methods fill ``scale`` with their native unit (GANSpace: the component's std;
SeFa / random: 1); the calibration stage replaces it with one common, recorded protocol.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from core.io import write_tensors_and_json

TENSORS_FILE = "directions.safetensors"
META_FILE = "directions.json"
FORMAT_VERSION = 1


@dataclass
class Directions:
    """``vectors`` float32 ``[k, num_ws, w_dim]``; ``scale`` float32 ``[k]``; ``meta`` JSON-able."""

    vectors: torch.Tensor
    scale: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vectors = torch.as_tensor(self.vectors).detach().to("cpu", torch.float32)
        self.scale = torch.as_tensor(self.scale).detach().to("cpu", torch.float32).reshape(-1)
        if self.vectors.ndim != 3:
            raise ValueError(
                f"Directions.vectors must be [k, num_ws, w_dim], got shape "
                f"{tuple(self.vectors.shape)}"
            )
        if self.scale.shape[0] != self.vectors.shape[0]:
            raise ValueError(
                f"Directions.scale must have one entry per direction ({self.vectors.shape[0]}), "
                f"got {self.scale.shape[0]}"
            )
        if not (torch.isfinite(self.vectors).all() and torch.isfinite(self.scale).all()):
            raise ValueError("Directions.vectors / scale contain NaN or inf")

    @property
    def num_directions(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def num_ws(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def w_dim(self) -> int:
        return int(self.vectors.shape[2])

    def __len__(self) -> int:
        return self.num_directions

    @classmethod
    def from_w(
        cls,
        vectors: torch.Tensor,
        num_ws: int,
        layers: Sequence[int] | None = None,
        scale: torch.Tensor | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Directions:
        """Broadcast W directions ``[k, w_dim]`` onto the W+ rows ``layers`` (all if None)."""
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.ndim != 2:
            raise ValueError(f"from_w expects W directions [k, w_dim], got {tuple(vectors.shape)}")
        rows = check_layers(layers, num_ws)
        plus = torch.zeros(vectors.shape[0], num_ws, vectors.shape[1], dtype=torch.float32)
        plus[:, rows] = vectors[:, None, :]
        if scale is None:
            scale = torch.ones(vectors.shape[0])
        return cls(plus, scale, dict(meta or {}))

    def apply(
        self, ws: torch.Tensor, index: int, amount: float | torch.Tensor
    ) -> torch.Tensor:
        """``ws + amount * scale[index] * vectors[index]``; ``ws`` is W+ ``[n, num_ws, w_dim]``.

        ``amount`` is a scalar or a per-sample tensor ``[n]``.
        """
        if ws.ndim != 3 or ws.shape[1:] != self.vectors.shape[1:]:
            raise ValueError(
                f"ws must be W+ [n, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}"
            )
        if not 0 <= index < self.num_directions:
            raise ValueError(f"direction index {index} out of range [0, {self.num_directions})")
        delta = (self.scale[index] * self.vectors[index]).to(ws.device, ws.dtype)
        amount = torch.as_tensor(amount, dtype=ws.dtype, device=ws.device)
        if amount.ndim == 1:
            amount = amount[:, None, None]
        return ws + amount * delta

    def displacement(self) -> torch.Tensor:
        """W+ L2 displacement of a unit edit per direction: ``||scale[k] * vectors[k]||_F``."""
        return self.scale.abs() * self.vectors.flatten(1).norm(dim=1)

    def subset(self, indices: Sequence[int]) -> Directions:
        """The directions ``indices`` in that order (meta copied, ``subset_of`` recorded)."""
        idx = [int(i) for i in indices]
        meta = dict(self.meta)
        meta["subset_of"] = idx
        return Directions(self.vectors[idx].clone(), self.scale[idx].clone(), meta)

    def with_scale(self, scale: torch.Tensor, **meta: Any) -> Directions:
        """A copy with a new ``scale`` and extra meta entries."""
        return Directions(self.vectors.clone(), torch.as_tensor(scale), {**self.meta, **meta})

    def save(self, directory: str | Path) -> None:
        """Write ``directions.safetensors`` + ``directions.json`` into ``directory`` atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"vectors": self.vectors.contiguous(), "scale": self.scale.contiguous()}
        meta = {"format_version": FORMAT_VERSION, "meta": self.meta}
        write_tensors_and_json(directory, TENSORS_FILE, tensors, META_FILE, meta)

    @classmethod
    def load(cls, directory: str | Path) -> Directions:
        """Read what ``save`` wrote."""
        directory = Path(directory)
        tensors_path, meta_path = directory / TENSORS_FILE, directory / META_FILE
        for path in (tensors_path, meta_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no saved Directions here (missing file)")
        tensors = load_file(str(tensors_path))
        if set(tensors) != {"vectors", "scale"}:
            raise ValueError(f"{tensors_path}: expected tensors 'vectors' and 'scale'")
        meta = json.loads(meta_path.read_text())
        return cls(tensors["vectors"], tensors["scale"], meta.get("meta", {}))


def check_layers(layers: Sequence[int] | None, num_ws: int) -> list[int]:
    """Validated, sorted, unique W+ row indices (all rows when ``layers`` is None)."""
    if layers is None:
        return list(range(num_ws))
    rows = sorted({int(i) for i in layers})
    if not rows:
        raise ValueError("layers must name at least one W+ row")
    if rows[0] < 0 or rows[-1] >= num_ws:
        raise ValueError(f"layers {rows} out of range for num_ws={num_ws}")
    return rows


def orient_signs(vectors: torch.Tensor) -> torch.Tensor:
    """Flip each row so its largest-magnitude entry is positive (a deterministic sign choice)."""
    flat = vectors.reshape(vectors.shape[0], -1)
    pivot = flat.gather(1, flat.abs().argmax(dim=1, keepdim=True)).squeeze(1)
    signs = torch.where(pivot < 0, -1.0, 1.0).to(vectors.dtype)
    return vectors * signs.reshape(-1, *([1] * (vectors.ndim - 1)))
