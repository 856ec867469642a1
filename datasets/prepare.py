"""``bench prepare NAME``: build caches, verify real files, or write synthetic data files in the
original layouts (``3dshapes.h5``; dSprites ``.npz``) so real and synthetic data interchange."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from core.errors import SettingError
from core.io import atomic_path
from datasets import load_ground_truth
from datasets.base import GroundTruthData
from datasets.cars3d import Cars3D
from datasets.dsprites_real import DSprites
from datasets.dsprites_synth import DSpritesSynth
from datasets.dsprites_synth import write_npz as write_npz_layout
from datasets.mpi3d import MPI3D
from datasets.mpi3d import VARIANTS as MPI3D_VARIANTS
from datasets.shapes3d_real import Shapes3D
from datasets.shapes3d_synth import FACTOR_SIZES, Shapes3DSynth, factors_to_values

PREPARABLE = ("shapes3d-synth", "shapes3d", "dsprites-synth", "dsprites", *MPI3D_VARIANTS,
              "cars3d")
H5_BLOCK = 4800  # images composed and written per step (about 59 MB)
H5_CHUNK = 1  # images per HDF5 chunk: one, for fast random batch reads (as disent re-saves)


def prepare_dataset(name: str, data_dir: str | None = None, write_h5: str | None = None,
                    progress: bool = True, *, write_npz: str | None = None,
                    factor_sizes: tuple[int, ...] | None = None) -> str:
    """Prepare one ground-truth dataset and return a one-line summary.

    - ``shapes3d-synth``: build (or verify) the cached geometry maps; with ``write_h5=PATH``
      write the full set in the ``3dshapes.h5`` layout.
    - ``shapes3d``: open and verify the real file (keys, shapes, dtypes, every label).
    - ``dsprites-synth``: with ``write_npz=PATH`` write the set in the dSprites npz layout.
    - ``dsprites``: open and verify the real npz.
    - ``mpi3d``, ``mpi3d-realistic``, ``mpi3d-real``: open the npz, check its ``images``
      header, read its first and last image (a compressed npz is unpacked into the cache).
    - ``cars3d``: read every ``.mat`` file and scale its views into the cache (once).

    ``factor_sizes`` writes only the leading values of each factor (a small grid for tests).
    An option the dataset does not take is a SettingError, a data file that is not what was
    expected a DataError (a missing one a FileNotFoundError).
    """
    if name not in PREPARABLE:
        raise SettingError(f"prepare: unknown dataset {name!r}; expected one of "
                           f"{', '.join((*PREPARABLE, 'ffhq'))}")
    if write_h5 is not None and name != "shapes3d-synth":
        raise SettingError(f"prepare: --write-h5 applies to 'shapes3d-synth' only, not {name!r}")
    if write_npz is not None and name != "dsprites-synth":
        raise SettingError(f"prepare: --write-npz applies to 'dsprites-synth' only, not "
                           f"{name!r}")
    start = time.perf_counter()
    if name == "shapes3d-synth":
        gt = Shapes3DSynth(progress=progress)
        cached = gt.cache_path.exists()
        gt.coefficient_maps()
        summary = (f"shapes3d-synth: geometry maps {'verified' if cached else 'built'} at "
                   f"{gt.cache_path}")
        if write_h5 is not None:
            rows = write_shapes3d_h5(gt, write_h5, factor_sizes=factor_sizes, progress=progress)
            summary += f"; wrote {rows} images to {write_h5}"
    elif name == "shapes3d":
        real = Shapes3D(data_dir)
        summary = f"shapes3d: {real.path} verified ({real.size} images, labels match the grid)"
    elif name == "dsprites-synth":
        synth = DSpritesSynth()
        summary = "dsprites-synth: rasterised on the fly (nothing to build)"
        if write_npz is not None:
            rows = write_dsprites_npz(synth, write_npz, factor_sizes=factor_sizes,
                                      progress=progress)
            summary += f"; wrote {rows} images to {write_npz}"
    elif name == "dsprites":
        real_sprites = DSprites(data_dir)
        summary = (f"dsprites: {real_sprites.path} verified ({real_sprites.size} images, "
                   f"classes match the grid)")
    elif name in MPI3D_VARIANTS:
        summary = summarise_mpi3d(MPI3D(name, data_dir))
    else:
        cars = Cars3D(data_dir)
        summary = (f"cars3d: {cars.folder} verified ({len(cars.files)} .mat files, {cars.size:,} "
                   f"images, factors {cars.factor_sizes}, scaled to 64x64 in the cache; images "
                   f"sha256 {str(cars.identity()['images_sha256'])[:12]})")
    return f"{summary} [{time.perf_counter() - start:.1f} s]"


def summarise_mpi3d(data: MPI3D) -> str:
    """Read the first and last image (the whole member when it has to be unpacked) and say
    what the file holds."""
    images = data.images()
    np.asarray(images[[0, len(images) - 1]])  # read, so that a short file fails here
    where = (f"unpacked into {data.cache_dir}" if data.member.compressed
             else "mapped in place (stored uncompressed)")
    return (f"{data.name}: {data.path} verified ({data.size:,} images, factors "
            f"{data.factor_sizes}: {data.grid_name}; {where})")


def write_shapes3d_h5(gt: Shapes3DSynth, path: str | os.PathLike[str], *,
                      factor_sizes: tuple[int, ...] | None = None, progress: bool = False,
                      block: int = H5_BLOCK) -> int:
    """Write ``images`` uint8 (N, 64, 64, 3) gzip-chunked and ``labels`` float64 (N, 6) in the
    ``3dshapes.h5`` layout, block by block, to a temp file renamed at the end; returns N."""
    import h5py

    sizes = tuple(factor_sizes) if factor_sizes is not None else FACTOR_SIZES
    if len(sizes) != 6 or any(not 1 <= s <= f for s, f in zip(sizes, FACTOR_SIZES, strict=True)):
        raise ValueError(f"factor_sizes must be 6 sizes within {FACTOR_SIZES}, got {sizes}")
    rows = int(np.prod(sizes))
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as fh:
            images = fh.create_dataset("images", shape=(rows, 64, 64, 3), dtype=np.uint8,
                                       chunks=(min(H5_CHUNK, rows), 64, 64, 3),
                                       compression="gzip", compression_opts=4)
            labels = fh.create_dataset("labels", shape=(rows, 6), dtype=np.float64)
            fh.attrs["source"] = "shapes3d-synth"
            fh.attrs["renderer"] = gt.identity()["renderer"]
            fh.attrs["factor_sizes"] = np.asarray(sizes)
            starts = range(0, rows, block)
            if progress:
                from tqdm import tqdm

                starts = tqdm(starts, desc=f"write {path.name}", unit="block")
            for lo in starts:
                hi = min(lo + block, rows)
                factors = np.stack(np.unravel_index(np.arange(lo, hi), sizes), axis=1)
                images[lo:hi] = gt.observations(factors)
                labels[lo:hi] = factors_to_values(factors)
    return rows


def write_dsprites_npz(gt: DSpritesSynth, path: str | os.PathLike[str], *,
                       factor_sizes: tuple[int, ...] | None = None,
                       progress: bool = False) -> int:
    """Write the dSprites npz layout (``imgs`` uint8 0/1 (N, 64, 64), ``latents_classes``,
    ``latents_values``; no pickled ``metadata``) to a temp file renamed at the end."""
    return write_npz_layout(gt, path, factor_sizes=factor_sizes, progress=progress)


def sample_grid(gt: GroundTruthData, rows: int = 8, seed: int = 0,
                border: int = 2) -> np.ndarray:
    """A rows x rows grid of random observations of ``gt`` as one uint8 RGB image."""
    _, images = gt.sample(rows * rows, np.random.default_rng(seed))
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    h, w = images.shape[1:3]
    tiles = np.full((rows * rows, h + 2 * border, w + 2 * border, 3), 128, np.uint8)
    tiles[:, border:border + h, border:border + w] = images
    tiles = tiles.reshape(rows, rows, *tiles.shape[1:]).transpose(0, 2, 1, 3, 4)
    return tiles.reshape(rows * tiles.shape[1], rows * tiles.shape[3], 3)


# the seed of --write-images: `--count N` writes the N images `bench edit --dataset-images N` edits
IMAGES_SEED = 20_240_601


def write_images(name: str, folder: str | os.PathLike[str], count: int,
                 data_dir: str | None = None, seed: int = IMAGES_SEED) -> Path:
    """``count`` images of ground truth ``name`` drawn from ``seed`` as PNG files
    ``<name>-<i>-f<factor indices>.png`` in the new folder ``folder`` (written under a temporary
    name and renamed): photos the generators never saw, for ``bench edit --images``."""
    from PIL import Image

    if count < 1:
        raise SettingError(f"--count must be >= 1, got {count}")
    target = Path(folder)
    if target.exists():
        raise SettingError(f"--write-images {folder}: exists; expected a new folder")
    factors, images = load_ground_truth(name, data_dir).sample(count, np.random.default_rng(seed))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    tmp.mkdir()
    try:
        for i, (f, pixels) in enumerate(zip(factors, images, strict=True)):
            tag = "-".join(str(int(v)) for v in f)
            Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(
                tmp / f"{name}-{i:03d}-f{tag}.png")
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            for path in tmp.iterdir():
                path.unlink()
            tmp.rmdir()
    return target


def write_sample_grid(name: str, path: str | os.PathLike[str], rows: int = 8,
                      seed: int = 0) -> Path:
    """Save ``sample_grid`` of registered ground truth ``name`` as a PNG (atomically)."""
    import matplotlib.image

    grid = sample_grid(load_ground_truth(name), rows=rows, seed=seed)
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        matplotlib.image.imsave(tmp, grid)
    return path
