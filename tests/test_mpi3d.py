"""MPI3D ``.npz`` files in disentanglement_lib's layout: tiny files written here (a subset grid
whose every image carries its own row number), read through the real loader."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import numpy as np
import pytest

import datasets.mpi3d as mpi3d_module
from core.errors import DataError
from datasets import load_ground_truth
from datasets.mpi3d import MPI3D
from datasets.npz_member import npz_member, open_member
from datasets.prepare import prepare_dataset

SMALL = (2, 3, 2, 2, 2, 2, 2)  # leading values of the release's (6, 6, 2, 3, 3, 40, 40)
ROWS = int(np.prod(SMALL))


def numbered_images(rows: int = ROWS) -> np.ndarray:
    """uint8 (rows, 64, 64, 3); pixel (0, 0) holds the row number (red: low byte, green: high)."""
    images = np.zeros((rows, 64, 64, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(rows) % 256
    images[:, 0, 0, 1] = np.arange(rows) // 256
    images[:, 10:20, 10:20, 2] = 200
    return images


def write_npz(path: Path, compressed: bool = False, **arrays: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = arrays or {"images": numbered_images()}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def row_of(images: np.ndarray) -> np.ndarray:
    return images[:, 0, 0, 0].astype(np.int64) + 256 * images[:, 0, 0, 1].astype(np.int64)


def test_known_grids_are_the_release_and_disentanglement_lib_toy() -> None:
    """1,036,800 rows: the release's 6 colours x 6 shapes; 460,800: the files without held-out
    colours and shapes (disentanglement_lib's mpi3d_toy, hard-coded [4, 4, 2, 3, 3, 40, 40])."""
    assert mpi3d_module.KNOWN_GRIDS == {1_036_800: (6, 6, 2, 3, 3, 40, 40),
                                        460_800: (4, 4, 2, 3, 3, 40, 40)}
    assert mpi3d_module.FACTOR_NAMES[5:] == ("horizontal_axis", "vertical_axis")
    assert mpi3d_module.VARIANTS == {"mpi3d": "mpi3d_toy", "mpi3d-realistic": "mpi3d_realistic",
                                     "mpi3d-real": "mpi3d_real"}


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "compressed"])
def test_rows_follow_the_row_major_grid(tmp_path: Path, compressed: bool) -> None:
    """Factor indices -> the row ``ravel_multi_index`` names (last factor fastest), read from a
    memory map: in place for a stored npz, unpacked once into the cache for a compressed one."""
    path = write_npz(tmp_path / "mpi3d_toy.npz", compressed)
    cache = tmp_path / "cache"
    data = MPI3D("mpi3d", tmp_path, factor_sizes=SMALL, cache_dir=cache)
    assert data.path == path and data.factor_sizes == SMALL and data.member.compressed is compressed
    factors = data.sample_factors(200, np.random.default_rng(0))
    images = data.observations(factors)
    assert images.dtype == np.uint8 and images.shape == (200, 64, 64, 3)
    expected = np.ravel_multi_index(tuple(factors.T), SMALL)
    assert np.array_equal(row_of(images), expected)
    assert (images[:, 10:20, 10:20, 2] == 200).all()
    assert row_of(data.observations(np.array([[1, 2, 1, 1, 1, 1, 1]])))[0] == ROWS - 1
    unpacked = sorted(p.name for p in cache.glob("*.npy")) if cache.exists() else []
    assert len(unpacked) == int(compressed)
    if compressed:
        stamp = (cache / unpacked[0]).stat().st_mtime_ns
        again = MPI3D("mpi3d", tmp_path, factor_sizes=SMALL, cache_dir=cache)
        assert np.array_equal(again.observations(factors), images)
        assert (cache / unpacked[0]).stat().st_mtime_ns == stamp  # reused, not rewritten
    identity = data.identity()
    assert identity["name"] == "mpi3d" and identity["factor_sizes"] == list(SMALL)
    with zipfile.ZipFile(path) as zf:
        assert identity["images_crc32"] == f"{zf.getinfo('images.npy').CRC:08x}"


def test_full_grid_by_row_count_and_disentanglement_lib_folder(tmp_path: Path,
                                                               monkeypatch) -> None:
    """Without ``factor_sizes`` the grid comes from the row count; the file may sit in
    ``<variant>/`` as disentanglement_lib keeps it; the registered names find their files."""
    monkeypatch.setattr(mpi3d_module, "KNOWN_GRIDS", {ROWS: SMALL})
    write_npz(tmp_path / "mpi3d_realistic" / "mpi3d_realistic.npz")
    data = load_ground_truth("mpi3d-realistic", str(tmp_path))
    assert data.factor_sizes == SMALL and data.name == "mpi3d-realistic"
    assert data.path == tmp_path / "mpi3d_realistic" / "mpi3d_realistic.npz"
    with pytest.raises(FileNotFoundError, match=r"^mpi3d: mpi3d_toy\.npz not found in "
                                                r"--data-dir .*; put mpi3d_toy\.npz \(download "
                                                r"https://huggingface\.co/.*/mpi3d_toy\.npz, or "
                                                r"disentanglement_lib's .*sim_toy_64x_ordered_"
                                                r"without_heldout_factors\.npz"):
        load_ground_truth("mpi3d", str(tmp_path))
    summary = prepare_dataset("mpi3d-realistic", str(tmp_path), progress=False)
    assert summary.startswith(f"mpi3d-realistic: {data.path} verified ({ROWS} images, factors "
                              f"{SMALL}: a subset grid; mapped in place (stored uncompressed))")


def test_no_data_folder_says_what_to_download(monkeypatch) -> None:
    monkeypatch.delenv("BENCH_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"^mpi3d-real: no data folder given; pass "
                                                r"--data-dir DIR \(or set BENCH_DATA\) to a "
                                                r"folder holding mpi3d_real\.npz \(download "
                                                r"https://huggingface\.co/datasets/waleedgondal/"
                                                r"mpi3d/resolve/main/mpi3d_real\.npz\)$"):
        load_ground_truth("mpi3d-real")


def bad(tmp_path: Path, message: str, **kwargs: object) -> None:
    with pytest.raises(ValueError, match=message):
        MPI3D("mpi3d", tmp_path / "mpi3d_toy.npz", cache_dir=tmp_path / "cache", **kwargs)


def test_wrong_files_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "mpi3d_toy.npz"
    path.write_bytes(b"not a zip file at all")
    bad(tmp_path, r"mpi3d_toy\.npz: not an npz \(zip\) file, or a truncated one; expected "
                  r"mpi3d_toy\.npz of MPI3D "
                  r"with 'images' uint8 \(N, 64, 64, 3\), N one of 1,036,800, 460,800$")
    write_npz(path, imgs=numbered_images())
    bad(tmp_path, r"no array 'images' \(found \['imgs'\]\)")
    write_npz(path, images=numbered_images().astype(np.float32))
    bad(tmp_path, r"'images' has shape \(192, 64, 64, 3\) and dtype float32; expected")
    write_npz(path, images=numbered_images()[:, :32])
    bad(tmp_path, r"'images' has shape \(192, 32, 64, 3\)")
    write_npz(path)
    bad(tmp_path, r"'images' has 192 rows, not a full MPI3D grid \(truncated\?\)")
    bad(tmp_path, r"'images' has 192 rows, expected 384 for the grid \(2, 3, 2, 2, 2, 2, 4\)",
        factor_sizes=(2, 3, 2, 2, 2, 2, 4))
    bad(tmp_path, r"^mpi3d: factor_sizes must be 7 sizes within \(6, 6, 2, 3, 3, 40, 40\)",
        factor_sizes=(7, 1, 1, 1, 1, 1, 1))


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "compressed"])
def test_truncated_file(tmp_path: Path, compressed: bool) -> None:
    """A file cut short fails when opened (its zip directory is gone); a compressed member
    damaged inside fails when it is unpacked, and nothing is left in the cache."""
    path = write_npz(tmp_path / "mpi3d_toy.npz", compressed)
    blob = path.read_bytes()
    if not compressed:
        path.write_bytes(blob[:len(blob) // 2])
        with pytest.raises(DataError, match=r"not an npz \(zip\) file, or a truncated one"):
            MPI3D("mpi3d", path, factor_sizes=SMALL, cache_dir=tmp_path / "cache")
        # a stored member whose data is shorter than its header says (the directory intact)
        path.write_bytes(blob)
        member = npz_member(path, "images", expected="x")
        longer = dataclasses.replace(member, shape=(ROWS + 1, 64, 64, 3))
        with pytest.raises(ValueError, match=r"'images\.npy' ends early \(truncated file"):
            open_member(longer, tmp_path / "cache")
        return
    # a compressed member damaged in the middle: the directory is intact, the data is not
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("images.npy")
    start = info.header_offset + 30 + len(info.filename) + 200
    path.write_bytes(blob[:start] + bytes(64) + blob[start + 64:])
    data = MPI3D("mpi3d", path, factor_sizes=SMALL, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match=r"mpi3d_toy\.npz: cannot unpack 'images\.npy' "
                                         r"\(truncated or damaged\?\)"):
        data.images()
    assert not any((tmp_path / "cache").glob("*.npy"))  # nothing half-written kept
