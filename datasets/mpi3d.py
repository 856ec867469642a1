"""MPI3D ground truth: the ``images`` array of an MPI3D ``.npz`` in disentanglement_lib's layout,
memory-mapped, registered as ``mpi3d`` (mpi3d_toy, DisCo's and disentanglement_lib's ``mpi3d``),
``mpi3d-realistic`` and ``mpi3d-real``.

The file holds ``images`` uint8 (N, 64, 64, 3) in the row-major order of seven factors: object
colour, object shape, object size (2), camera height (3), background colour (3), horizontal axis
(40), vertical axis (40). Two grids exist, told apart by N: the MPI3D release (toy, realistic
and real, 1,036,800 images: 6 colours, 6 shapes) and the 460,800-image files without the
held-out colours and shapes (4, 4) that disentanglement_lib downloads as ``mpi3d_toy.npz``
(``sim_toy_64x_ordered_without_heldout_factors.npz``) and that DisCo evaluates on. There are no
label arrays: the factor indices are the row positions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.errors import DataError, SettingError
from datasets import GROUND_TRUTH
from datasets.base import GroundTruthData
from datasets.files import check_subset_sizes, resolve_data_file
from datasets.npz_member import npz_member, open_member
from datasets.shapes3d_synth import default_cache_dir

FACTOR_NAMES = ("object_color", "object_shape", "object_size", "camera_height",
                "background_color", "horizontal_axis", "vertical_axis")
RELEASE_SIZES = (6, 6, 2, 3, 3, 40, 40)
HELDOUT_SIZES = (4, 4, 2, 3, 3, 40, 40)
# rows -> factor sizes: the release, and the files without held-out factors
KNOWN_GRIDS: dict[int, tuple[int, ...]] = {int(np.prod(RELEASE_SIZES)): RELEASE_SIZES,
                                           int(np.prod(HELDOUT_SIZES)): HELDOUT_SIZES}
IMAGE_SHAPE = (64, 64, 3)
RELEASE_URL = "https://huggingface.co/datasets/waleedgondal/mpi3d/resolve/main/{variant}.npz"
DLIB_TOY_URL = ("https://storage.googleapis.com/disentanglement_dataset/data_npz/"
                "sim_toy_64x_ordered_without_heldout_factors.npz")
# registered name -> the variant's file stem (disentanglement_lib's folder and file name)
VARIANTS = {"mpi3d": "mpi3d_toy", "mpi3d-realistic": "mpi3d_realistic",
            "mpi3d-real": "mpi3d_real"}


def download_hint(variant: str) -> str:
    """Where the variant's file comes from (for the error lines)."""
    hint = f" (download {RELEASE_URL.format(variant=variant)}"
    if variant == "mpi3d_toy":
        hint += (f", or disentanglement_lib's {DLIB_TOY_URL} saved under that name, the "
                 "460,800-image file DisCo evaluates on")
    return hint + ")"


class MPI3D(GroundTruthData):
    """One MPI3D variant's ``<variant>.npz`` from ``data_dir`` (or $BENCH_DATA): the file, or a
    folder holding it directly or in ``<variant>/`` (disentanglement_lib's layout).

    ``factor_sizes`` may name a smaller grid holding the first values of each factor of the
    release (tests and subset files); the file must then hold exactly ``prod(factor_sizes)``
    rows. A compressed npz is unpacked once into ``cache_dir`` (default: the cache folder).
    """

    factor_names = FACTOR_NAMES
    observation_shape = IMAGE_SHAPE

    def __init__(self, name: str = "mpi3d", data_dir: str | os.PathLike[str] | None = None, *,
                 factor_sizes: tuple[int, ...] | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        if name not in VARIANTS:
            raise SettingError(f"unknown MPI3D variant {name!r}; expected one of "
                               f"{', '.join(VARIANTS)}")
        self.name = name
        self.variant = VARIANTS[name]
        self.path = resolve_data_file(name, f"{self.variant}.npz", (".npz",), data_dir,
                                      subfolder=self.variant,
                                      source=download_hint(self.variant), fallback=None)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        expected = (f"{self.variant}.npz of MPI3D with 'images' uint8 (N, 64, 64, 3), N one of "
                    f"{', '.join(f'{n:,}' for n in KNOWN_GRIDS)}")
        self.member = npz_member(self.path, "images", expected=expected)
        self.factor_sizes = self._grid(factor_sizes, expected)
        self._images: np.ndarray | None = None

    def _grid(self, factor_sizes: tuple[int, ...] | None, expected: str) -> tuple[int, ...]:
        shape, dtype = self.member.shape, self.member.dtype
        if dtype != np.uint8 or len(shape) != 4 or shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{self.path}: 'images' has shape {shape} and dtype {dtype}; "
                            f"expected {expected}")
        rows = shape[0]
        if factor_sizes is not None:
            sizes = check_subset_sizes(self.name, tuple(factor_sizes), RELEASE_SIZES)
            if rows != int(np.prod(sizes)):
                raise DataError(f"{self.path}: 'images' has {rows} rows, expected "
                                f"{int(np.prod(sizes))} for the grid {sizes}")
            return sizes
        if rows not in KNOWN_GRIDS:
            raise DataError(f"{self.path}: 'images' has {rows:,} rows, not a full MPI3D grid "
                            f"(truncated?); expected {expected}")
        return KNOWN_GRIDS[rows]

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the memory map (reopened on use)."""
        state = dict(self.__dict__)
        state["_images"] = None
        return state

    @property
    def grid_name(self) -> str:
        """Which grid the file holds, in words."""
        if self.factor_sizes == RELEASE_SIZES:
            return "the MPI3D release grid"
        if self.factor_sizes == HELDOUT_SIZES:
            return "without held-out colours and shapes, as disentanglement_lib's mpi3d_toy"
        return "a subset grid"

    def identity(self) -> dict[str, object]:
        return {**super().identity(), "path": str(self.path.resolve()),
                "file_size": self.path.stat().st_size,
                "images_crc32": f"{self.member.crc32:08x}", "images_bytes": self.member.size}

    def images(self) -> np.ndarray:
        """All images, uint8 (N, 64, 64, 3), memory-mapped (unpacked into the cache first when
        the npz is compressed)."""
        if self._images is None:
            self._images = open_member(self.member, self.cache_dir)
        return self._images

    def observations(self, factors: np.ndarray) -> np.ndarray:
        index = self.factors_to_index(factors)
        return np.asarray(self.images()[index], dtype=np.uint8)


def _factory(name: str) -> Callable[..., MPI3D]:
    def load(data_dir: str | None = None) -> MPI3D:
        return MPI3D(name, data_dir)

    load.__doc__ = f"MPI3D {VARIANTS[name]}; FileNotFoundError saying what to download."
    return load


for _name, _variant in VARIANTS.items():
    GROUND_TRUTH.register(
        _name, description=f"MPI3D {_variant}.npz (real images, 7 factors: the release's "
        "(6,6,2,3,3,40,40) or (4,4,2,3,3,40,40) without held-out factors), from --data-dir or "
        "$BENCH_DATA",
    )(_factory(_name))


__all__ = ["FACTOR_NAMES", "HELDOUT_SIZES", "KNOWN_GRIDS", "MPI3D", "RELEASE_SIZES", "VARIANTS"]
