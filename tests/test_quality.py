"""Known-answer tests of the generator-quality figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from core.hashing import file_sha256
from models.predictor import SHAPES3D_PREDICTOR, load_shapes3d_predictor
from training.quality import (
    at_resolution,
    frechet_distance,
    generator_quality,
    main,
    portable_path,
    total_variation,
    untrained_like,
)


class RenderedImagesGenerator:
    """Stand-in generator whose images are exact renderer images: z_k -> grid class by Φ(z_k)."""

    z_dim = 6

    def __init__(self, ground_truth) -> None:
        self.gt = ground_truth
        self.sizes = torch.tensor(ground_truth.factor_sizes)

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        return z

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        classes = (torch.special.ndtr(ws.double()) * self.sizes).long()
        classes = torch.minimum(classes, self.sizes - 1).numpy()
        images = torch.from_numpy(self.gt.observations(classes))
        return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0


class NoiseGenerator:
    """Stand-in generator of uniform-noise images (deterministic in the latents)."""

    z_dim = 4

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        return z

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        seed = int(ws.abs().sum() * 1e4) % (2**31)
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(len(ws), 3, 64, 64, generator=gen) * 2 - 1


@pytest.fixture(scope="module")
def predictor():
    torch.set_num_threads(1)
    return load_shapes3d_predictor()


@pytest.fixture(scope="module")
def ground_truth():
    from datasets import load_ground_truth

    return load_ground_truth("shapes3d-synth")


def test_total_variation_known_answers():
    assert total_variation([0.5, 0.5], [0.5, 0.5]) == 0
    assert total_variation([1.0, 0.0], [0.0, 1.0]) == 1
    assert total_variation([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(0.5)


def test_frechet_distance_known_answers():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3000, 5))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shifted = a + np.array([1.0, 2.0, 0.0, 0.0, 0.0])  # same covariance: FD = |shift|² = 5
    assert frechet_distance(a, shifted) == pytest.approx(5.0, rel=1e-6)
    scaled = a * 2.0  # μb = 2μa, Σb = 4Σa: FD = |μa|² + tr(Σa)·(1 + 4 − 2·2)
    expected = (a.mean(0) ** 2).sum() + np.trace(np.cov(a.T))
    assert frechet_distance(a, scaled) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, rng.normal(size=(3000, 5))) > 0
    with pytest.raises(ValueError, match="equal d"):
        frechet_distance(a, a[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((4, 5), np.nan), a)


def test_renderer_as_generator_scores_near_perfect(predictor, ground_truth):
    figures = generator_quality(RenderedImagesGenerator(ground_truth), predictor, ground_truth,
                                n=400, seed=0, batch=200, floor=False)
    assert set(figures["factors"]) == set(ground_truth.factor_names)
    for name, fig in figures["factors"].items():
        # TV between two independent samples of 400: about sqrt(K / (π·400)) <= 0.11
        assert fig["tv_distance"] < 0.2, name
        assert fig["mean_max_prob"] > 0.9, name
    ref = figures["reference"]  # two rendered sets: the same figures up to sampling noise
    assert ref["tv_distance"] < 0.2 and ref["mean_max_prob"] > 0.9
    assert figures["frechet_distance"] < 3 * ref["frechet_distance"]


class Rendered32Generator(RenderedImagesGenerator):
    """The renderer's images area-downsampled to 32 px: a perfect 32-px generator."""

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(super().synthesize(ws), 2)


def test_a_smaller_generator_is_compared_at_its_own_resolution(predictor, ground_truth):
    figures = generator_quality(Rendered32Generator(ground_truth), predictor, ground_truth,
                                n=400, seed=0, batch=200, floor=False)
    assert figures["compared_at_resolution"] == 32
    for name, fig in figures["factors"].items():
        assert fig["tv_distance"] < 0.2, name
    assert figures["frechet_distance"] < 3 * figures["reference"]["frechet_distance"]
    # what both sides go through: area-downsampling to 32, then nearest-upsampling to 64
    images = torch.rand(2, 3, 64, 64)
    seen = at_resolution(images, 32, 64)
    assert seen.shape == (2, 3, 64, 64)
    torch.testing.assert_close(seen[:, :, 1::2, 1::2], nn.functional.avg_pool2d(images, 2))
    assert torch.equal(seen[:, :, ::2, ::2], seen[:, :, 1::2, 1::2])
    assert torch.equal(at_resolution(images, 64, 64), images)
    full = generator_quality(RenderedImagesGenerator(ground_truth), predictor, ground_truth,
                             n=400, seed=0, batch=200, floor=False)
    assert "compared_at_resolution" not in full


def test_noise_images_score_badly(predictor, ground_truth):
    good = generator_quality(RenderedImagesGenerator(ground_truth), predictor, ground_truth,
                             n=200, seed=1, batch=200, floor=False, reference=False)
    figures = generator_quality(NoiseGenerator(), predictor, ground_truth, n=200, seed=1,
                                batch=200, floor=False, reference=False)
    assert figures["tv_distance"] > max(0.3, 2 * good["tv_distance"])
    assert figures["frechet_distance"] > 10 * good["frechet_distance"]
    assert figures["mean_max_prob"] < 0.9 < good["mean_max_prob"]
    assert figures["frechet_distance"] > 10 * good["frechet_distance"]


def test_floor_uses_an_untrained_copy(predictor, ground_truth):
    class Tiny(nn.Module):
        def __init__(self, config: dict) -> None:
            super().__init__()
            self.config = config
            self.z_dim = config["z_dim"]
            self.net = nn.Linear(self.z_dim, 3 * 64 * 64)

        def mapping(self, z, truncation_psi=1.0):
            return z

        def synthesize(self, ws):
            return torch.tanh(self.net(ws)).view(-1, 3, 64, 64)

    trained = Tiny({"z_dim": 8})
    fresh = untrained_like(trained, seed=3)
    assert isinstance(fresh, Tiny) and fresh.config == trained.config
    assert not torch.equal(fresh.net.weight, trained.net.weight)
    torch.testing.assert_close(untrained_like(trained, seed=3).net.weight, fresh.net.weight)
    figures = generator_quality(trained, predictor, ground_truth, n=50, seed=0, batch=50,
                                reference=False)
    assert set(figures["floor"]) >= {"factors", "tv_distance", "frechet_distance"}
    with pytest.raises(ValueError, match="untrained copy"):
        generator_quality(NoiseGenerator(), predictor, ground_truth, n=10, seed=0)


def test_targets_met_per_factor_and_overall() -> None:
    from training.quality import QUALITY_TARGETS, targets_met

    good = {"mean_max_prob": 0.95, "tv_distance": 0.05}
    figures = {"factors": {"a": good, "b": dict(good)}, "frechet_distance": 1500.0}
    assert targets_met(figures)["met"] == {"factors": {"a": True, "b": True},
                                           "frechet_distance": True, "all": True}
    figures["factors"]["b"] = {"mean_max_prob": 0.95, "tv_distance": 0.13}
    assert targets_met(figures)["met"]["factors"] == {"a": True, "b": False}
    figures["factors"]["b"] = {"mean_max_prob": 0.89, "tv_distance": 0.05}
    assert not targets_met(figures)["met"]["all"]
    figures["factors"]["b"] = good
    figures["frechet_distance"] = 2001.0
    met = targets_met(figures)
    assert met["met"]["frechet_distance"] is False and met["met"]["all"] is False
    assert met["tv_distance_max"] == QUALITY_TARGETS["tv_distance_max"] == 0.12


def test_cli_writes_quality_into_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(SHAPES3D_PREDICTOR.parents[2])  # the repository, as the command is run
    target = tmp_path / "asset.json"
    target.write_text(json.dumps({"config": {"a": 1}}))
    assert main(["--generator", "shapes3d-oracle", "--n", "40", "--batch", "40",
                 "--write-json", str(target)]) == 0
    doc = json.loads(target.read_text())
    assert doc["config"] == {"a": 1}
    assert doc["quality"]["n"] == 40 and "floor" not in doc["quality"]
    assert doc["quality"]["command"] == ("python -m bench quality --generator shapes3d-oracle "
                                         f"--n 40 --batch 40 --write-json {target}")
    assert doc["quality"]["predictor"] == "models/weights/shapes3d_predictor.safetensors"
    assert doc["quality"]["predictor_sha256"] == file_sha256(SHAPES3D_PREDICTOR)
    met = doc["quality"]["targets"]["met"]
    assert set(met["factors"]) == set(doc["quality"]["factors"])
    assert json.loads(capsys.readouterr().out)["n"] == 40
    with pytest.raises(FileNotFoundError):
        main(["--generator", "shapes3d-oracle", "--n", "4", "--write-json",
              str(tmp_path / "missing.json")])


def test_cli_on_a_native_stylegan2_checkpoint_adds_the_floor(tmp_path):
    from models.stylegan2 import StyleGAN2Config, StyleGAN2Generator, save_generator

    config = StyleGAN2Config(resolution=64, z_dim=8, w_dim=8, mapping_layers=1, use_noise=False,
                             channels=((4, 8), (8, 8), (16, 8), (32, 8), (64, 8)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        generator = StyleGAN2Generator(config).eval()
    weights, json_path = save_generator(generator, tmp_path / "g")
    assert main(["--generator", str(weights), "--n", "16", "--batch", "16",
                 "--write-json"]) == 0
    doc = json.loads(json_path.read_text())
    assert "config" in doc and doc["format"] == "disentangle-bench/stylegan2-generator"
    quality = doc["quality"]
    assert quality["n"] == 16 and set(quality["floor"]["factors"]) == set(quality["factors"])


def test_generated_batches_truncation_cutoff_spreads_only_the_first_w_plus_entries() -> None:
    """ψ on the first k W+ entries: k = num_ws equals ψ everywhere, k < num_ws differs from
    both it and ψ = 1; a generator without W+ entries is told so."""
    from models.stylegan2 import StyleGAN2Generator, get_preset
    from training.quality import generated_batches

    torch.manual_seed(0)
    generator = StyleGAN2Generator(get_preset("micro32")).eval()
    generator.mapping.w_avg.normal_()

    def images(psi: float, cutoff: int | None = None) -> torch.Tensor:
        return torch.cat(list(generated_batches(generator, 4, 0, 2, psi, cutoff)))

    spread, plain = images(1.6), images(1.0)
    assert torch.equal(images(1.6, generator.num_ws), spread)
    partial = images(1.6, 2)
    assert not torch.allclose(partial, spread) and not torch.allclose(partial, plain)
    with pytest.raises(ValueError, match="^truncation_cutoff needs a StyleGAN2 generator"):
        next(generated_batches(NoiseGenerator(), 2, 0, 2, 1.6, 2))


def test_portable_path_is_relative_under_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w").mkdir()
    assert portable_path(tmp_path / "w" / "p.safetensors") == "w/p.safetensors"
    assert portable_path("w/p.safetensors") == "w/p.safetensors"
    outside = tmp_path.parent / "elsewhere.safetensors"
    assert portable_path(outside) == str(outside)
