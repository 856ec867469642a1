"""The directions flow wired end to end on a toy generator, predictor and stand-in group VAE."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from toy_generators import LinearToyGenerator

import bench.flows.directions as flow
from bench.grid import Cell
from bench.results.context import CellContext
from bench.results.store import ResultStore
from methods.base import method_spec
from metrics.discovery import discovery_scores
from models.bundle import Bundle, MetricsProvider


class ChannelPredictor:
    """Three 2-class 'factors': is the mean of colour channel c above 0 (soft)."""

    factor_names = ("red", "green", "blue")

    def predict_proba(self, images: torch.Tensor) -> list[torch.Tensor]:
        means = images.mean(dim=(2, 3))
        probs = torch.sigmoid(4 * means)
        return [torch.stack([p, 1 - p], dim=1) for p in probs.T]


class ToyGroundTruth:
    factor_names = ("a",)


@dataclass(frozen=True)
class FakeVAEConfig:
    steps: int = 3


class FakeEncoder:
    def __init__(self, num_latents: int) -> None:
        self.num_latents = num_latents

    def represent(self, observations: np.ndarray) -> np.ndarray:
        return np.zeros((len(observations), self.num_latents))

    def save(self, directory: Path) -> None:
        (Path(directory) / "enc.json").write_text(json.dumps({"n": self.num_latents}))


def _fake_group_vae(calls: list) -> SimpleNamespace:
    def train(pairs, num_latents, config, seed, progress=None):
        calls.append((pairs, num_latents, config, seed))
        with h5py.File(pairs, "r") as f:
            assert int(f["labels"][:].max()) < num_latents
        return FakeEncoder(num_latents)

    def load(directory):
        return FakeEncoder(json.loads((Path(directory) / "enc.json").read_text())["n"])

    return SimpleNamespace(group_vae_config=lambda profile: FakeVAEConfig(),
                           train_group_vae=train, load_encoder=load)


class FakeMetrics:
    @staticmethod
    def metric_settings(profile: str) -> dict:
        return {"n": 1}

    @staticmethod
    def representation_metrics(data, represent, rng, profile) -> dict:
        return {"mig": 0.25}


def _context(tmp_path: Path, method: str, bundle: Bundle,
             metrics: MetricsProvider | None = None) -> CellContext:
    cell = Cell(method, bundle.name, 0, "quick")
    store = ResultStore(tmp_path / "results")
    run_dir = tmp_path / "results" / "runs" / "cell"
    run_dir.mkdir(parents=True)
    return CellContext(cell=cell, bundle=bundle, config=method_spec(method).config("quick"),
                       store=store, artifacts_dir=run_dir, stage_versions=flow.STAGE_VERSIONS,
                       metrics=metrics)


@pytest.fixture
def small_settings(monkeypatch):
    from metrics.discovery import CalibrationConfig, DiscoveryConfig

    small = {"discovery": DiscoveryConfig(num_samples=8, num_directions=4, batch_size=8),
             "calibration": CalibrationConfig(num_samples=4, spread_samples=200),
             "num_pairs": 40, "pair_batch": 16, "traversal_rows": 4, "traversal_steps": 3,
             "traversal_seeds": 2}
    monkeypatch.setitem(flow.FLOW_PROFILES, "quick", small)
    return flow.flow_settings("quick")


def _generator() -> LinearToyGenerator:
    return LinearToyGenerator(w_dim=8, num_ws=2, resolution=8, img_channels=3,
                              stds=[3, 2, 1, 1, 1, 1, 1, 1], seed=4)


def test_flow_without_ground_truth_scores_and_draws(tmp_path, small_settings) -> None:
    gen = _generator()
    bundle = Bundle("toy-gan", load_generator=lambda: gen, load_predictor=ChannelPredictor,
                    identity={"toy": 1})
    ctx = _context(tmp_path, "ganspace", bundle)
    metrics = flow.run_directions_flow(ctx)
    assert {"disentanglement_score", "attribute_count", "disentanglement_score_meandiff",
            "edit_w_plus_displacement", "edit_capped_fraction"} <= set(metrics)
    assert "mig" not in metrics  # no ground truth: no distillation
    assert [s.name for s in ctx.stages] == ["discover", "calibrate", "discovery-metrics"]
    for rel in (*ctx.artifacts["figures"].values(), *ctx.artifacts["discovery"].values()):
        assert (ctx.store.root / rel).is_file()
    r = np.load(ctx.artifacts_dir / "R_absdiff.npy")
    assert r.shape == (4, 3)
    # the reported scores are the ones of the saved R matrix (their values: the test below)
    assert metrics["disentanglement_score"] == discovery_scores(r)["disentanglement_score"]
    # second run: every stage served from the cache, same numbers
    ctx2 = _context(tmp_path / "again", "ganspace", bundle)
    ctx2.store = ctx.store
    assert flow.run_directions_flow(ctx2) == metrics
    assert all(s.cache_hit for s in ctx2.stages)


def test_bundle_protocol_sets_the_flow_settings_and_enters_the_metric_settings(
        tmp_path, small_settings) -> None:
    """A bundle's own values for a profile (ffhq's paper protocol) replace the profile's:
    sub-fields of discovery one by one, a fixed edit scale instead of the calibrated one. A
    bundle without a protocol keeps the metric settings (cell ids) it had before the field."""
    protocol = {"discovery": {"num_samples": 6, "truncation_psi": 0.7}, "edit_scale": 0.5}
    settings = flow.flow_settings("quick", protocol)
    assert settings.discovery.num_samples == 6 and settings.discovery.truncation_psi == 0.7
    assert settings.discovery.num_directions == 4  # the profile's, not named by the protocol
    assert settings.edit_scale == 0.5 and flow.flow_settings("quick").edit_scale is None
    assert "edit_scale" not in flow.metric_settings("quick")["directions_flow"]
    assert flow.metric_settings("quick", protocol)["directions_flow"]["edit_scale"] == 0.5
    with pytest.raises(ValueError, match="unknown config field.*num_sampels.*did you mean"):
        flow.flow_settings("quick", {"discovery": {"num_sampels": 6}})
    gen = _generator()
    bundle = Bundle("toy-gan", load_generator=lambda: gen, load_predictor=ChannelPredictor,
                    identity={"toy": 1}, protocol={"quick": protocol})
    ctx = _context(tmp_path, "random", bundle)
    metrics = flow.run_directions_flow(ctx)
    info = json.loads((ctx.artifacts_dir / "R.json").read_text())
    assert info["discovery_config"]["num_samples"] == 6
    assert metrics["edit_capped_fraction"] == 0.0
    # random unit W vectors on 2 W+ rows at rms 0.5 each: displacement 0.5 * sqrt(8 * 2)
    assert metrics["edit_w_plus_displacement"] == pytest.approx(2.0, rel=1e-5)
    plain = _context(tmp_path / "plain", "random", Bundle(
        "toy-gan", load_generator=lambda: gen, load_predictor=ChannelPredictor,
        identity={"toy": 1}))
    plain.store = ctx.store
    flow.run_directions_flow(plain)  # the same discover stage, another calibration
    assert [s.cache_hit for s in plain.stages] == [True, False, False]


def test_flow_with_ground_truth_distills(tmp_path, small_settings, monkeypatch) -> None:
    """Wiring only (stand-in group VAE and metrics); the real distillation path has its known
    answer in test_distill_oracle.py."""
    calls: list = []
    monkeypatch.setattr(flow, "group_vae", _fake_group_vae(calls))
    gen = _generator()
    bundle = Bundle("toy-gan-gt", ground_truth=ToyGroundTruth(), load_generator=lambda: gen,
                    identity={"toy": 2})
    ctx = _context(tmp_path, "random", bundle, metrics=FakeMetrics)
    metrics = flow.run_directions_flow(ctx)
    assert metrics["mig"] == 0.25 and metrics["pairs_kept_fraction"] == 1.0
    assert [s.name for s in ctx.stages] == ["discover", "calibrate", "pairs", "group-vae",
                                            "representation-metrics"]
    (path, num_latents, _, _), = calls
    assert num_latents == 4 and Path(path).name == "pairs.h5"
    assert "traversal" in ctx.artifacts["figures"] and "discovery" not in ctx.artifacts
    settings = flow.metric_settings("quick", None, FakeMetrics)
    assert settings["directions_flow"]["num_pairs"] == 40
    assert settings["representation"] == {"n": 1}


def _channel_generator() -> LinearToyGenerator:
    """W's three largest principal axes each drive one colour channel, the rest no pixel: the
    true directions are known, so the flow's discovery score has a known answer."""
    gen = LinearToyGenerator(w_dim=6, num_ws=1, resolution=8, img_channels=3,
                             stds=[3.0, 2.0, 1.5, 0.3, 0.3, 0.3], seed=5)
    gen.basis = torch.eye(6)
    matrix = torch.zeros(3 * 8 * 8, 6)
    for c in range(3):
        matrix[c * 64:(c + 1) * 64, c] = 1.0
    gen.synthesis_matrix = matrix
    return gen


@pytest.mark.parametrize(("method", "low", "high"), [("ganspace", 0.95, 1.0),
                                                      ("random", 0.0, 0.8)])
def test_flow_scores_known_directions(tmp_path, small_settings, monkeypatch, method, low,
                                      high) -> None:
    """Through the real discover, calibrate and score stages: GANSpace recovers the three
    channel axes (each edit moves one predictor factor: score ~1, all three attributes), random
    directions move several channels at once and score lower."""
    monkeypatch.setitem(flow.FLOW_PROFILES["quick"], "discovery",
                        flow.FLOW_PROFILES["quick"]["discovery"].__class__(
                            num_samples=16, num_directions=3, batch_size=16))
    gen = _channel_generator()
    bundle = Bundle(f"toy-channels-{method}", load_generator=lambda: gen,
                    load_predictor=ChannelPredictor, identity={"toy": 3})
    metrics = flow.run_directions_flow(_context(tmp_path, method, bundle))
    assert low <= metrics["disentanglement_score"] <= high
    if method == "ganspace":
        assert metrics["attribute_count"] == 3.0
