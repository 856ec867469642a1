"""A user's predictor (exported program or TorchScript, with its JSON): the shipped shapes3d
predictor exported to that format scores exactly as the native one, a bundle takes it by
variable, and bad files are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import bench.planning.bundles as bundles
from bench.flows.directions import attribute_predict
from bench.planning.bundles import load_bundle
from core.errors import BenchError, DataError
from core.inputs import InputError
from metrics.discovery import DiscoveryConfig, score_matrix
from models.directions import Directions
from models.oracle import OracleConfig, OracleGenerator
from models.predictor import SHAPES3D_PREDICTOR, load_any_predictor, load_predictor
from models.user_predictor import (
    PredictorFormatError,
    UserPredictor,
    export_predictor,
    load_user_predictor,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Concatenated(nn.Module):
    """The native predictor's logits of every factor side by side (the format's one tensor)."""

    def __init__(self, predictor: nn.Module) -> None:
        super().__init__()
        self.predictor = predictor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.predictor(images), dim=1)


def export_shipped(path):
    native = load_predictor(SHAPES3D_PREDICTOR)
    outputs = [{"name": name, "kind": "classes", "classes": size}
               for name, size in zip(native.factor_names, native.factor_sizes, strict=True)]
    export_predictor(Concatenated(native), path, resolution=64, outputs=outputs)
    return native


def test_exported_shipped_predictor_scores_as_the_native_one(tmp_path):
    native = export_shipped(tmp_path / "shapes3d.pt")
    scripted = load_any_predictor(tmp_path / "shapes3d.pt")
    assert isinstance(scripted, UserPredictor)
    assert scripted.factor_names == native.factor_names
    assert scripted.factor_sizes == native.factor_sizes
    images = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for mine, theirs in zip(scripted.predict_proba(images), native.predict_proba(images),
                            strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-6)
    # the discovery metrics' R matrix on the oracle's exact directions, both predictors
    gt = __import__("datasets").load_ground_truth("shapes3d-synth")
    generator = OracleGenerator(OracleConfig(), gt).eval()
    directions = Directions.from_w(generator.true_directions()[:3], num_ws=generator.num_ws,
                                   scale=torch.full((3,), 2.0))
    config = DiscoveryConfig(num_samples=12, batch_size=6, num_directions=3)
    r_native = score_matrix(generator, directions, attribute_predict(native)[0], config)
    r_scripted = score_matrix(generator, directions, attribute_predict(scripted)[0], config)
    np.testing.assert_allclose(r_scripted["absdiff"], r_native["absdiff"], rtol=0, atol=1e-6)
    assert r_native["absdiff"].argmax(axis=1).tolist() == [0, 1, 2]  # the known answer holds


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_binary_and_score_outputs_and_input_preparation(tmp_path, suffix):
    class Probe(nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            mean = images.mean(dim=(1, 2, 3))
            return torch.stack([mean, 2 * mean], dim=1)

    path = export_predictor(Probe(), tmp_path / f"probe{suffix}", resolution=4,
                            value_range=(0.0, 1.0), mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5],
                            outputs=[{"name": "smiling", "kind": "binary"},
                                     {"name": "age", "kind": "score"}])
    predictor = load_user_predictor(path)
    images = torch.full((2, 3, 8, 8), 0.5)  # [-1, 1] -> [0, 1] is 0.75 -> normalised 0.5
    smiling, age = predictor.predict_proba(images)
    logit = torch.tensor(0.5)
    expected = torch.softmax(torch.stack([logit, -logit]), dim=0)
    torch.testing.assert_close(smiling, expected.expand(2, 2))
    torch.testing.assert_close(age, torch.full((2, 1), 1.0))
    assert predictor.factor_sizes == (2, 1)


def test_shapes3d_bundle_takes_a_predictor_by_variable(tmp_path, monkeypatch):
    export_shipped(tmp_path / "mine.pt")
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.delenv(bundles.SHAPES3D_GENERATOR_ENV, raising=False)
    shipped = load_bundle("shapes3d")
    monkeypatch.setenv(bundles.SHAPES3D_PREDICTOR_ENV, str(tmp_path / "mine.pt"))
    chosen = load_bundle("shapes3d")
    assert isinstance(chosen.predictor, UserPredictor)
    assert chosen.identity["predictor"]["file"] == "mine.pt"
    assert len(chosen.identity["predictor"]["description_sha256"]) == 64
    assert chosen.identity != shipped.identity  # its cells get their own ids
    assert "TorchScript predictor of 6 attribute(s)" in dict(chosen.sources())["predictor"]


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda info: info.update(version=9), "this release reads version 1"),
    (lambda info: info["outputs"].append({"name": "extra", "kind": "score"}),
     "returned shape (1, 57), its JSON declares 58 output column(s)"),
    (lambda info: info["input"].update(resolution=32), "fails on a 32-px image"),
])
def test_a_description_that_does_not_match_is_one_line(tmp_path, change, fragment):
    export_shipped(tmp_path / "p.pt")
    meta = tmp_path / "p.json"
    info = json.loads(meta.read_text(encoding="utf-8"))
    change(info)
    meta.write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(PredictorFormatError) as err:
        load_any_predictor(tmp_path / "p.pt")
    assert fragment in str(err.value) and "\n" not in str(err.value)
    info["format"] = "other"
    meta.write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(PredictorFormatError, match="not a predictor description"):
        load_user_predictor(tmp_path / "p.pt")


def test_a_bad_predictor_by_variable_stops_planning(tmp_path, monkeypatch):
    export_shipped(tmp_path / "p.pt")
    (tmp_path / "p.pt").write_bytes(b"not torchscript")
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.setenv(bundles.SHAPES3D_PREDICTOR_ENV, str(tmp_path / "p.pt"))
    with pytest.raises(InputError, match=r"\$BENCH_SHAPES3D_PREDICTOR: predictor .*p.pt: not a "
                                         "TorchScript file"):
        load_bundle("shapes3d").sources()


def test_a_damaged_suite_predictor_is_a_data_error(tmp_path, monkeypatch):
    """The loaders' file checks are DataErrors (so ValueErrors); planning names the variable."""
    weights = tmp_path / "p.safetensors"
    native = load_predictor(SHAPES3D_PREDICTOR)
    weights.write_bytes(b"not safetensors" * 8)
    (tmp_path / "p.json").write_text(json.dumps({"architecture": native.arch.to_dict()}),
                                     encoding="utf-8")
    with pytest.raises(DataError, match=r"p.safetensors: not a readable .safetensors file"):
        load_any_predictor(weights)
    assert issubclass(PredictorFormatError, DataError) and issubclass(DataError, ValueError)
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.setenv(bundles.SHAPES3D_PREDICTOR_ENV, str(weights))
    with pytest.raises(InputError, match=r"^\$BENCH_SHAPES3D_PREDICTOR: attribute predictor "
                                         r".*p.safetensors: not a readable .safetensors file"):
        load_bundle("shapes3d").sources()


def test_a_bug_in_a_predictor_loader_is_not_an_input_error(tmp_path, monkeypatch):
    """A plain ValueError from the loader is a bug: planning lets it through with its traceback
    instead of printing it as a damaged file."""
    def broken(path: object) -> None:
        raise ValueError("internal: shapes disagree")

    export_shipped(tmp_path / "p.pt")
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.setenv(bundles.SHAPES3D_PREDICTOR_ENV, str(tmp_path / "p.pt"))
    monkeypatch.setattr(bundles, "load_any_predictor", broken)
    with pytest.raises(ValueError, match="^internal: shapes disagree$") as bug:
        load_bundle("shapes3d").sources()
    assert not isinstance(bug.value, BenchError)
