"""Attribute predictor: architecture, I/O, the shipped asset's accuracy, the training command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.predictor import (
    SHAPES3D_PREDICTOR,
    PredictorArchitecture,
    accuracy_per_factor,
    build_predictor,
    load_predictor,
    load_shapes3d_predictor,
    save_predictor,
    uint8_to_input,
)

ARCH = PredictorArchitecture(("a", "b"), (3, 5))


@pytest.fixture(scope="module")
def ground_truth():
    from datasets import load_ground_truth

    torch.set_num_threads(1)
    return load_ground_truth("shapes3d-synth")


def test_outputs_and_shapes():
    model = build_predictor(ARCH, seed=0).eval()
    images = torch.rand(4, 3, 64, 64) * 2 - 1
    logits = model(images)
    assert [tuple(x.shape) for x in logits] == [(4, 3), (4, 5)]
    probs = model.predict_proba(images)
    for p in probs:
        torch.testing.assert_close(p.sum(1), torch.ones(4))
    assert model.features(images).shape == (4, 256)
    assert model.predict(images).shape == (4, 2)
    torch.testing.assert_close(build_predictor(ARCH, seed=0)(images)[0], logits[0])


def test_uint8_to_input_range():
    images = np.zeros((2, 64, 64, 3), np.uint8)
    images[1] = 255
    x = uint8_to_input(images)
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32
    assert float(x[0].max()) == -1.0 and float(x[1].min()) == 1.0
    with pytest.raises(ValueError, match="uint8"):
        uint8_to_input(images.astype(np.float32))


def test_bad_inputs_raise_clear_errors(tmp_path):
    model = build_predictor(ARCH, seed=0)
    with pytest.raises(ValueError, match="NCHW"):
        model(torch.zeros(2, 64, 64, 3))
    with pytest.raises(ValueError, match="uint8_to_input"):
        model(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="equal length"):
        PredictorArchitecture(("a",), (3, 4))
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_predictor(tmp_path / "missing.safetensors")


def test_save_load_roundtrip(tmp_path):
    model = build_predictor(ARCH, seed=1).eval()
    path = tmp_path / "p.safetensors"
    save_predictor(model, path, {"note": "x"})
    loaded = load_predictor(path)
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    for a, b in zip(model(images), loaded(images), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert loaded.info["note"] == "x" and loaded.factor_names == ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.safetensors"]
    other = build_predictor(PredictorArchitecture(("a", "b"), (3, 6)), seed=0)
    save_predictor(other, tmp_path / "q.safetensors", {})
    (tmp_path / "q.json").write_text((tmp_path / "p.json").read_text())
    with pytest.raises(ValueError, match="do not match"):
        load_predictor(tmp_path / "q.safetensors")


def test_shipped_predictor_asset():
    assert SHAPES3D_PREDICTOR.stat().st_size < 2_000_000
    info = json.loads(SHAPES3D_PREDICTOR.with_suffix(".json").read_text())
    heldout = info["heldout"]
    assert heldout["n"] == 10000
    assert min(heldout["accuracy"].values()) > 0.98, heldout["accuracy"]
    # the command that trained it, recorded when the training code lived in models/
    assert "python -m models.train_predictor" in info["training"]["command"]



def test_shipped_predictor_classifies_fresh_renders(ground_truth):
    model = load_shapes3d_predictor()
    assert model.factor_names == ground_truth.factor_names
    factors, images = ground_truth.sample(400, np.random.default_rng(12345))
    accuracy = accuracy_per_factor(model, uint8_to_input(images), factors)
    assert min(accuracy) > 0.95, accuracy
    # permuted labels: chance level, so the figure above is not an artefact
    shuffled = factors[np.random.default_rng(0).permutation(len(factors))]
    assert max(accuracy_per_factor(model, uint8_to_input(images), shuffled)) < 0.6


def test_training_command_runs_and_writes_an_asset(tmp_path, ground_truth):
    from training.train_predictor import main

    out = tmp_path / "tiny.safetensors"
    assert main(["--out", str(out), "--max-steps", "3", "--eval-every", "3", "--batch", "8",
                 "--val-n", "16", "--test-n", "16", "--min-steps", "1"]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["training"]["steps"] == 3 and info["heldout"]["n"] == 16
    assert info["training"]["command"].startswith("python -m training.train_predictor --out ")
    assert set(info["heldout"]["accuracy"]) == set(ground_truth.factor_names)
    assert load_predictor(out).factor_sizes == ground_truth.factor_sizes


def test_outlier_images_and_uniform_target_loss():
    from training.train_predictor import outlier_images, uniform_target_loss

    rendered = torch.rand(5, 3, 64, 64) * 2 - 1
    out = outlier_images(rendered, 9, torch.Generator().manual_seed(0))
    assert out.shape == (9, 3, 64, 64) and out.min() >= -1 and out.max() <= 1
    again = outlier_images(rendered, 9, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again, rtol=0, atol=0)
    # patch-shuffled renders keep the pixel multiset of one source image
    shuffled = out[2].flatten().sort().values
    assert any(torch.equal(shuffled, r.flatten().sort().values) for r in rendered)
    uniform = [torch.zeros(4, 10), torch.zeros(4, 3)]
    expected = float(np.log(10) + np.log(3))
    assert float(uniform_target_loss(uniform)) == pytest.approx(expected, rel=1e-6)
    peaked = [torch.tensor([[10.0, 0, 0]])]
    assert float(uniform_target_loss(peaked)) > np.log(3) + 1
