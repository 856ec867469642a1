"""SeFa (Shen & Zhou 2021): closed-form factorisation of the style affines.

For the chosen W+ rows, the affine weights ``[C_in, w_dim]`` are transposed and concatenated into
A ``[w_dim, sum C_in]``; each column (one style channel) is L2-normalised; the directions are the
eigenvectors of A Aᵀ (``w_dim x w_dim``). Deviation from the SeFa code, on purpose: a symmetric
solver (``np.linalg.eigh``) and an explicit descending sort by eigenvalue (SeFa's ``eig`` output
is unsorted). Edits go only to the selected W+ rows; the native unit is 1 (unit vectors).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import torch

from core.config import check_ranges
from core.progress import BarFactory
from methods.base import register_method
from models.bundle import Bundle
from models.directions import Directions, check_layers, orient_signs


@dataclass(frozen=True)
class SeFaConfig:
    """``layers``: the W+ rows whose affines are factorised and edited (None = all)."""

    num_directions: int = 30
    layers: tuple[int, ...] | None = None

    RANGES: ClassVar[dict[str, str]] = {"num_directions": "[1, inf)", "layers": "[0, inf)"}

    def __post_init__(self) -> None:
        check_ranges(self)


def sefa_eigenpairs(affines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (rows) of A Aᵀ for column-normalised A."""
    if not affines:
        raise ValueError("SeFa needs at least one style affine")
    blocks = [np.asarray(a, dtype=np.float64).T for a in affines]  # [w_dim, C_in] each
    widths = {b.shape[0] for b in blocks}
    if len(widths) != 1:
        raise ValueError(f"style affines disagree on w_dim: {sorted(widths)}")
    a = np.concatenate(blocks, axis=1)
    norms = np.linalg.norm(a, axis=0, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("a style affine has an all-zero channel; cannot normalise its column")
    a = a / norms
    values, vectors = np.linalg.eigh(a @ a.T)
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order].T


def run_sefa(bundle: Bundle, config: SeFaConfig, seed: int,
             progress: BarFactory | None = None) -> Directions:
    generator = bundle.generator
    rows = check_layers(config.layers, generator.num_ws)
    affines = generator.style_affines()
    if len(affines) != generator.num_ws:
        raise ValueError(
            f"style_affines() returned {len(affines)} matrices, expected num_ws={generator.num_ws}"
        )
    chosen = [torch.as_tensor(affines[i]).detach().cpu().double().numpy() for i in rows]
    values, vectors = sefa_eigenpairs(chosen)
    k = min(config.num_directions, generator.w_dim)  # at most w_dim orthogonal directions
    meta = {
        "method": "sefa",
        "config": asdict(config),
        "seed": int(seed),
        "native_unit": "unit vector in W on the selected rows",
        "names": [f"sefa{i}" for i in range(k)],
        "layers": rows,
        "eigenvalues": values[:k].tolist(),
        "eigenvalue_ratio": (values[:k] / values.sum()).tolist(),
    }
    top = orient_signs(torch.from_numpy(vectors[:k].copy()))
    return Directions.from_w(top, generator.num_ws, layers=rows, meta=meta)


# registered by a call, not a decorator: mutmut leaves decorated functions unmutated
register_method(
    "sefa",
    description="SeFa: eigenvectors of the column-normalised style affines (Shen & Zhou 2021)",
    kind="directions",
    config_cls=SeFaConfig,
    profiles={"quick": {"num_directions": 10}},
    requires=("generator",),
    load_output=Directions.load,
)(run_sefa)
