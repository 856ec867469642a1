"""The real-file ``shapes3d`` loader on small files written here: synthetic files written by
``prepare`` load as real data, and each kind of bad file gets its own clear error."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from core.errors import DataError
from core.inputs import InputError
from datasets import load_ground_truth
from datasets.prepare import prepare_dataset, write_shapes3d_h5
from datasets.shapes3d_real import Shapes3D
from datasets.shapes3d_synth import Shapes3DSynth, factors_to_values

SMALL = (2, 2, 1, 2, 4, 3)  # the first values of each factor: 96 rows


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("h5") / "3dshapes.h5"
    rows = write_shapes3d_h5(Shapes3DSynth(), path, factor_sizes=SMALL, block=40)
    assert rows == 96
    return path


def _write(path: Path, images: np.ndarray | None, labels: np.ndarray | None) -> Path:
    with h5py.File(path, "w") as fh:
        if images is not None:
            fh["images"] = images
        if labels is not None:
            fh["labels"] = labels
    return path


def _good_arrays() -> tuple[np.ndarray, np.ndarray]:
    synth = Shapes3DSynth()
    factors = np.stack(np.unravel_index(np.arange(96), SMALL), axis=1)
    return synth.observations(factors), factors_to_values(factors)


def test_synthetic_file_loads_as_real_data(small_file: Path) -> None:
    real = Shapes3D(small_file, factor_sizes=SMALL)
    synth = Shapes3DSynth()
    with h5py.File(small_file, "r") as fh:
        assert fh["images"].dtype == np.uint8 and fh["images"].shape == (96, 64, 64, 3)
        assert fh["labels"].dtype == np.float64 and fh["labels"].shape == (96, 6)
        assert fh["images"].compression == "gzip"
    factors = real.sample_factors(40, np.random.default_rng(0))
    np.testing.assert_array_equal(real.observations(factors), synth.observations(factors))
    np.testing.assert_array_equal(real.labels(factors), factors_to_values(factors))
    identity = real.identity()
    assert identity["path"] == str(small_file.resolve())
    assert identity["file_size"] == small_file.stat().st_size
    assert len(identity["labels_sha256"]) == 16


def test_reads_keep_request_order_with_duplicates(small_file: Path) -> None:
    real = Shapes3D(small_file, factor_sizes=SMALL)
    index = np.array([95, 3, 3, 40, 0, 41, 42, 7])
    expected = np.stack([real.images_at(np.array([i]))[0] for i in index])
    np.testing.assert_array_equal(real.images_at(index), expected)
    assert not (expected[0] == expected[1]).all()
    with pytest.raises(ValueError, match="out of range"):
        real.images_at(np.array([96]))


def test_data_dir_folder_and_env_var(small_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Shapes3D(small_file.parent, factor_sizes=SMALL).path == small_file
    monkeypatch.setenv("BENCH_DATA", str(small_file.parent))
    assert Shapes3D(factor_sizes=SMALL).path == small_file


def test_missing_file_says_how_to_provide_it(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="BENCH_DATA.*shapes3d-synth"):
        load_ground_truth("shapes3d")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "3dshapes.h5")):
        load_ground_truth("shapes3d", data_dir=str(tmp_path))


def test_full_grid_required_by_default(small_file: Path) -> None:
    with pytest.raises(ValueError, match=r"\(480000, 64, 64, 3\)"):
        Shapes3D(small_file)


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "3dshapes.h5"
    path.write_bytes(b"this is not an HDF5 file" * 100)
    with pytest.raises(DataError, match="not an HDF5 file"):
        Shapes3D(path, factor_sizes=SMALL)


def test_missing_key(tmp_path: Path) -> None:
    images, _ = _good_arrays()
    path = _write(tmp_path / "3dshapes.h5", images, None)
    with pytest.raises(DataError, match="missing dataset 'labels'"):
        Shapes3D(path, factor_sizes=SMALL)


def test_wrong_image_dtype(tmp_path: Path) -> None:
    images, labels = _good_arrays()
    path = _write(tmp_path / "3dshapes.h5", images.astype(np.float32) / 255, labels)
    with pytest.raises(ValueError, match="'images' has dtype float32, expected uint8"):
        Shapes3D(path, factor_sizes=SMALL)


def test_wrong_label_dtype(tmp_path: Path) -> None:
    images, labels = _good_arrays()
    path = _write(tmp_path / "3dshapes.h5", images, labels.astype(np.int64))
    with pytest.raises(ValueError, match="'labels' has dtype int64"):
        Shapes3D(path, factor_sizes=SMALL)


def test_too_few_rows(tmp_path: Path) -> None:
    images, labels = _good_arrays()
    path = _write(tmp_path / "3dshapes.h5", images[:90], labels[:90])
    with pytest.raises(ValueError, match=r"shape \(90, 64, 64, 3\), expected \(96, 64, 64, 3\)"):
        Shapes3D(path, factor_sizes=SMALL)


def test_truncated_file(small_file: Path, tmp_path: Path) -> None:
    data = small_file.read_bytes()
    path = tmp_path / "3dshapes.h5"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValueError, match=f"{path}.*(truncated|damaged)"):
        Shapes3D(path, factor_sizes=SMALL)


def test_labels_not_matching_grid(tmp_path: Path) -> None:
    images, labels = _good_arrays()
    shuffled = labels[np.random.default_rng(0).permutation(len(labels))]
    path = _write(tmp_path / "3dshapes.h5", images, shuffled)
    with pytest.raises(ValueError, match="do not match the row-major factor grid"):
        Shapes3D(path, factor_sizes=SMALL)
    off_grid = labels.copy()
    off_grid[5, 3] += 0.02  # rounds to the right index but is not a grid value
    path = _write(tmp_path / "3dshapes.h5", images, off_grid)
    with pytest.raises(ValueError, match="row 5"):
        Shapes3D(path, factor_sizes=SMALL)


def test_prepare_writes_and_verifies(tmp_path: Path) -> None:
    target = tmp_path / "out" / "3dshapes.h5"
    summary = prepare_dataset("shapes3d-synth", write_h5=str(target), progress=False,
                              factor_sizes=SMALL)
    assert "\n" not in summary and str(target) in summary and "96 images" in summary
    assert sorted(p.name for p in target.parent.iterdir()) == ["3dshapes.h5"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    real = Shapes3D(target.parent, factor_sizes=SMALL)
    assert real.size == 96
    with pytest.raises(InputError, match="--data-dir .*nowhere not found"):
        prepare_dataset("shapes3d", data_dir=str(tmp_path / "nowhere"), progress=False)
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare_dataset("shapes4d", progress=False)
    with pytest.raises(ValueError, match="write-h5"):
        prepare_dataset("shapes3d", write_h5=str(target), progress=False)


def test_pickles_without_the_open_file(small_file: Path) -> None:
    import pickle

    real = Shapes3D(small_file, factor_sizes=SMALL)
    factors = np.array([[1, 0, 0, 1, 3, 2]])
    first = real.observations(factors)
    copy = pickle.loads(pickle.dumps(real))
    np.testing.assert_array_equal(copy.observations(factors), first)
