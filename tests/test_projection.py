"""The projector (``models.projection``) and its perceptual distance (``models.perceptual``):
the recipe's schedules, known answers on a linear generator, per-image noise inputs of a
StyleGAN2 generator, determinism and batch independence."""

from __future__ import annotations

import math

import pytest
import torch
from toy_generators import LinearToyGenerator

from models.perceptual import PerceptualDistance, perceptual_distance, psnr, unit_channels
from models.projection import (
    ProjectionConfig,
    latent_noise_scale,
    learning_rate,
    noise_inputs,
    noise_layers,
    noise_regularisation,
    project,
    project_batches,
    render,
    w_statistics,
)
from models.sensors import PixelSensor
from models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _linear() -> LinearToyGenerator:
    return LinearToyGenerator(w_dim=8, num_ws=2, resolution=4, img_channels=3, seed=3)


def _targets(generator, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    w = generator.mapping(z)
    return w, generator.synthesize(w[:, None].expand(-1, generator.num_ws, -1))


def test_schedules_follow_the_recipe() -> None:
    config = ProjectionConfig(num_steps=100)
    rates = [learning_rate(config, s) for s in range(100)]
    assert rates[0] == 0.0  # ramps up from zero over the first 5 %
    assert rates[2] == pytest.approx(0.1 * 2 / 5)
    assert all(r == pytest.approx(0.1) for r in rates[5:75])  # flat
    assert rates[-1] == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.04 * math.pi)))
    assert all(a >= b for a, b in zip(rates[75:], rates[76:], strict=False))  # cosine down
    assert latent_noise_scale(config, 0, 2.0) == pytest.approx(2.0 * 0.05)
    assert latent_noise_scale(config, 50, 2.0) == pytest.approx(0.1 * (1 - 0.5 / 0.75) ** 2)
    assert latent_noise_scale(config, 75, 2.0) == 0.0


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="space must be one of w, w\\+"):
        ProjectionConfig(space="z")
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        ProjectionConfig(num_steps=0)
    with pytest.raises(ValueError, match="mse_weight must be a finite number"):
        ProjectionConfig(mse_weight=float("nan"))


def test_w_statistics_of_a_known_distribution() -> None:
    generator = _linear()
    mean, std = w_statistics(generator, 20_000, seed=5)
    # w = mean + Q z with Q orthogonal: E||w - mean||^2 = w_dim
    assert torch.allclose(mean, generator.mean, atol=0.03)
    assert std == pytest.approx(math.sqrt(8), rel=0.02)


def test_perceptual_distance_known_answers() -> None:
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    pixels = PerceptualDistance(PixelSensor(), "pixels")
    assert not pixels.unit_normalise
    # a constant offset c on every channel: 3 c^2 at each of the three scales
    assert torch.allclose(pixels(x + 0.1, x), torch.full((2,), 9 * 0.01), atol=1e-6)
    assert torch.equal(pixels(x, x), torch.zeros(2))
    unit = unit_channels(torch.tensor([[[[3.0]], [[4.0]]]]))
    assert torch.allclose(unit.flatten(), torch.tensor([0.6, 0.8]))
    disc = perceptual_distance("shapes3d-disc")
    assert disc.unit_normalise and disc.channel_weights is None
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    same = disc(images, images)
    assert torch.equal(same, torch.zeros(2))
    assert bool((disc(images, images.flip(0)) > 0).all())


def test_psnr_known_answer() -> None:
    a = torch.zeros(1, 3, 4, 4)
    assert float(psnr(a + 0.2, a)) == pytest.approx(10 * math.log10(4 / 0.04))


def test_projection_of_a_linear_generator_finds_the_image() -> None:
    """The images of a linear generator are reachable: in W the projection reproduces each
    one (measured: 82-90 dB after 200 steps; the bar is 40 dB), from the w mean."""
    generator = _linear()
    _, targets = _targets(generator, 4)
    config = ProjectionConfig(num_steps=200, w_avg_samples=2000, batch_size=4)
    result = project(generator, targets, perceptual_distance("pixels"), config, seed=0,
                     record_steps=[1, 200])
    assert result.ws.shape == (4, 2, 8)
    assert torch.equal(result.ws[:, 0], result.ws[:, 1])  # W: one w on every row
    scores = psnr(render(generator, result.ws), targets)
    assert bool((scores > 40).all()), scores
    assert torch.equal(result.checkpoints[200], result.ws)
    assert float(psnr(generator.synthesize(result.checkpoints[1]), targets).mean()) < 20
    assert result.noise == {}
    assert torch.allclose(result.loss, result.distance)  # no MSE term by default


def test_projection_is_deterministic_and_batch_independent() -> None:
    generator = _linear()
    _, targets = _targets(generator, 4, seed=2)
    distance = perceptual_distance("pixels")
    config = ProjectionConfig(num_steps=30, w_avg_samples=500, batch_size=2, mse_weight=0.5)
    first = project(generator, targets, distance, config, seed=7)
    again = project(generator, targets, distance, config, seed=7)
    whole = project(generator, targets, distance, ProjectionConfig(
        num_steps=30, w_avg_samples=500, batch_size=4, mse_weight=0.5), seed=7)
    other = project(generator, targets, distance, config, seed=8)
    assert torch.equal(first.ws, again.ws)
    assert torch.allclose(first.ws, whole.ws, atol=1e-5)  # each image follows its own path
    assert not torch.allclose(first.ws, other.ws)  # the seed drives the latent noise
    assert torch.allclose(first.loss, first.distance + 0.5 * first.mse)


def test_batches_stream_what_project_joins() -> None:
    """project_batches yields each batch (its index range in the whole set) as it is done, the
    targets sliced only then; project returns the same batches joined."""
    generator = _linear()
    _, targets = _targets(generator, 5, seed=4)
    distance = perceptual_distance("pixels")
    config = ProjectionConfig(num_steps=10, w_avg_samples=300, batch_size=2)

    class Slices:
        taken: list[tuple[int, int]] = []

        def __len__(self) -> int:
            return len(targets)

        def __getitem__(self, index: slice) -> torch.Tensor:
            self.taken.append((index.start, index.stop))
            return targets[index]

    lazy = Slices()
    stream = project_batches(generator, lazy, distance, config, seed=3)
    first_range, first = next(stream)
    assert first_range == range(0, 2) and lazy.taken == [(0, 2)]  # nothing else read yet
    rest = list(stream)
    assert [r for r, _ in rest] == [range(2, 4), range(4, 5)]
    whole = project(generator, targets, distance, config, seed=3)
    assert torch.equal(torch.cat([first.ws, *(p.ws for _, p in rest)]), whole.ws)


def test_w_plus_projection_has_one_w_per_row() -> None:
    generator = _linear()
    _, targets = _targets(generator, 2)
    config = ProjectionConfig(space="w+", num_steps=40, w_avg_samples=500)
    result = project(generator, targets, perceptual_distance("pixels"), config, seed=0)
    assert result.ws.shape == (2, 2, 8)
    assert not torch.allclose(result.ws[:, 0], result.ws[:, 1])


def test_targets_must_have_the_generator_size() -> None:
    with pytest.raises(ValueError, match=r"targets must be float images \[n, 3, 4, 4\]"):
        project(_linear(), torch.zeros(1, 3, 8, 8), perceptual_distance("pixels"))


def test_noise_regularisation_known_answers() -> None:
    ones = torch.ones(1, 16, 16)
    # 16 and 8 px levels, two shifts each, every product 1: 4
    assert float(noise_regularisation([ones])) == pytest.approx(4.0)
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2.0 - 1.0
    assert float(noise_regularisation([checker[None]])) == pytest.approx(2.0)
    white = torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(0))
    assert float(noise_regularisation([white])) < 1e-3


def _noisy_generator() -> StyleGAN2Generator:
    config = StyleGAN2Config(resolution=8, z_dim=8, w_dim=8, mapping_layers=1,
                             channels={4: 8, 8: 8}, use_noise=True)
    torch.manual_seed(0)
    generator = StyleGAN2Generator(config).eval()
    with torch.no_grad():
        for name, param in generator.named_parameters():
            if name.endswith("noise_strength"):
                param.fill_(0.5)
    return generator.requires_grad_(False)


def test_noise_inputs_are_optimised_per_image_and_restored() -> None:
    generator = _noisy_generator()
    layers = noise_layers(generator)
    assert sorted(layers) == ["synthesis.b4.conv1", "synthesis.b8.conv0", "synthesis.b8.conv1"]
    stored = {k: m.noise_const.clone() for k, m in layers.items()}
    _, targets = _targets(generator, 3)
    config = ProjectionConfig(num_steps=12, w_avg_samples=200, batch_size=2)
    result = project(generator, targets, perceptual_distance("pixels"), config, seed=0)
    assert sorted(result.noise) == sorted(layers)
    for name, maps in result.noise.items():
        assert maps.shape == (3, *stored[name].shape)
        assert torch.allclose(maps.mean(dim=(1, 2)), torch.zeros(3), atol=1e-5)
        assert torch.allclose(maps.square().mean(dim=(1, 2)), torch.ones(3), atol=1e-4)
        assert torch.equal(layers[name].noise_const, stored[name])  # the generator is unchanged
    # the recorded distance is that of the projection rendered with its own noise maps
    images = render(generator, result.ws, result.noise)
    again = perceptual_distance("pixels")(images, targets)
    assert torch.allclose(again, result.distance, atol=1e-5)
    plain = render(generator, result.ws)
    assert not torch.allclose(plain, images)  # the noise maps matter


def test_noise_inputs_context_restores_on_error() -> None:
    generator = _noisy_generator()
    before = {k: m.noise_const for k, m in noise_layers(generator).items()}
    with pytest.raises(ValueError, match="no noise map for layer"):
        with noise_inputs(generator, {"synthesis.b4.conv1": torch.zeros(1, 4, 4)}):
            pass
    assert {k: m.noise_const for k, m in noise_layers(generator).items()} == before


def test_generators_without_noise_inputs() -> None:
    assert noise_layers(_linear()) == {}
    config = StyleGAN2Config(resolution=8, z_dim=8, w_dim=8, mapping_layers=1,
                             channels={4: 8, 8: 8}, use_noise=False)
    assert noise_layers(StyleGAN2Generator(config)) == {}


def test_lpips_vgg_sensor_from_given_files(tmp_path, monkeypatch) -> None:
    """torchvision-named VGG16 weights in one file and LPIPS's linear layers in another (joined
    by the path separator): the distance is LPIPS's form with those channel weights."""
    import os

    from safetensors.torch import save_file

    from models.sensors import LPIPS_VGG_ENV, VGG16_CONVS, load_sensor

    gen = torch.Generator().manual_seed(0)
    vgg = {}
    for index, (c_in, c_out) in VGG16_CONVS.items():
        vgg[f"features.{index}.weight"] = (torch.randn(c_out, c_in, 3, 3, generator=gen)
                                           / (9 * c_in) ** 0.5).half()
        vgg[f"features.{index}.bias"] = torch.zeros(c_out).half()
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen)
           for k, c in enumerate((64, 128, 256, 512, 512))}
    save_file(vgg, str(tmp_path / "vgg16.safetensors"))
    save_file(lin, str(tmp_path / "lin.safetensors"))
    monkeypatch.setenv(LPIPS_VGG_ENV, f"{tmp_path / 'vgg16.safetensors'}{os.pathsep}"
                                      f"{tmp_path / 'lin.safetensors'}")
    distance = perceptual_distance("lpips-vgg")
    assert [w.numel() for w in distance.channel_weights] == [64, 128, 256, 512, 512]
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(distance(images, images), torch.zeros(2))
    # by hand: unit-normalised stage maps, channel-weighted squared difference, spatial mean
    maps_a, maps_b = distance.sensor(images), distance.sensor(images.flip(0))
    by_hand = sum(((unit_channels(a) - unit_channels(b)).pow(2) * w.reshape(1, -1, 1, 1))
                  .sum(1).mean((1, 2)) for a, b, w in zip(maps_a, maps_b,
                                                         distance.channel_weights, strict=True))
    assert torch.allclose(distance(images, images.flip(0)), by_hand)
    without = load_sensor("lpips-vgg", tmp_path / "vgg16.safetensors")
    assert without.channel_weights is None
    monkeypatch.setenv(LPIPS_VGG_ENV, str(tmp_path / "lin.safetensors"))
    with pytest.raises(ValueError, match="missing features.0.weight"):
        load_sensor("lpips-vgg")
    monkeypatch.delenv(LPIPS_VGG_ENV)
    with pytest.raises(FileNotFoundError, match="no weights given; set \\$BENCH_LPIPS_VGG"):
        load_sensor("lpips-vgg")
