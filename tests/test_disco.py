"""DisCo: the reference's defaults, the loss's parts by hand, the encoder's layout, determinism,
exact resume, one training shared by ``disco`` and ``disco-encoder``, and the known answer on
shapes3d-oracle."""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from toy_generators import LinearToyGenerator

import bench.flows.directions as directions_flow
import bench.flows.representation as representation_flow
from bench.flows.base import method_stage_versions
from bench.grid import Cell
from bench.results.context import CellContext
from bench.results.store import ResultStore
from methods.base import METHODS, method_spec, register_method
from methods.disco import (
    DisCoConfig,
    DisCoEncoder,
    DisCoEncoderNet,
    DisCoTrainer,
    code_entropy,
    contrast_labels,
    contrast_logits,
    run_disco,
)
from models.bundle import Bundle
from models.directions import Directions
from models.oracle import load_oracle_generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"num_directions": 3, "code_dim": 4, "encoder_width": 2, "batch_size": 2,
        "num_positives": 2, "num_negatives": 3, "steps": 4, "checkpoint_every": 2}


def _toy_generator() -> LinearToyGenerator:
    return LinearToyGenerator(w_dim=6, num_ws=2, resolution=64, img_channels=3, seed=2)


# -- configuration and registration ----------------------------------------------------------


def test_paper_profile_is_the_reference_train_script() -> None:
    """xrenaa/DisCo train.py at a3ceda76: --dim 64, --z_dim 64, --B 32, --N 32, --K 64, --lr
    1e-4, --max_iter 7e4, --thresh 0.95, flipping and entropy on, shift_scale 6, min_shift 0.5;
    one Adam with torch's default betas and eps; the encoder is Baseline_Encoder (64 channels
    first). DisCo's own fields first, then AdamSettings' (``methods.vae_common``)."""
    config = method_spec("disco").config("paper")
    assert asdict(config) == asdict(DisCoConfig())
    assert list(asdict(config).items()) == [
        ("num_directions", 64), ("code_dim", 64), ("encoder_width", 64), ("batch_size", 32),
        ("num_positives", 32), ("num_negatives", 64), ("shift_scale", 6.0), ("min_shift", 0.5),
        ("steps", 70_000), ("flip_threshold", 0.95), ("flipping", True),
        ("entropy_weight", 1.0), ("checkpoint_every", 1000), ("lr", 1e-4),
        ("adam_betas", (0.9, 0.999)), ("adam_eps", 1e-8)]
    trainer = DisCoTrainer(_toy_generator(), DisCoConfig(**TINY), 0)
    defaults = trainer.optimizer.defaults
    assert (defaults["lr"], defaults["betas"], defaults["eps"]) == (1e-4, (0.9, 0.999), 1e-8)
    assert len(trainer.optimizer.param_groups) == 1  # navigator and encoder under one Adam
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == (
        len(list(trainer.navigator.parameters())) + len(list(trainer.encoder.net.parameters())))


def test_quick_profile_is_sized_for_two_cores() -> None:
    config = method_spec("disco").config("quick")
    assert (config.num_directions, config.code_dim, config.encoder_width) == (10, 10, 16)
    assert (config.batch_size, config.num_positives, config.num_negatives) == (8, 8, 16)
    assert (config.steps, config.lr, config.shift_scale) == (600, 1e-3, 3.0)
    assert (config.flip_threshold, config.flipping, config.entropy_weight) == (0.95, True, 1.0)


def test_registered_as_two_methods_sharing_one_training() -> None:
    directions, encoder = method_spec("disco"), method_spec("disco-encoder")
    assert (directions.kind, encoder.kind) == ("directions", "representation")
    assert directions.resumable and directions.requires == ("generator",)
    assert encoder.requires == ("generator", "ground_truth")
    assert encoder.trained_by == "disco" and directions.trained_by is None
    assert encoder.config("quick") == directions.config("quick")
    assert directions.default is False and encoder.default is False
    # the encoder's cells run disco's discover stage: its version is part of their ids
    assert method_stage_versions("representation", "disco") == {
        **representation_flow.STAGE_VERSIONS,
        "discover": directions_flow.STAGE_VERSIONS["discover"]}
    assert method_stage_versions("representation") == representation_flow.STAGE_VERSIONS


def test_trained_by_must_pair_with_a_directions_method_of_the_same_config() -> None:
    def register(name: str, **kwargs: object) -> None:
        register_method(name, description="x", kind=kwargs.pop("kind", "representation"),
                        **kwargs)(lambda *a, **k: None)

    quick = {"quick": method_spec("disco").profiles["quick"]}

    with pytest.raises(ValueError, match="representation methods"):
        register("bad-1", kind="directions", config_cls=DisCoConfig, trained_by="disco")
    with pytest.raises(ValueError, match="not a registered method"):
        register("bad-2", config_cls=DisCoConfig, trained_by="no-such")
    with pytest.raises(ValueError, match="expected a directions method"):
        register("bad-3", config_cls=DisCoConfig, trained_by="beta-vae")
    with pytest.raises(ValueError, match="config class and profiles"):
        register("bad-4", config_cls=DisCoConfig, trained_by="disco")  # no quick profile
    with pytest.raises(ValueError, match="needs a load_output"):
        register("bad-5", config_cls=DisCoConfig, profiles=quick, trained_by="disco")
    assert not any(f"bad-{i}" in METHODS for i in range(1, 6))


# -- the loss's parts -------------------------------------------------------------------------


def test_hard_negatives_above_the_threshold_get_their_logit_as_label() -> None:
    query = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    keys = torch.tensor([[0.0, 1.0]])
    queue = torch.tensor([[1.0, 0.0], [0.8, 0.6]])
    logits = contrast_logits(query, keys, queue)
    assert torch.allclose(logits, torch.tensor([[0.0, 1.0, 0.8], [0.8, 0.6, 0.96]]))
    flipped = contrast_labels(logits, 1, 0.95)
    # positives 1 (even the one below the threshold); the 0.96 negative flips to 0.96
    assert torch.allclose(flipped, torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.96]]))
    plain = contrast_labels(logits, 1, None)
    assert torch.equal(plain, torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))


def test_entropy_is_low_for_a_change_in_one_dimension() -> None:
    uniform = torch.full((1, 4), 0.5)
    assert float(code_entropy(uniform)) == pytest.approx(math.log(4), abs=1e-4)
    spread = code_entropy(torch.tensor([[0.5, 0.5, 0.5, 0.5]]))
    peaked = code_entropy(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    p = torch.softmax(torch.tensor([1.0, 0.0, 0.0, 0.0]), 0)
    assert float(peaked) == pytest.approx(float(-(p * torch.log(p + 1e-5)).sum()), abs=1e-6)
    assert float(peaked) < float(spread)


def test_shifts_are_gaussian_with_a_minimum_magnitude() -> None:
    trainer = DisCoTrainer(_toy_generator(), DisCoConfig(**{**TINY, "shift_scale": 6.0}), 0)
    shift = trainer.sample_shifts(4000)
    assert float(shift.abs().min()) >= 0.5
    assert float(shift.std()) == pytest.approx(6.0, rel=0.05)
    assert (shift < 0).any() and (shift > 0).any()


# -- the encoder ------------------------------------------------------------------------------


def test_paper_width_encoder_is_the_reference_layout() -> None:
    """Baseline_Encoder: conv 3->64 7x7/1, 64->128, 128->256, 256->256, 256->256 4x4/2, linear
    4096->256->256->z_dim; 5,081,472 weights and biases for z_dim 64 (counted by rule)."""
    net = DisCoEncoderNet(3, 64, 64)
    shapes = [tuple(p.shape) for n, p in net.named_parameters() if n.endswith("weight")]
    assert shapes == [(64, 3, 7, 7), (128, 64, 4, 4), (256, 128, 4, 4), (256, 256, 4, 4),
                      (256, 256, 4, 4), (256, 4096), (256, 256), (64, 256)]
    expected = (64 * 3 * 49 + 64) + (128 * 64 * 16 + 128) + (256 * 128 * 16 + 256) \
        + 2 * (256 * 256 * 16 + 256) + (4096 * 256 + 256) + (256 * 256 + 256) + (256 * 64 + 64)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_encoder_codes_do_not_depend_on_the_batch_and_survive_a_round_trip(tmp_path) -> None:
    encoder = DisCoEncoder.build(3, 5, 4, torch.Generator().manual_seed(0))
    images = np.random.default_rng(0).integers(0, 256, (70, 64, 64, 3), dtype=np.uint8)
    codes = encoder.represent(images)
    assert codes.shape == (70, 5) and codes.dtype == np.float32
    assert np.allclose(encoder.represent(images[5:9]), codes[5:9], atol=1e-5)
    # the reference's evaluate.py: images in [0, 1], NCHW
    x = torch.from_numpy(images[:2]).permute(0, 3, 1, 2).float() / 255
    assert np.allclose(encoder.net(x).detach().numpy(), codes[:2], atol=1e-5)
    encoder.save(tmp_path)
    assert np.array_equal(DisCoEncoder.load(tmp_path).represent(images), codes)
    with pytest.raises(ValueError, match="uint8"):
        encoder.represent(images.astype(np.float32))


# -- training: determinism, resume, one training for both methods -----------------------------


def test_training_is_deterministic_given_the_seed() -> None:
    bundle = SimpleNamespace(generator=_toy_generator())
    config = DisCoConfig(**TINY)
    first, again, other = (run_disco(bundle, config, seed) for seed in (0, 0, 1))
    assert torch.equal(first.vectors, again.vectors)
    assert first.meta["loss_history"] == again.meta["loss_history"]
    for a, b in zip(first.encoder.net.state_dict().values(),
                    again.encoder.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.vectors, other.vectors)
    unit = first.vectors[:, 0, :]  # one W vector on every W+ row, orthonormal
    assert torch.equal(first.vectors[:, 1, :], unit)
    assert torch.allclose(unit @ unit.T, torch.eye(3), atol=1e-5)


def test_training_resumes_exactly_after_a_kill(tmp_path) -> None:
    generator, config = _toy_generator(), DisCoConfig(**{**TINY, "steps": 12})

    def make() -> DisCoTrainer:
        return DisCoTrainer(generator, config, seed=3)

    straight = make()
    straight.train(12, None)
    killed = make()
    killed.train(6, tmp_path)  # "killed" after the checkpoint at step 6
    resumed = make()
    resumed.train(12, tmp_path)
    assert resumed.step_done == 12
    for module, other in zip(straight.modules().values(), resumed.modules().values(),
                             strict=True):
        for (name, a), b in zip(module.state_dict().items(), other.state_dict().values(),
                                strict=True):
            assert torch.equal(a, b), name
    assert straight.history == resumed.history


class _CountingMetrics:
    """A metrics provider that scores nothing but checks that the encoder encodes."""

    @staticmethod
    def metric_settings(profile: str) -> dict:
        return {"n": 1}

    @staticmethod
    def representation_metrics(data, represent, rng, profile) -> dict:
        codes = represent(np.zeros((3, 64, 64, 3), dtype=np.uint8))
        return {"mig": float(codes.shape[1])}


def _context(root: Path, method: str, bundle: Bundle, runs: int) -> CellContext:
    run_dir = root / "runs" / f"cell{runs}"
    run_dir.mkdir(parents=True)
    spec = method_spec(method)
    return CellContext(cell=Cell(method, bundle.name, 0, "quick"), bundle=bundle,
                       config=spec.config("quick", **TINY), store=ResultStore(root),
                       artifacts_dir=run_dir,
                       stage_versions=method_stage_versions(spec.kind, spec.trained_by))


def test_disco_and_disco_encoder_cells_share_one_training(tmp_path, monkeypatch) -> None:
    """The encoder cell runs disco's discover stage with the same key: after the directions
    cell's stage, it is a cache hit (and the other way round), and the folder holds both."""
    generator = _toy_generator()
    bundle = Bundle("toy-gan", ground_truth=SimpleNamespace(name="toy"),
                    load_generator=lambda: generator, identity={"toy": 2},
                    metrics=_CountingMetrics)
    calls: list[int] = []
    entry = METHODS.entry("disco")

    def counted(*args, **kwargs):
        calls.append(1)
        return entry.obj.run(*args, **kwargs)

    monkeypatch.setitem(METHODS._entries, "disco",
                        replace(entry, obj=replace(entry.obj, run=counted)))
    root = tmp_path / "results"
    first = _context(root, "disco", bundle, 0)
    found = directions_flow.discover_stage(first, "disco", Directions.load)
    assert found.num_directions == 3 and calls == [1]
    second = _context(root, "disco-encoder", bundle, 1)
    scores = representation_flow.run_representation_flow(second)
    assert scores == {"mig": 4.0}  # code_dim 4
    assert calls == [1]
    assert [(s.name, s.cache_hit) for s in second.stages] == [
        ("discover", True), ("representation-metrics", False)]
    assert second.stage_keys["discover"] == first.stage_keys["discover"]
    folder = root / "cache" / "discover" / first.stage_keys["discover"]
    assert {p.name for p in folder.iterdir()} >= {
        "directions.safetensors", "directions.json", "disco-encoder.safetensors",
        "disco-encoder.json"}


# -- the known answer on shapes3d-oracle ------------------------------------------------------


def _best_cos(directions: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    unit = torch.nn.functional.normalize(directions, dim=1)
    return (unit @ true.T).abs().max(dim=0).values


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="not met yet under the suite's pinned AVX2 kernels: 0.683 "
                   "against random 0.653 + 0.07 (docs/disco.md); strict, so a fix must update it")
def test_disco_recovers_the_factor_directions_better_than_random() -> None:
    """disco, quick profile with 6 directions and 300 steps, on shapes3d-oracle (w_dim 32, the
    six factor directions q_j; the 26 other W directions change nothing in the image, so DisCo's
    loss cannot see a direction's component along them and never removes it). Measured on each
    direction's projection onto span(q): the mean over factors of the best |cos| with q_j,
    against six random directions in that 6-d subspace (as for ContraFeat's PCA subspace).

    Measured (seed 0, one thread): outside pytest, on the host's native kernels, 0.748 (per
    factor 0.88, 0.88, 0.84, 0.38, 0.71, 0.79; 600 steps: 0.769); under the suite's pinned AVX2
    kernels (tests/conftest.py, as every bench command) 0.683 (0.67, 0.85, 0.76, 0.29, 0.74,
    0.80), 150 s on a loaded machine; random in the subspace 0.653 on average over these 50
    draws. The training's outcome depends on rounding, and the margin the thresholds below ask
    for is not reached with the pinned kernels: a known answer still to be earned (xfail).
    On an oracle with no null space (w_dim 6) the directions stay at the random level too, up
    to 1,000 steps and under the variants docs/disco.md lists: the quick budget is about 0.2 %
    of the reference's training.
    """
    generator = load_oracle_generator().requires_grad_(False)
    bundle = SimpleNamespace(name="shapes3d-oracle", generator=generator)
    config = method_spec("disco").config("quick", num_directions=6, steps=300)
    found = method_spec("disco").run(bundle, config, 0)
    true = generator.true_directions()
    in_span = (found.vectors.sum(dim=1) @ true.T) @ true
    learned = _best_cos(in_span, true)
    gen = torch.Generator().manual_seed(0)
    random = [float(_best_cos(torch.randn(6, 6, generator=gen) @ true, true).mean())
              for _ in range(50)]
    assert float(learned.mean()) >= sum(random) / len(random) + 0.07, (learned, random)
    assert float(learned[:3].min()) >= 0.8, learned  # the three hues
