"""Directions: W -> W+ broadcasting, edits, save/load round-trip, the random baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from toy_generators import LinearToyGenerator, bundle_of

from methods.base import method_spec
from methods.random_dirs import run_random
from models.directions import Directions, orient_signs


def test_from_w_broadcasts_only_to_selected_rows() -> None:
    w = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    d = Directions.from_w(w, num_ws=4, layers=[1, 3])
    assert d.vectors.shape == (2, 4, 3)
    assert torch.equal(d.vectors[:, 1], w) and torch.equal(d.vectors[:, 3], w)
    assert torch.count_nonzero(d.vectors[:, [0, 2]]) == 0
    assert torch.equal(d.scale, torch.ones(2))


def test_apply_moves_by_amount_times_scale() -> None:
    d = Directions.from_w(torch.eye(3), num_ws=2, scale=torch.tensor([1.0, 2.0, 0.5]))
    ws = torch.zeros(4, 2, 3)
    out = d.apply(ws, 1, 3.0)
    assert torch.allclose(out[:, :, 1], torch.full((4, 2), 6.0))
    assert torch.count_nonzero(out[:, :, [0, 2]]) == 0
    per_sample = d.apply(ws, 2, torch.tensor([1.0, -1.0, 0.0, 2.0]))
    assert torch.allclose(per_sample[:, 0, 2], torch.tensor([0.5, -0.5, 0.0, 1.0]))


def test_bad_inputs_raise_clear_errors() -> None:
    d = Directions.from_w(torch.eye(3), num_ws=2)
    with pytest.raises(ValueError, match="W\\+"):
        d.apply(torch.zeros(2, 3, 3), 0, 1.0)
    with pytest.raises(ValueError, match="out of range"):
        d.apply(torch.zeros(2, 2, 3), 3, 1.0)
    with pytest.raises(ValueError, match="out of range"):
        Directions.from_w(torch.eye(3), num_ws=2, layers=[2])
    with pytest.raises(ValueError, match="NaN"):
        Directions(torch.full((1, 2, 3), float("nan")), torch.ones(1))
    with pytest.raises(ValueError, match="one entry per direction"):
        Directions(torch.zeros(2, 2, 3), torch.ones(3))


def test_save_load_round_trip(tmp_path) -> None:
    rng = torch.Generator().manual_seed(0)
    d = Directions(torch.randn(5, 3, 4, generator=rng), torch.rand(5, generator=rng) + 0.1,
                   {"method": "x", "names": ["a", "b", "c", "d", "e"], "ratio": (0.5, 0.25)})
    d.save(tmp_path / "dirs")
    back = Directions.load(tmp_path / "dirs")
    assert torch.equal(back.vectors, d.vectors) and torch.equal(back.scale, d.scale)
    assert back.meta["names"] == d.meta["names"] and back.meta["ratio"] == [0.5, 0.25]
    assert not [p for p in (tmp_path / "dirs").iterdir() if p.name.endswith(".tmp")]
    meta = json.loads((tmp_path / "dirs" / "directions.json").read_text())
    assert meta["format_version"] == 1


def test_load_missing_names_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="directions.safetensors"):
        Directions.load(tmp_path)


def test_orient_signs_is_deterministic_and_sign_invariant() -> None:
    v = torch.tensor([[0.1, -0.9, 0.2], [0.5, 0.1, 0.0]])
    assert torch.equal(orient_signs(v), orient_signs(-v))
    assert orient_signs(v)[0, 1] > 0


def test_random_directions_are_unit_seeded_and_near_chance() -> None:
    gen = LinearToyGenerator(w_dim=64, num_ws=2, stds=[8.0, 6.0, 4.0] + [1.0] * 61)
    config = method_spec("random").config("paper")
    a = run_random(bundle_of(gen), config, seed=3)
    b = run_random(bundle_of(gen), config, seed=3)
    c = run_random(bundle_of(gen), config, seed=4)
    assert a.vectors.shape == (30, 2, 64)
    assert torch.equal(a.vectors, b.vectors) and not torch.equal(a.vectors, c.vectors)
    assert torch.allclose(a.vectors[:, 0].norm(dim=1), torch.ones(30), atol=1e-5)
    # |cos| to the true principal directions ~ sqrt(2 / (pi * d)) = 0.0997 for d = 64
    cos = (a.vectors[:, 0] @ gen.basis[:, :3]).abs()
    assert 0.04 < float(cos.mean()) < 0.2
    assert a.meta["method"] == "random" and len(a.meta["names"]) == 30


def test_method_profiles_resolve() -> None:
    for name in ("random", "ganspace", "sefa"):
        spec = method_spec(name)
        assert spec.kind == "directions" and spec.requires == ("generator",)
        quick = spec.config("quick")
        assert quick.num_directions == 10
        assert spec.load_output == Directions.load
    assert method_spec("ganspace").config("paper").num_samples == 1_000_000
    assert np.isclose(method_spec("ganspace").config("quick").num_samples, 20_000)
