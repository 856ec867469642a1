"""``dsprites-synth``: binary 2D sprites (square, ellipse, heart) on the dSprites factor grid.

Factors (color excluded, as dlib's ``dsprites_full``): shape 3, scale 6, orientation 40,
posX 32, posY 32; row-major, posY fastest. Observations are uint8 (64, 64, 1) with values 0/255
(the same 0..255 convention as 3DShapes; the original file stores 0/1).

Rasterising: each pixel centre (col, row) is tested against the rotated implicit shape, with no
anti-aliasing. Conventions (the original's cannot be checked without its file): the sprite centre
is at col = 16 + 32 posX, row = 16 + 32 posY (posY grows downwards, like image rows), and the
sprite turns counter-clockwise as displayed for growing orientation.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from core.io import atomic_path
from datasets.base import GroundTruthData

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
SHAPE_VALUES = np.array([1.0, 2.0, 3.0])
SCALE_VALUES = np.linspace(0.5, 1.0, 6)
ORIENTATION_VALUES = np.linspace(0.0, 2 * np.pi, 40)  # both endpoints: index 0 == index 39
POSITION_VALUES = np.linspace(0.0, 1.0, 32)
FACTOR_VALUES = (SHAPE_VALUES, SCALE_VALUES, ORIENTATION_VALUES, POSITION_VALUES,
                 POSITION_VALUES)
# The file's six latents: color (one value) first, then the five factors above.
LATENT_NAMES = ("color",) + FACTOR_NAMES
LATENT_SIZES = (1,) + FACTOR_SIZES

RESOLUTION = 64
SQUARE_HALF_SIDE = 9.5  # px at scale 1 (side 19)
ELLIPSE_SEMI_AXES = (12.0, 6.5)  # px at scale 1 (24 x 13)
HEART_HEIGHT = 19.0  # px at scale 1 (fits the square's box)
_HEART_SPAN = 2.3  # height of the unit implicit heart (y from about -1.0 to 1.25)
_HEART_LIFT = 0.12  # moves the unit heart's box centre onto the sprite centre
_MAX_RADIUS = 14.0  # px at scale 1: no sprite reaches farther from its centre
_BATCH = 512


def factors_to_values(factors: np.ndarray) -> np.ndarray:
    """Factor indices (n, 5) -> float64 values (n, 5) (shape 1..3, scale, radians, positions)."""
    factors = np.asarray(factors, dtype=np.int64)
    return np.stack([FACTOR_VALUES[k][factors[:, k]] for k in range(5)], axis=1)


def rasterise(shape: np.ndarray, scale: np.ndarray, orientation: np.ndarray, pos_x: np.ndarray,
              pos_y: np.ndarray, resolution: int = RESOLUTION) -> np.ndarray:
    """Binary masks bool (n, H, W) for per-sprite shape INDEX (0 square, 1 ellipse, 2 heart) and
    continuous scale, orientation (radians) and positions in [0, 1]."""
    n = len(shape)
    size = resolution / RESOLUTION
    cx = (16.0 + 32.0 * np.asarray(pos_x, np.float64)) * size
    cy = (16.0 + 32.0 * np.asarray(pos_y, np.float64)) * size
    # Evaluate only a window around each centre (every sprite fits within radius 14 at scale 1),
    # on a canvas padded so that off-canvas centres (continuous positions) stay in bounds.
    half = int(np.ceil(_MAX_RADIUS * size * max(1.0, float(np.max(scale, initial=1.0))))) + 1
    pad = half + 1
    x0 = np.clip(np.rint(cx).astype(np.int64) - half, -pad, resolution + pad - 2 * half - 1)
    y0 = np.clip(np.rint(cy).astype(np.int64) - half, -pad, resolution + pad - 2 * half - 1)
    local = np.arange(2 * half + 1)
    cols = x0[:, None] + local[None, :]  # (n, w)
    rows = y0[:, None] + local[None, :]
    dx = (cols - cx[:, None])[:, None, :].astype(np.float32)  # (n, 1, w)
    dy_up = -(rows - cy[:, None])[:, :, None].astype(np.float32)  # (n, w, 1), up is positive
    cos = np.cos(orientation).astype(np.float32)[:, None, None]
    sin = np.sin(orientation).astype(np.float32)[:, None, None]
    # Sprite-local coordinates: undo a counter-clockwise turn by the orientation.
    u = cos * dx + sin * dy_up
    v = -sin * dx + cos * dy_up
    s = (np.asarray(scale, np.float64) * size).astype(np.float32)[:, None, None]
    shape = np.asarray(shape)
    if ((shape < 0) | (shape > 2)).any():
        raise ValueError("sprite shape index must be 0 (square), 1 (ellipse) or 2 (heart)")
    window = np.zeros(u.shape, dtype=bool)
    square = shape == 0
    if square.any():
        side = SQUARE_HALF_SIDE * s[square]
        window[square] = (np.abs(u[square]) <= side) & (np.abs(v[square]) <= side)
    ellipse = shape == 1
    if ellipse.any():
        a, b = ELLIPSE_SEMI_AXES[0] * s[ellipse], ELLIPSE_SEMI_AXES[1] * s[ellipse]
        window[ellipse] = (u[ellipse] / a) ** 2 + (v[ellipse] / b) ** 2 <= 1.0
    heart = shape == 2
    if heart.any():
        unit = HEART_HEIGHT * s[heart] / _HEART_SPAN
        hx = u[heart] / unit
        hy = v[heart] / unit + _HEART_LIFT
        window[heart] = (hx * hx + hy * hy - 1.0) ** 3 - hx * hx * hy**3 <= 0.0
    canvas = np.zeros((n, resolution + 2 * pad, resolution + 2 * pad), dtype=bool)
    canvas[np.arange(n)[:, None, None], rows[:, :, None] + pad, cols[:, None, :] + pad] = window
    return canvas[:, pad:pad + resolution, pad:pad + resolution]


class DSpritesSynth(GroundTruthData):
    """Procedural dSprites on the exact grid (3, 6, 40, 32, 32); uint8 (64, 64, 1), 0/255."""

    name = "dsprites-synth"
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    observation_shape = (RESOLUTION, RESOLUTION, 1)

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        return FACTOR_VALUES

    def identity(self) -> dict[str, object]:
        return {**super().identity(), "renderer": "dsprites-synth-v1"}

    def masks(self, factors: np.ndarray) -> np.ndarray:
        """Binary sprites bool (n, 64, 64) for factor indices (n, 5)."""
        factors = self.check_factors(factors)
        out = np.empty((len(factors), RESOLUTION, RESOLUTION), dtype=bool)
        for lo in range(0, len(factors), _BATCH):
            f = factors[lo:lo + _BATCH]
            out[lo:lo + _BATCH] = rasterise(f[:, 0], SCALE_VALUES[f[:, 1]],
                                            ORIENTATION_VALUES[f[:, 2]],
                                            POSITION_VALUES[f[:, 3]], POSITION_VALUES[f[:, 4]])
        return out

    def observations(self, factors: np.ndarray) -> np.ndarray:
        return (self.masks(factors) * np.uint8(255))[..., None]

    def render_continuous(self, values: np.ndarray) -> np.ndarray:
        """uint8 (n, 64, 64, 1) for continuous VALUES (n, 5): shape 1..3 (integral), scale,
        orientation (radians), posX, posY in [0, 1]."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != 5 or not np.isfinite(values).all():
            raise ValueError(f"values must be finite with shape (n, 5), got {values.shape}")
        shape = np.rint(values[:, 0]).astype(np.int64) - 1
        masks = rasterise(shape, values[:, 1], values[:, 2], values[:, 3], values[:, 4])
        return (masks * np.uint8(255))[..., None]


def latents(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The file's (latents_classes int64 (n, 6), latents_values float64 (n, 6)) with color."""
    factors = np.asarray(factors, dtype=np.int64)
    classes = np.concatenate([np.zeros((len(factors), 1), np.int64), factors], axis=1)
    values = np.concatenate([np.ones((len(factors), 1)), factors_to_values(factors)], axis=1)
    return classes, values


def write_npz(gt: DSpritesSynth, path: str | os.PathLike[str], *,
              factor_sizes: tuple[int, ...] | None = None, progress: bool = False,
              block: int = 8192) -> int:
    """Write ``imgs`` uint8 0/1 (N, 64, 64), ``latents_classes``, ``latents_values`` in the
    dSprites npz layout, streaming ``imgs`` block by block into the (deflated) zip; the pickled
    ``metadata`` member of the original is not written. Temp file renamed at the end."""
    sizes = tuple(factor_sizes) if factor_sizes is not None else FACTOR_SIZES
    if len(sizes) != 5 or any(not 1 <= s <= f for s, f in zip(sizes, FACTOR_SIZES, strict=True)):
        raise ValueError(f"factor_sizes must be 5 sizes within {FACTOR_SIZES}, got {sizes}")
    rows = int(np.prod(sizes))
    factors = np.stack(np.unravel_index(np.arange(rows), sizes), axis=1).astype(np.int64)
    classes, values = latents(factors)
    path = Path(path)
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            with zf.open("imgs.npy", "w", force_zip64=True) as fh:
                header = {"descr": "|u1", "fortran_order": False,
                          "shape": (rows, RESOLUTION, RESOLUTION)}
                np.lib.format.write_array_header_1_0(fh, header)
                starts: Any = range(0, rows, block)
                if progress:
                    from tqdm import tqdm

                    starts = tqdm(starts, desc=f"write {path.name}", unit="block")
                for lo in starts:
                    fh.write(gt.masks(factors[lo:lo + block]).astype(np.uint8).tobytes())
            for key, array in (("latents_classes", classes), ("latents_values", values)):
                with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, array, allow_pickle=False)
    return rows
