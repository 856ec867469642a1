"""``dsprites``: DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``, verified on open.

Only ``imgs``, ``latents_classes`` and ``latents_values`` are read, with ``allow_pickle=False``;
the pickled ``metadata`` member is never touched (unpickling can execute code), the factor sizes
being known. ``imgs`` (737280, 64, 64) 0/1 is streamed once out of the zip into a bit-packed
array (360 MiB instead of 2.8 GiB), cached under the cache folder and memory-mapped.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from core.errors import DataError
from core.io import atomic_path
from datasets.base import GroundTruthData
from datasets.dsprites_synth import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    FACTOR_VALUES,
    RESOLUTION,
    factors_to_values,
)
from datasets.files import check_subset_sizes, resolve_data_file
from datasets.shapes3d_synth import default_cache_dir

FILE_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
REQUIRED_MEMBERS = ("imgs", "latents_classes", "latents_values")
_STREAM_ROWS = 4096


def resolve_dsprites_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The dSprites npz: ``data_dir`` (or $BENCH_DATA) is the file or its folder."""
    return resolve_data_file("dsprites", FILE_NAME, (".npz",), data_dir, subfolder="dsprites",
                             source="", fallback="dsprites-synth")


def _cache_dir() -> Path:
    return default_cache_dir()


class DSprites(GroundTruthData):
    """Real dSprites, factors (shape 3, scale 6, orientation 40, posX 32, posY 32), color
    excluded; observations uint8 (64, 64, 1) with values 0/255.

    ``factor_sizes`` may name a smaller grid holding the first values of each factor (tests and
    subset files); the file must then hold exactly ``prod(factor_sizes)`` rows.
    """

    name = "dsprites"
    factor_names = FACTOR_NAMES
    observation_shape = (RESOLUTION, RESOLUTION, 1)

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *,
                 factor_sizes: tuple[int, ...] = FACTOR_SIZES,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.factor_sizes = check_subset_sizes("dsprites", factor_sizes, FACTOR_SIZES)
        self.path = resolve_dsprites_path(data_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _cache_dir()
        self._packed: np.ndarray | None = None
        self._imgs_info = self._verify()

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the memory-mapped images (reopened from the cache on use)."""
        state = dict(self.__dict__)
        state["_packed"] = None
        return state

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        return tuple(v[:s] for v, s in zip(FACTOR_VALUES, self.factor_sizes, strict=True))

    def identity(self) -> dict[str, object]:
        crc, size = self._imgs_info
        return {**super().identity(), "path": str(self.path.resolve()),
                "file_size": self.path.stat().st_size, "imgs_crc32": f"{crc:08x}",
                "imgs_bytes": size}

    def observations(self, factors: np.ndarray) -> np.ndarray:
        index = self.factors_to_index(factors)
        bits = np.unpackbits(self.packed_images()[index], axis=-1)
        return (bits * np.uint8(255))[..., None]

    def packed_images(self) -> np.ndarray:
        """All images bit-packed along columns, uint8 (N, 64, 8), memory-mapped from the cache."""
        if self._packed is None:
            crc, size = self._imgs_info
            cache = self.cache_dir / f"dsprites-packed-{crc:08x}-{size}.npy"
            if not cache.exists():
                self._write_packed(cache)
            packed = np.load(cache, mmap_mode="r", allow_pickle=False)
            if packed.shape != (self.size, RESOLUTION, RESOLUTION // 8):
                raise DataError(f"{cache}: cached packed images have shape {packed.shape}; "
                                f"delete the file to rebuild it")
            self._packed = packed
        return self._packed

    # ------------------------------------------------------------------ file access
    def _open_imgs(self, zf: zipfile.ZipFile) -> IO[bytes]:
        """The ``imgs`` member positioned at its data, after checking its header."""
        stream = zf.open("imgs.npy")
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        except ValueError as err:
            stream.close()
            raise DataError(f"{self.path}: 'imgs' is not a valid .npy member ({err})") from err
        if dtype != np.uint8:
            stream.close()
            raise DataError(f"{self.path}: 'imgs' has dtype {dtype}, expected uint8")
        expected = (self.size, RESOLUTION, RESOLUTION)
        if tuple(shape) != expected or fortran:
            stream.close()
            raise DataError(f"{self.path}: 'imgs' has shape {tuple(shape)}, expected {expected} "
                            f"(truncated or not the full dSprites grid {self.factor_sizes})")
        return stream

    def _verify(self) -> tuple[int, int]:
        path = self.path
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not an npz (zip) file (expected {FILE_NAME})")
        try:
            with zipfile.ZipFile(path) as zf:
                names = {n.removesuffix(".npy") for n in zf.namelist()}
                for key in REQUIRED_MEMBERS:
                    if key not in names:
                        raise DataError(f"{path}: missing array {key!r} (found "
                                        f"{sorted(names)}; expected {list(REQUIRED_MEMBERS)})")
                self._open_imgs(zf).close()
                info = zf.getinfo("imgs.npy")
            with np.load(path, allow_pickle=False) as data:
                classes = data["latents_classes"]
                values = data["latents_values"]
        except ValueError:
            raise
        except (OSError, zipfile.BadZipFile, EOFError, KeyError) as err:
            raise DataError(f"{path}: cannot read the npz file (truncated or damaged?): "
                            f"{err}") from err
        self._check_latents(classes, values)
        return info.CRC, info.file_size

    def _check_latents(self, classes: np.ndarray, values: np.ndarray) -> None:
        rows = self.size
        if classes.shape != (rows, 6) or not np.issubdtype(classes.dtype, np.integer):
            raise DataError(f"{self.path}: 'latents_classes' has shape {classes.shape} and "
                            f"dtype {classes.dtype}, expected ({rows}, 6) integers")
        if values.shape != (rows, 6) or values.dtype.kind != "f":
            raise DataError(f"{self.path}: 'latents_values' has shape {values.shape} and "
                            f"dtype {values.dtype}, expected ({rows}, 6) floats")
        expected = self.index_to_factors(np.arange(rows))
        bad = np.nonzero((classes[:, 0] != 0) | (classes[:, 1:] != expected).any(axis=1))[0]
        if bad.size:
            row = int(bad[0])
            raise DataError(f"{self.path}: 'latents_classes' do not match the row-major grid "
                            f"(1, {', '.join(map(str, self.factor_sizes))}) ({bad.size} rows "
                            f"differ; "
                            f"row {row} holds {classes[row].tolist()})")
        grid = factors_to_values(expected)
        off = (np.abs(values[:, 1:] - grid) > 1e-6).any(axis=1) | (values[:, 0] != 1.0)
        if off.any():
            row = int(np.nonzero(off)[0][0])
            raise DataError(f"{self.path}: 'latents_values' row {row} holds "
                            f"{np.round(values[row], 4).tolist()}, not the grid values "
                            f"{[1.0, *np.round(grid[row], 4).tolist()]}")

    def _write_packed(self, cache: Path) -> None:
        """Stream ``imgs`` out of the zip in blocks, check 0/1, bit-pack, write atomically."""
        try:
            with atomic_path(cache) as tmp:
                self._pack_into(tmp)
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise DataError(f"{self.path}: cannot read 'imgs' (truncated or damaged?): "
                            f"{err}") from err

    def _pack_into(self, target: Path) -> None:
        row_bytes = RESOLUTION * RESOLUTION
        out = np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8,
                                        shape=(self.size, RESOLUTION, RESOLUTION // 8))
        with zipfile.ZipFile(self.path) as zf, self._open_imgs(zf) as stream:
            for lo in range(0, self.size, _STREAM_ROWS):
                hi = min(lo + _STREAM_ROWS, self.size)
                raw = stream.read((hi - lo) * row_bytes)
                if len(raw) != (hi - lo) * row_bytes:
                    raise DataError(f"{self.path}: 'imgs' ends early at row {lo} "
                                    f"(truncated file)")
                block = np.frombuffer(raw, np.uint8).reshape(hi - lo, RESOLUTION, RESOLUTION)
                if block.max(initial=0) > 1:
                    raise DataError(f"{self.path}: 'imgs' holds values above 1 near row "
                                    f"{lo}; expected 0/1")
                out[lo:hi] = np.packbits(block, axis=-1)
        out.flush()
        del out
