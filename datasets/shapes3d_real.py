"""``shapes3d``: DeepMind's ``3dshapes.h5`` read lazily with h5py, verified on open.

The file holds ``images`` uint8 (480000, 64, 64, 3) and ``labels`` float (480000, 6) with the
factor VALUES in the row-major order of the factor grid. Only the requested images are read
(sorted unique indices, as h5py fancy indexing needs), never the whole set as float.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import DataError
from datasets.base import GroundTruthData
from datasets.files import check_subset_sizes, resolve_data_file
from datasets.shapes3d_synth import FACTOR_NAMES, FACTOR_SIZES, FACTOR_VALUES, values_to_factors

if TYPE_CHECKING:
    import h5py

FILE_NAME = "3dshapes.h5"
IMAGE_SHAPE = (64, 64, 3)
LABEL_TOLERANCE = 1e-3  # |stored value - grid value| allowed per factor


def resolve_shapes3d_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ``3dshapes.h5`` file: ``data_dir`` (or $BENCH_DATA) is the file or its folder."""
    return resolve_data_file("shapes3d", FILE_NAME, (".h5", ".hdf5"), data_dir,
                             subfolder="3dshapes", source=" from DeepMind's 3d-shapes release",
                             fallback="shapes3d-synth")


class Shapes3D(GroundTruthData):
    """Real 3DShapes from ``3dshapes.h5`` (or any file in the same layout, e.g. one written by
    ``prepare_dataset('shapes3d-synth', write_h5=...)``).

    ``factor_sizes`` may name a smaller grid holding the first values of each factor (used by
    tests and subset files); the file must then hold exactly ``prod(factor_sizes)`` rows.
    """

    name = "shapes3d"
    factor_names = FACTOR_NAMES
    observation_shape = IMAGE_SHAPE

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *,
                 factor_sizes: tuple[int, ...] = FACTOR_SIZES) -> None:
        self.factor_sizes = check_subset_sizes("shapes3d", factor_sizes, FACTOR_SIZES)
        self.path = resolve_shapes3d_path(data_dir)
        self._handle = None
        self._handle_pid = -1
        self._labels_digest = self._verify()

    # ------------------------------------------------------------------ grid
    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        return tuple(v[:s] for v, s in zip(FACTOR_VALUES, self.factor_sizes, strict=True))

    def identity(self) -> dict[str, object]:
        return {**super().identity(), "path": str(self.path.resolve()),
                "file_size": self.path.stat().st_size, "labels_sha256": self._labels_digest}

    # ------------------------------------------------------------------ reading
    def observations(self, factors: np.ndarray) -> np.ndarray:
        index = self.factors_to_index(factors)
        return self.images_at(index)

    def images_at(self, index: np.ndarray) -> np.ndarray:
        """uint8 images (n, 64, 64, 3) for flat row indices, in the order given."""
        index = np.asarray(index, dtype=np.int64)
        if index.size == 0:
            return np.zeros((0, *IMAGE_SHAPE), np.uint8)
        if index.min() < 0 or index.max() >= self.size:
            raise ValueError(f"{self.name}: row index out of range [0, {self.size})")
        unique, inverse = np.unique(index, return_inverse=True)
        images = np.empty((len(unique), *IMAGE_SHAPE), np.uint8)
        # h5py point selection is slow; read each run of consecutive rows as one slice.
        breaks = np.nonzero(np.diff(unique) != 1)[0] + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [len(unique)]])
        try:
            dataset = self._file()["images"]
            for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
                images[a:b] = dataset[int(unique[a]):int(unique[b - 1]) + 1]
        except (OSError, RuntimeError) as err:
            raise DataError(f"{self.path}: cannot read images ({err})") from err
        return images[inverse.reshape(-1)]

    def labels(self, factors: np.ndarray) -> np.ndarray:
        """Float64 label values (n, 6) of factor indices."""
        factors = self.check_factors(factors)
        return np.stack([FACTOR_VALUES[k][factors[:, k]] for k in range(6)], axis=1)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __getstate__(self) -> dict[str, object]:  # h5py handles do not pickle
        state = dict(self.__dict__)
        state["_handle"], state["_handle_pid"] = None, -1
        return state

    def _file(self) -> h5py.File:
        """The open file, reopened after a fork (h5py handles must not cross processes)."""
        import h5py

        if self._handle is None or self._handle_pid != os.getpid():
            self._handle = h5py.File(self.path, "r")
            self._handle_pid = os.getpid()
        return self._handle

    # ------------------------------------------------------------------ verification
    def _verify(self) -> str:
        """Check keys, shapes, dtypes and every label against the grid; return a labels digest."""
        import h5py

        path = self.path
        if not h5py.is_hdf5(path):
            raise DataError(f"{path}: not an HDF5 file (expected DeepMind's {FILE_NAME})")
        rows = self.size
        try:
            with h5py.File(path, "r") as fh:
                for key in ("images", "labels"):
                    if key not in fh:
                        raise DataError(f"{path}: missing dataset {key!r} (found keys "
                                        f"{sorted(fh.keys())}; expected 'images' and 'labels')")
                images, labels = fh["images"], fh["labels"]
                if images.dtype != np.uint8:
                    raise DataError(f"{path}: 'images' has dtype {images.dtype}, expected uint8")
                if labels.dtype.kind != "f":
                    raise DataError(f"{path}: 'labels' has dtype {labels.dtype}, "
                                    f"expected float64")
                if images.shape != (rows, *IMAGE_SHAPE):
                    raise DataError(f"{path}: 'images' has shape {images.shape}, expected "
                                    f"{(rows, *IMAGE_SHAPE)} (truncated or not a full 3dshapes "
                                    f"grid {self.factor_sizes})")
                if labels.shape != (rows, 6):
                    raise DataError(f"{path}: 'labels' has shape {labels.shape}, expected "
                                    f"{(rows, 6)}")
                values = np.asarray(labels[...], dtype=np.float64)
                images[[0, rows - 1]]  # the last chunk must be readable (truncation check)
        except ValueError:
            raise
        except (OSError, RuntimeError, KeyError) as err:
            raise DataError(f"{path}: cannot read the HDF5 file (truncated or damaged?): "
                            f"{err}") from err
        self._check_labels(values)
        return hashlib.sha256(np.ascontiguousarray(values[:4800]).tobytes()).hexdigest()[:16]

    def _check_labels(self, values: np.ndarray) -> None:
        if not np.isfinite(values).all():
            raise DataError(f"{self.path}: 'labels' contains non-finite values")
        expected = self.index_to_factors(np.arange(self.size))
        found = values_to_factors(values)
        bad = np.nonzero((found != expected).any(axis=1))[0]
        if bad.size == 0:
            grid = np.stack([FACTOR_VALUES[k][expected[:, k]] for k in range(6)], axis=1)
            bad = np.nonzero((np.abs(values - grid) > LABEL_TOLERANCE).any(axis=1))[0]
        if bad.size:
            row = int(bad[0])
            raise DataError(
                f"{self.path}: 'labels' do not match the row-major factor grid "
                f"{self.factor_sizes} ({bad.size} rows differ; row {row} holds "
                f"{np.round(values[row], 4).tolist()}, expected factor indices "
                f"{expected[row].tolist()})")
