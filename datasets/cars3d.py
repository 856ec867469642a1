"""Cars3D ground truth (``cars3d``): the ``.mat`` files of Reed et al.'s cars, in
disentanglement_lib's layout, scaled to 64x64 once and kept in the cache folder.

The release (``nips2015-analogy-data.tar.gz``, its ``data/cars`` folder) holds one
``car_NNN_mesh.mat`` per car model, 183 of them, each with ``im`` uint8 (128, 128, 3, 24, 4):
height, width, RGB, 24 azimuths, 4 elevations. As in disentanglement_lib the factors are
elevation (4), azimuth (24) and object type (183), and every image is scaled to 64x64 with
Lanczos filtering (PIL's ``thumbnail`` with ``ANTIALIAS`` there; ``resize`` with ``LANCZOS``
here, the same filter at 2:1). disentanglement_lib numbers the models in directory-listing
order, which no file system fixes; here they are numbered in sorted file-name order. The scaled
uint8 images (17,568 x 64 x 64 x 3, 216 MB) are written once to the cache, named by the files'
names, sizes and modification times; their sha256 identifies the data.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from core.errors import DataError
from core.io import atomic_path, atomic_write_text
from datasets import GROUND_TRUTH
from datasets.base import GroundTruthData
from datasets.files import check_subset_sizes, resolve_data_folder
from datasets.shapes3d_synth import default_cache_dir

FACTOR_NAMES = ("elevation", "azimuth", "object_type")
FACTOR_SIZES = (4, 24, 183)
SOURCE_SHAPE = (128, 128, 3)  # per view in 'im'; then azimuth, elevation
IMAGE_SHAPE = (64, 64, 3)
PATTERN = "*.mat"
SOURCE = (" (download http://www.scottreed.info/files/nips2015-analogy-data.tar.gz and extract "
          "its data/cars folder: car_NNN_mesh.mat, one per car model)")


class Cars3D(GroundTruthData):
    """Real Cars3D from the ``.mat`` files in ``data_dir`` (or $BENCH_DATA): that folder, or its
    ``cars/`` (disentanglement_lib's layout) or ``data/cars/`` (the extracted archive).

    ``factor_sizes`` may name a smaller grid holding the first elevations and azimuths of the
    first models (tests); the folder must then hold exactly that many files, each with at least
    those views.
    """

    name = "cars3d"
    factor_names = FACTOR_NAMES
    observation_shape = IMAGE_SHAPE

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *,
                 factor_sizes: tuple[int, ...] | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.factor_sizes = check_subset_sizes("cars3d", tuple(factor_sizes or FACTOR_SIZES),
                                               FACTOR_SIZES)
        self.folder = resolve_data_folder("cars3d", PATTERN, data_dir,
                                          subfolders=("cars", "data/cars"),
                                          what="Cars3D .mat files", source=SOURCE)
        self.files = sorted(self.folder.glob(PATTERN))
        models = self.factor_sizes[2]
        if len(self.files) != models:
            raise DataError(f"{self.folder}: {len(self.files)} .mat files, expected {models}, "
                            f"one per car model{SOURCE}")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._images: np.ndarray | None = None
        self._digest = self._cached()

    @property
    def path(self) -> Path:
        """The folder of ``.mat`` files (what the bundle's description names)."""
        return self.folder

    def identity(self) -> dict[str, object]:
        return {**super().identity(), "path": str(self.folder.resolve()),
                "files": len(self.files), "images_sha256": self._digest}

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_images"] = None
        return state

    def images(self) -> np.ndarray:
        """All scaled images, uint8 (N, 64, 64, 3) in grid order, memory-mapped from the cache."""
        if self._images is None:
            self._images = np.load(self._cache_file(), mmap_mode="r", allow_pickle=False)
        return self._images

    def observations(self, factors: np.ndarray) -> np.ndarray:
        index = self.factors_to_index(factors)
        return np.asarray(self.images()[index], dtype=np.uint8)

    # ------------------------------------------------------------------ the cache
    def _cache_file(self) -> Path:
        listing = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in self.files]
        key = hashlib.sha256(json.dumps([list(self.factor_sizes), listing]).encode()).hexdigest()
        return self.cache_dir / f"cars3d-{key[:16]}.npy"

    def _cached(self) -> str:
        """The sha256 of the scaled images, building the cache first when it is missing."""
        cache = self._cache_file()
        record = cache.with_suffix(".json")
        if cache.is_file() and record.is_file():
            try:
                digest = str(json.loads(record.read_text(encoding="utf-8"))["images_sha256"])
                images = np.load(cache, mmap_mode="r", allow_pickle=False)
            except (ValueError, KeyError, TypeError, OSError):
                digest, images = "", None  # a damaged cache entry is rebuilt
            if (images is not None and images.shape == (self.size, *IMAGE_SHAPE)
                    and images.dtype == np.uint8 and len(digest) == 64):
                return digest
        digest = self._build(cache)
        atomic_write_text(record, json.dumps({"images_sha256": digest, "files": len(self.files),
                                              "factor_sizes": list(self.factor_sizes)}) + "\n")
        return digest

    def _build(self, cache: Path) -> str:
        """Read every file, scale its views and write them in grid order; returns the sha256."""
        elevations, azimuths, models = self.factor_sizes
        with atomic_path(cache) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                            shape=(self.size, *IMAGE_SHAPE))
            grid = out.reshape(elevations, azimuths, models, *IMAGE_SHAPE)
            for model, path in enumerate(self.files):
                views = read_views(path, azimuths, elevations)  # (azimuth, elevation, 64, 64, 3)
                grid[:, :, model] = views.transpose(1, 0, 2, 3, 4)
            out.flush()
            sha = hashlib.sha256()
            for image in out:
                sha.update(image.tobytes())
            del out, grid
        return sha.hexdigest()


def read_views(path: Path, azimuths: int = 24, elevations: int = 4) -> np.ndarray:
    """The first ``azimuths`` x ``elevations`` views of one ``.mat`` file, scaled to 64x64:
    uint8 (azimuths, elevations, 64, 64, 3). One-line DataErrors name the file."""
    import scipy.io
    from PIL import Image

    try:
        data = scipy.io.loadmat(path, variable_names=["im"])
    except (ValueError, OSError, TypeError, NotImplementedError,
            scipy.io.matlab.MatReadError) as err:
        raise DataError(f"{path}: not a readable MATLAB file ({err}); expected a Cars3D "
                        f"car_NNN_mesh.mat") from None
    if "im" not in data:
        raise DataError(f"{path}: no variable 'im'; expected a Cars3D car_NNN_mesh.mat")
    im = data["im"]
    full = (*SOURCE_SHAPE, 24, 4)
    if (im.dtype != np.uint8 or im.ndim != 5 or im.shape[:3] != SOURCE_SHAPE
            or im.shape[3] < azimuths or im.shape[4] < elevations
            or ((azimuths, elevations) == (24, 4) and im.shape != full)):
        raise DataError(f"{path}: 'im' has shape {im.shape} and dtype {im.dtype}; expected "
                        f"uint8 {full}")
    views = np.empty((azimuths, elevations, *IMAGE_SHAPE), np.uint8)
    for a in range(azimuths):
        for e in range(elevations):
            picture = Image.fromarray(np.ascontiguousarray(im[:, :, :, a, e]))
            views[a, e] = np.asarray(picture.resize(IMAGE_SHAPE[:2], Image.Resampling.LANCZOS))
    return views


@GROUND_TRUTH.register(
    "cars3d",
    description="Cars3D .mat files (real images, factors elevation 4, azimuth 24, object 183), "
    "from --data-dir or $BENCH_DATA, scaled to 64x64 once into the cache",
)
def cars3d(data_dir: str | None = None) -> Cars3D:
    """The real files; FileNotFoundError saying what to download when they are absent."""
    return Cars3D(data_dir)


__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "Cars3D", "cars3d", "read_views"]
