"""The real-file ``dsprites`` loader on small npz files written here: a synthetic file loads as
real data, the pickled ``metadata`` is never unpickled, and bad files get clear errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.errors import DataError
from datasets import load_ground_truth
from datasets.dsprites_real import DSprites
from datasets.dsprites_synth import DSpritesSynth, latents, write_npz
from datasets.prepare import prepare_dataset

SMALL = (3, 2, 2, 2, 4)  # the first values of each factor: 96 rows
FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
UNPICKLED: list[str] = []


def _trip() -> dict[str, str]:
    UNPICKLED.append("metadata was unpickled")
    return {}


class _Trap:
    """Unpickling this object records it: the loader must never do so."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_trip, ())


def _arrays() -> dict[str, np.ndarray]:
    factors = np.stack(np.unravel_index(np.arange(96), SMALL), axis=1)
    classes, values = latents(factors)
    imgs = DSpritesSynth().masks(factors).astype(np.uint8)
    return {"imgs": imgs, "latents_classes": classes, "latents_values": values}


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez_compressed(path, **arrays)
    return path


def _open(path: Path, tmp_path: Path) -> DSprites:
    return DSprites(path, factor_sizes=SMALL, cache_dir=tmp_path / "cache")


def test_synthetic_npz_loads_as_real_data(tmp_path: Path) -> None:
    path = tmp_path / FILE
    assert write_npz(DSpritesSynth(), path, factor_sizes=SMALL, block=40) == 96
    real = _open(tmp_path, tmp_path)
    synth = DSpritesSynth()
    factors = real.sample_factors(30, np.random.default_rng(0))
    np.testing.assert_array_equal(real.observations(factors), synth.observations(factors))
    assert list((tmp_path / "cache").iterdir())[0].name.startswith("dsprites-packed-")
    again = _open(path, tmp_path)  # reuses the packed cache
    np.testing.assert_array_equal(again.observations(factors[::-1]),
                                  synth.observations(factors[::-1]))
    import pickle

    blob = pickle.dumps(real)
    assert len(blob) < 10_000  # the packed images (49 kB here) stay out
    np.testing.assert_array_equal(pickle.loads(blob).observations(factors),
                                  synth.observations(factors))
    identity = real.identity()
    assert identity["path"] == str(path.resolve()) and identity["imgs_bytes"] > 0
    with np.load(path, allow_pickle=False) as data:
        assert data["imgs"].shape == (96, 64, 64) and data["imgs"].max() == 1


def test_metadata_is_never_unpickled(tmp_path: Path) -> None:
    UNPICKLED.clear()
    path = _save(tmp_path / FILE, metadata=np.array(_Trap(), dtype=object), **_arrays())
    real = _open(path, tmp_path)
    real.observations(np.zeros((1, 5), np.int64))
    assert UNPICKLED == []
    with np.load(path, allow_pickle=True) as data:  # the trap works when unpickled
        data["metadata"]
    assert UNPICKLED == ["metadata was unpickled"]


def test_missing_file_says_how_to_provide_it(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="BENCH_DATA.*dsprites-synth"):
        load_ground_truth("dsprites")
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / FILE)):
        load_ground_truth("dsprites")


def test_full_grid_required_by_default(tmp_path: Path) -> None:
    path = _save(tmp_path / FILE, **_arrays())
    with pytest.raises(ValueError, match=r"\(737280, 64, 64\)"):
        DSprites(path, cache_dir=tmp_path)


def test_not_npz(tmp_path: Path) -> None:
    path = tmp_path / FILE
    path.write_bytes(b"plain text, no zip" * 50)
    with pytest.raises(DataError, match="not an npz"):
        _open(path, tmp_path)


def test_missing_member(tmp_path: Path) -> None:
    arrays = _arrays()
    del arrays["latents_values"]
    with pytest.raises(ValueError, match="missing array 'latents_values'"):
        _open(_save(tmp_path / FILE, **arrays), tmp_path)


def test_wrong_image_dtype(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["imgs"] = arrays["imgs"].astype(np.float32)
    with pytest.raises(ValueError, match="'imgs' has dtype float32, expected uint8"):
        _open(_save(tmp_path / FILE, **arrays), tmp_path)


def test_wrong_rows(tmp_path: Path) -> None:
    arrays = {k: v[:90] for k, v in _arrays().items()}
    with pytest.raises(ValueError, match=r"'imgs' has shape \(90, 64, 64\)"):
        _open(_save(tmp_path / FILE, **arrays), tmp_path)


def test_classes_and_values_checked(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["latents_classes"] = arrays["latents_classes"][::-1].copy()
    with pytest.raises(ValueError, match="'latents_classes' do not match"):
        _open(_save(tmp_path / FILE, **arrays), tmp_path)
    arrays = _arrays()
    arrays["latents_values"][7, 2] = 0.55
    with pytest.raises(ValueError, match="'latents_values' row 7"):
        _open(_save(tmp_path / FILE, **arrays), tmp_path)


def test_non_binary_images_rejected_when_read(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["imgs"] = arrays["imgs"] * np.uint8(255)
    real = _open(_save(tmp_path / FILE, **arrays), tmp_path)
    with pytest.raises(ValueError, match="expected 0/1"):
        real.observations(np.zeros((1, 5), np.int64))
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_truncated_file(tmp_path: Path) -> None:
    source = _save(tmp_path / "full.npz", **_arrays())
    data = source.read_bytes()
    path = tmp_path / FILE
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"{path}.*(truncated|damaged|not an npz)"):
        _open(path, tmp_path)


def test_prepare_writes_npz(tmp_path: Path) -> None:
    target = tmp_path / FILE
    summary = prepare_dataset("dsprites-synth", write_npz=str(target), progress=False,
                              factor_sizes=SMALL)
    assert "\n" not in summary and "96 images" in summary
    with zipfile.ZipFile(target) as zf:
        assert sorted(zf.namelist()) == ["imgs.npy", "latents_classes.npy",
                                         "latents_values.npy"]
    assert _open(target, tmp_path).size == 96
