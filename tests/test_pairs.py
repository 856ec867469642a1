"""Pair dataset: round-trip, determinism, duplicate removal, labels only among kept directions."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from toy_generators import PixelAttributeGenerator

from distill.pairs import deduplicate, make_pairs, read_pair_attrs, to_uint8
from models.directions import Directions


def _directions() -> Directions:
    w = torch.tensor([
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [-0.99, 0.05, 0.0],  # duplicate of 0 (|cos| > 0.95)
        [0.0, 0.0, 1.0],
    ])
    return Directions.from_w(w, num_ws=2, scale=torch.tensor([0.2, 0.3, 0.2, 0.4]),
                             meta={"method": "toy"})


def test_deduplicate_drops_later_near_copies() -> None:
    assert deduplicate(_directions()) == [0, 1, 3]
    assert deduplicate(_directions(), threshold=1.0) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="threshold"):
        deduplicate(_directions(), threshold=0.0)


def test_to_uint8_rounds_and_clamps() -> None:
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]).reshape(1, 1, 1, 5).permute(0, 3, 1, 2)
    assert to_uint8(x).reshape(-1).tolist() == [0, 0, 128, 255, 255]


def test_pairs_round_trip_and_encode_the_edit(tmp_path) -> None:
    gen = PixelAttributeGenerator(w_dim=3, num_ws=2)  # image channel i = w_i
    dirs = _directions()
    path = tmp_path / "pairs.h5"
    summary = make_pairs(gen, dirs, path, num_pairs=50, seed=7, batch=16, truncation_psi=0.3)
    assert summary["kept_indices"] == [0, 1, 3] and summary["removed_indices"] == [2]
    assert sum(summary["label_counts"]) == 50
    with h5py.File(path, "r") as f:
        orig, edit, labels = f["images_orig"][:], f["images_edit"][:], f["labels"][:]
        assert orig.dtype == np.uint8 and orig.shape == (50, 1, 1, 3)
        assert labels.dtype == np.int64 and set(labels.tolist()) <= {0, 1, 2}
        assert f["images_orig"].chunks is not None
    attrs = read_pair_attrs(path)
    assert attrs["kept_indices"] == [0, 1, 3] and attrs["num_labels"] == 3
    assert attrs["scales"] == pytest.approx([0.2, 0.3, 0.4])
    assert attrs["seed"] == 7 and attrs["num_pairs"] == 50
    # the pixel that changes is the kept direction's axis; change = 2 * s * 127.5 (+- rounding)
    axis = np.array([0, 1, 2])[labels]
    diff = edit.astype(int) - orig.astype(int)
    changed = diff.reshape(50, 3)
    expected = 2 * np.array([0.2, 0.3, 0.4])[labels] * 127.5
    inside = np.abs(orig.reshape(50, 3)[np.arange(50), axis].astype(int) - 128) < 60
    assert inside.sum() > 30
    assert np.all(np.abs(changed[np.arange(50), axis] - expected)[inside] <= 1)
    others = np.ones((50, 3), bool)
    others[np.arange(50), axis] = False
    assert np.all(changed[others] == 0)
    assert not list(tmp_path.glob(".*.tmp"))


def test_removed_direction_never_sampled(tmp_path) -> None:
    gen = PixelAttributeGenerator(w_dim=3, num_ws=2)
    summary = make_pairs(gen, _directions(), tmp_path / "p.h5", num_pairs=300, seed=0, batch=64,
                         keep=[1, 3])
    with h5py.File(tmp_path / "p.h5", "r") as f:
        labels = f["labels"][:]
        diff = f["images_edit"][:].astype(int) - f["images_orig"][:].astype(int)
    assert set(labels.tolist()) == {0, 1}
    assert summary["removed_indices"] == [0, 2]
    assert np.all(diff[..., 0] == 0)  # direction 0 (and its duplicate 2) never edited


def test_pairs_deterministic_given_seed(tmp_path) -> None:
    gen = PixelAttributeGenerator(w_dim=3, num_ws=2)
    for name, seed in (("a.h5", 1), ("b.h5", 1), ("c.h5", 2)):
        make_pairs(gen, _directions(), tmp_path / name, num_pairs=40, seed=seed, batch=15)
    data = {}
    for name in ("a.h5", "b.h5", "c.h5"):
        with h5py.File(tmp_path / name, "r") as f:
            data[name] = (f["images_orig"][:], f["labels"][:])
    assert all(np.array_equal(x, y) for x, y in zip(data["a.h5"], data["b.h5"], strict=True))
    assert not np.array_equal(data["a.h5"][1], data["c.h5"][1])


def test_bad_arguments(tmp_path) -> None:
    gen = PixelAttributeGenerator(w_dim=3, num_ws=2)
    with pytest.raises(ValueError, match="keep"):
        make_pairs(gen, _directions(), tmp_path / "x.h5", num_pairs=4, seed=0, keep=[0, 9])
    with pytest.raises(ValueError, match="num_pairs"):
        make_pairs(gen, _directions(), tmp_path / "x.h5", num_pairs=0, seed=0)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        read_pair_attrs(tmp_path / "missing.h5")
    assert not (tmp_path / "x.h5").exists()
