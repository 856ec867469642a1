"""``shapes3d-synth``: a procedural 3DShapes look-alike on the exact 3DShapes factor grid.

Images come from cached per-geometry colour-coefficient maps (see ``datasets.render3d``), so a
batch of observations is a vectorised linear composition, and off-grid (continuous) factor
values can be rendered too, differentiably when given torch tensors.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from core.inputs import cache_root
from core.io import atomic_path
from datasets import render3d
from datasets.base import GroundTruthData

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
HUE_VALUES = np.arange(10) / 10.0
SCALE_VALUES = np.linspace(0.75, 1.25, 8)
SHAPE_VALUES = np.arange(4, dtype=np.float64)
ORIENTATION_VALUES = np.linspace(-30.0, 30.0, 15)
FACTOR_VALUES = (HUE_VALUES, HUE_VALUES, HUE_VALUES, SCALE_VALUES, SHAPE_VALUES,
                 ORIENTATION_VALUES)
SHAPE_NAMES = render3d.SHAPE_NAMES

_COMPOSE_BATCH = 128
_MAPS_LOCK = threading.Lock()
_MAPS_MEMO: dict[str, np.ndarray] = {}


def default_cache_dir() -> Path:
    """``$BENCH_CACHE`` or ``~/.cache/disentangle-bench`` (``core.inputs.cache_root``)."""
    return cache_root()


def factors_to_values(factors: np.ndarray) -> np.ndarray:
    """Factor indices (n, 6) -> float64 label values as stored in ``3dshapes.h5``."""
    factors = np.asarray(factors, dtype=np.int64)
    return np.stack([FACTOR_VALUES[k][factors[:, k]] for k in range(6)], axis=1)


def values_to_factors(values: np.ndarray) -> np.ndarray:
    """Label values (n, 6) -> factor indices by rounding (hue 10h, scale (s-.75)*14, ...)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 6:
        raise ValueError(f"3dshapes label values must have shape (n, 6), got {values.shape}")
    idx = np.empty(values.shape, dtype=np.int64)
    idx[:, 0:3] = np.rint(values[:, 0:3] * 10.0)
    idx[:, 3] = np.rint((values[:, 3] - 0.75) * 14.0)
    idx[:, 4] = np.rint(values[:, 4])  # stored as exact floats 0.0..3.0
    idx[:, 5] = np.rint((values[:, 5] + 30.0) * 14.0 / 60.0)
    return idx


def render_parameters() -> dict[str, Any]:
    """Every scene constant that changes the maps (stored beside the cache, compared on load)."""
    params: dict[str, Any] = {"render_version": render3d.RENDER_VERSION}
    for key in dir(render3d):
        value = getattr(render3d, key)
        constant = key.isupper() and not key.startswith("_")
        if constant and isinstance(value, (int, float, tuple, np.ndarray)):
            params[key] = value.tolist() if isinstance(value, np.ndarray) else value
    return params


def _fingerprint(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


class Shapes3DSynth(GroundTruthData):
    """Procedural 3DShapes: factors (floor_hue 10, wall_hue 10, object_hue 10, scale 8, shape 4,
    orientation 15), observations uint8 (64, 64, 3), row-major index like ``3dshapes.h5``.

    The geometry maps (float32, about 47 MB) are built on first use (seconds) and cached under
    ``cache_dir`` (default ``$BENCH_CACHE`` or ``~/.cache/disentangle-bench``).
    """

    name = "shapes3d-synth"
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    observation_shape = (render3d.RESOLUTION, render3d.RESOLUTION, 3)

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None,
                 progress: bool = False) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.progress = progress
        self._params = render_parameters()
        self._fingerprint = _fingerprint(self._params)
        self._maps: np.ndarray | None = None
        self._maps_torch: dict[tuple[str, str], Any] = {}

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the maps (workers reload them from the cache file in milliseconds)."""
        state = dict(self.__dict__)
        state["_maps"], state["_maps_torch"] = None, {}
        return state

    # ------------------------------------------------------------------ grid
    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        """Per factor, the label value of each index (as stored in ``3dshapes.h5``)."""
        return FACTOR_VALUES

    def identity(self) -> dict[str, object]:
        return {**super().identity(), "renderer": self._fingerprint}

    # ------------------------------------------------------------------ maps
    @property
    def cache_path(self) -> Path:
        return self.cache_dir / f"shapes3d-synth-maps-{self._fingerprint}.npz"

    def coefficient_maps(self) -> np.ndarray:
        """Float32 maps indexed [scale, shape, orientation, row, col, channel] with channels
        (a_floor, a_wall, a_obj, beta_r, beta_g, beta_b): shape (8, 4, 15, 64, 64, 6)."""
        if self._maps is None:
            self._maps = _load_or_build_maps(self.cache_path, self._params, self.progress)
        return self._maps

    def coefficient_maps_torch(self, device: Any = "cpu", dtype: Any = None) -> Any:
        """The maps as a torch tensor (cached per device and dtype)."""
        import torch

        dtype = dtype or torch.float32
        key = (str(device), str(dtype))
        if key not in self._maps_torch:
            maps = torch.from_numpy(np.array(self.coefficient_maps()))  # writable copy
            self._maps_torch[key] = maps.to(device, dtype)
        return self._maps_torch[key]

    def build_maps(self, force: bool = False) -> Path:
        """Build (or rebuild with ``force``) the cached maps; returns the cache file."""
        if force:
            self._maps = None
            _MAPS_MEMO.pop(str(self.cache_path), None)
            self.cache_path.unlink(missing_ok=True)
        self.coefficient_maps()
        return self.cache_path

    # ------------------------------------------------------------------ images
    def observations(self, factors: np.ndarray) -> np.ndarray:
        factors = self.check_factors(factors)
        out = np.empty((len(factors), *self.observation_shape), np.uint8)
        for lo in range(0, len(factors), _COMPOSE_BATCH):  # cache-sized steps
            hi = lo + _COMPOSE_BATCH
            out[lo:hi] = render3d.to_uint8(self._compose_grid(factors[lo:hi]))
        return out

    def _compose_grid(self, factors: np.ndarray) -> np.ndarray:
        maps = self.coefficient_maps()[factors[:, 3], factors[:, 4], factors[:, 5]]
        rgb = render3d.hue_to_rgb(HUE_VALUES).astype(np.float32)
        return render3d.compose(maps, rgb[factors[:, 0]], rgb[factors[:, 1]], rgb[factors[:, 2]])

    def labels(self, factors: np.ndarray) -> np.ndarray:
        """Float64 label values (n, 6) of factor indices, as in ``3dshapes.h5``."""
        return factors_to_values(self.check_factors(factors))

    def render_continuous(self, values: np.ndarray, *, exact: bool = False,
                          as_uint8: bool = False) -> np.ndarray:
        """Images for continuous factor VALUES (n, 6) in label units.

        Columns: floor_hue, wall_hue, object_hue (any real, wraps mod 1), scale (0.75..1.25),
        shape (0..3; a fraction blends the two neighbouring shapes' maps), orientation (degrees,
        -30..30). ``exact=False`` interpolates the grid maps linearly (cheap, the same maths as
        ``render_soft``); ``exact=True`` ray-casts the geometry anew (shape must be integral).
        Returns float32 (n, 64, 64, 3) in [0, 1], or uint8 with ``as_uint8``.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != 6:
            raise ValueError(f"values must have shape (n, 6), got {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("values must be finite")
        rgb = render3d.hue_to_rgb(values[:, 0:3])  # (n, 3, 3)
        if exact:
            if not np.allclose(values[:, 4], np.rint(values[:, 4])):
                raise ValueError("exact rendering needs integral shape values 0..3")
            maps = np.stack([render3d.render_geometry(int(round(v[4])), v[3], v[5])
                             for v in values]) if len(values) else np.zeros(
                                 (0, *self.observation_shape[:2], render3d.NUM_CHANNELS))
        else:
            maps = interpolate_maps(self.coefficient_maps(), scale_position(values[:, 3]),
                                    shape_weights(values[:, 4]),
                                    orientation_position(values[:, 5]))
        images = render3d.compose(maps, rgb[:, 0], rgb[:, 1], rgb[:, 2])
        if as_uint8:
            return render3d.to_uint8(images)
        return np.clip(images, 0.0, 1.0).astype(np.float32)

    def render_soft(self, floor_hue: Any, wall_hue: Any, object_hue: Any, scale: Any,
                    shape_weight: Any, orientation: Any) -> Any:
        """Differentiable rendering for torch tensors (or numpy arrays).

        floor/wall/object hue (n,), scale (n,) in label units, shape_weight (n, 4) mixing
        weights over (cube, cylinder, sphere, capsule), orientation (n,) degrees.
        Returns float images (n, 64, 64, 3), unclipped (values stay within about [0, 1]).
        """
        torch_mode = render3d._is_torch(scale)
        maps = self.coefficient_maps_torch(scale.device, scale.dtype) if torch_mode \
            else self.coefficient_maps()
        maps = interpolate_maps(maps, scale_position(scale), shape_weight,
                                orientation_position(orientation))
        return render3d.compose(maps, render3d.hue_to_rgb(floor_hue),
                                render3d.hue_to_rgb(wall_hue), render3d.hue_to_rgb(object_hue))


# ---------------------------------------------------------------------- continuous helpers


def scale_position(scale: Any) -> Any:
    """Fractional scale index in [0, 7] of a scale value (numpy or torch)."""
    return _clip((scale - 0.75) * 14.0, 0.0, 7.0)


def orientation_position(orientation: Any) -> Any:
    """Fractional orientation index in [0, 14] of an orientation in degrees."""
    return _clip((orientation + 30.0) * (14.0 / 60.0), 0.0, 14.0)


def shape_weights(shape: np.ndarray) -> np.ndarray:
    """(n,) shape values in [0, 3] -> (n, 4) linear blend weights of neighbouring shapes."""
    shape = np.clip(np.asarray(shape, dtype=np.float64), 0.0, 3.0)
    low = np.minimum(np.floor(shape), 2).astype(np.int64)
    frac = shape - low
    weights = np.zeros((len(shape), 4))
    weights[np.arange(len(shape)), low] = 1.0 - frac
    weights[np.arange(len(shape)), low + 1] += frac
    return weights


def interpolate_maps(maps: Any, scale_pos: Any, shape_weight: Any, orient_pos: Any) -> Any:
    """Bilinear in (scale, orientation) index position, weighted over shapes: (n, H, W, 6).

    ``maps`` (8, 4, 15, H, W, 6); positions (n,) fractional indices; ``shape_weight`` (n, 4).
    numpy or torch; differentiable in positions and weights for torch.
    """
    n_scale, n_shape, n_orient = maps.shape[:3]
    s0, ws = _lower_and_frac(scale_pos, n_scale)
    o0, wo = _lower_and_frac(orient_pos, n_orient)
    out = None
    for ds, fs in ((0, 1.0 - ws), (1, ws)):
        for do, fo in ((0, 1.0 - wo), (1, wo)):
            corner = maps[s0 + ds, :, o0 + do]  # (n, shapes, H, W, 6)
            w = (fs * fo)[:, None] * shape_weight  # (n, shapes)
            term = (corner * w[:, :, None, None, None]).sum(1)
            out = term if out is None else out + term
    return out


def _lower_and_frac(pos: Any, size: int) -> tuple[Any, Any]:
    if render3d._is_torch(pos):
        import torch

        low = torch.clamp(torch.floor(pos.detach()), 0, size - 2).long()
        return low, pos - low.to(pos.dtype)
    pos = np.asarray(pos, dtype=np.float64)
    low = np.clip(np.floor(pos), 0, size - 2).astype(np.int64)
    return low, pos - low


def _clip(x: Any, lo: float, hi: float) -> Any:
    if render3d._is_torch(x):
        return x.clamp(lo, hi)
    return np.clip(np.asarray(x, dtype=np.float64), lo, hi)


# ---------------------------------------------------------------------- cache


def _load_or_build_maps(path: Path, params: dict[str, Any], progress: bool) -> np.ndarray:
    key = str(path)
    with _MAPS_LOCK:
        if key in _MAPS_MEMO:
            return _MAPS_MEMO[key]
        maps = _read_maps(path, params) if path.exists() else None
        if maps is None:
            maps = render3d.render_grid(SCALE_VALUES, SHAPE_VALUES.astype(np.int64),
                                        ORIENTATION_VALUES, progress=progress)
            _write_maps(path, maps, params)
        maps.setflags(write=False)
        _MAPS_MEMO[key] = maps
        return maps


def _expected_shape() -> tuple[int, ...]:
    res = render3d.RESOLUTION
    return (8, 4, 15, res, res, render3d.NUM_CHANNELS)


def _read_maps(path: Path, params: dict[str, Any]) -> np.ndarray | None:
    """The cached maps, or None when the file is stale or damaged (it is then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = json.loads(str(data["params"]))
            maps = data["maps"]
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    if stored != json.loads(json.dumps(params)) or maps.shape != _expected_shape() \
            or maps.dtype != np.float32 or not np.isfinite(maps).all():
        return None
    return maps


def _write_maps(path: Path, maps: np.ndarray, params: dict[str, Any]) -> None:
    """Write atomically: temp file in the same folder, then rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, maps=maps, params=np.array(json.dumps(params, sort_keys=True)))
