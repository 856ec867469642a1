"""Cars3D ``.mat`` files in disentanglement_lib's layout: tiny folders written here (each view a
flat colour naming its model, azimuth and elevation), read through the real loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

import datasets.cars3d as cars3d_module
from core.errors import DataError
from datasets import load_ground_truth
from datasets.cars3d import Cars3D, read_views
from datasets.prepare import prepare_dataset

SMALL = (2, 3, 2)  # elevations, azimuths, models (of 4, 24, 183)


def write_cars(folder: Path, models: int = 2, azimuths: int = 3, elevations: int = 2,
               seed: int = 0) -> list[Path]:
    """``car_NNN_mesh.mat`` files with ``im`` uint8 (128, 128, 3, azimuths, elevations): red
    = 10 * model + azimuth, green = elevation, blue noise; and a ``mask`` as the release has."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for model in range(models):
        im = np.zeros((128, 128, 3, azimuths, elevations), np.uint8)
        for a in range(azimuths):
            for e in range(elevations):
                im[:, :, 0, a, e] = 10 * model + a
                im[:, :, 1, a, e] = e
                im[:, :, 2, a, e] = rng.integers(0, 256, (128, 128))
        path = folder / f"car_{model + 1:03d}_mesh.mat"
        scipy.io.savemat(path, {"im": im, "mask": np.ones((128, 128, azimuths, elevations),
                                                          np.uint8)})
        paths.append(path)
    return paths


def test_factors_are_elevation_azimuth_model_as_in_disentanglement_lib(tmp_path: Path) -> None:
    """``im[..., a, e]`` is azimuth a, elevation e (disentanglement_lib's
    ``einsum('abcde->deabc')`` with elevation varying fastest); grid order (elevation, azimuth,
    object type); models numbered in sorted file-name order."""
    write_cars(tmp_path / "cars")
    data = Cars3D(tmp_path, factor_sizes=SMALL, cache_dir=tmp_path / "cache")
    assert data.folder == tmp_path / "cars" and data.factor_names == ("elevation", "azimuth",
                                                                        "object_type")
    factors = data.index_to_factors(np.arange(data.size))
    images = data.observations(factors)
    assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8
    assert (images[..., 0] == (10 * factors[:, 2] + factors[:, 1])[:, None, None]).all()
    assert (images[..., 1] == factors[:, 0][:, None, None]).all()
    assert cars3d_module.FACTOR_SIZES == (4, 24, 183)


def test_views_are_scaled_as_disentanglement_lib_scales_them(tmp_path: Path) -> None:
    """Each 128-px view becomes what PIL's ``thumbnail((64, 64), LANCZOS)`` makes of it (the
    ANTIALIAS filter disentanglement_lib names)."""
    (path,) = write_cars(tmp_path, models=1, seed=3)
    im = scipy.io.loadmat(path)["im"]
    views = read_views(path, azimuths=3, elevations=2)
    for a, e in ((0, 0), (2, 1)):
        picture = Image.fromarray(np.ascontiguousarray(im[:, :, :, a, e]))
        picture.thumbnail((64, 64), Image.Resampling.LANCZOS)
        assert np.array_equal(views[a, e], np.asarray(picture))
    assert views[0, 0, ..., 2].std() > 10  # the noise survives: not a flat image


def test_cache_is_built_once_and_follows_the_files(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    paths = write_cars(tmp_path / "data" / "cars")
    first = Cars3D(tmp_path, factor_sizes=SMALL, cache_dir=cache)  # data/cars, as extracted
    (built,) = cache.glob("cars3d-*.npy")
    stamp = built.stat().st_mtime_ns
    again = Cars3D(tmp_path / "data" / "cars", factor_sizes=SMALL, cache_dir=cache)
    assert again.identity()["images_sha256"] == first.identity()["images_sha256"]
    assert built.stat().st_mtime_ns == stamp
    write_cars(paths[0].parent, seed=1)  # new contents (the blue noise changes)
    changed = Cars3D(tmp_path, factor_sizes=SMALL, cache_dir=cache)
    assert changed.identity()["images_sha256"] != first.identity()["images_sha256"]
    built.with_suffix(".json").write_text("{damaged")
    assert Cars3D(tmp_path, factor_sizes=SMALL, cache_dir=cache).identity() == changed.identity()
    monkeypatch.setattr(cars3d_module, "FACTOR_SIZES", SMALL)  # the registered loader's grid
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    summary = prepare_dataset("cars3d", str(tmp_path), progress=False)
    assert summary.startswith(f"cars3d: {paths[0].parent} verified (2 .mat files, 12 images, "
                              f"factors {SMALL}, scaled to 64x64 in the cache; images sha256 "
                              f"{str(changed.identity()['images_sha256'])[:12]})")


def test_registered_loader_needs_all_183_models(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    write_cars(tmp_path / "cars")
    with pytest.raises(DataError, match=r"cars: 2 \.mat files, expected 183, one per car "
                                        r"model \(download"):
        load_ground_truth("cars3d", str(tmp_path))
    monkeypatch.delenv("BENCH_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"^cars3d: no data folder given; pass --data-dir "
                                                r"DIR \(or set BENCH_DATA\) to a folder holding "
                                                r"Cars3D \.mat files \(download http://www\."
                                                r"scottreed\.info/files/nips2015-analogy-data\."
                                                r"tar\.gz and extract its data/cars folder"):
        load_ground_truth("cars3d")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"^cars3d: no Cars3D \.mat files \(\*\.mat\) in "
                                                r"--data-dir .*empty \(tried .*\); put them in "
                                                r".*empty/cars \(download"):
        load_ground_truth("cars3d", str(tmp_path / "empty"))


def test_wrong_files_are_one_line_errors(tmp_path: Path) -> None:
    folder = tmp_path / "cars"
    paths = write_cars(folder)

    def refused(message: str) -> None:
        with pytest.raises(ValueError, match=message):
            Cars3D(folder, factor_sizes=SMALL, cache_dir=tmp_path / "cache")

    paths[1].write_bytes(b"not a MATLAB file")
    refused(r"car_002_mesh\.mat: not a readable MATLAB file .*expected a Cars3D car_NNN_mesh")
    scipy.io.savemat(paths[1], {"mask": np.ones((2, 2), np.uint8)})
    refused(r"car_002_mesh\.mat: no variable 'im'")
    scipy.io.savemat(paths[1], {"im": np.zeros((64, 64, 3, 3, 2), np.uint8)})
    refused(r"'im' has shape \(64, 64, 3, 3, 2\) and dtype uint8; expected uint8 "
            r"\(128, 128, 3, 24, 4\)")
    scipy.io.savemat(paths[1], {"im": np.zeros((128, 128, 3, 2, 2), np.uint8)})
    refused(r"'im' has shape \(128, 128, 3, 2, 2\)")
    assert not list((tmp_path / "cache").glob("*.npy"))  # nothing half-written kept
