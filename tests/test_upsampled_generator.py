"""A smaller generator seen at the pipeline's 64 px: ``UpsampledGenerator`` changes only the
image size, and everything that reads its images at the native size gets them back exactly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.generator import Generator, UpsampledGenerator, broadcast_ws, seen_at
from models.sensors import DiscriminatorSensor
from models.stylegan2 import StyleGAN2Generator, get_preset
from training.quality import at_resolution, image_resolution


@pytest.fixture(scope="module")
def small() -> StyleGAN2Generator:
    torch.manual_seed(0)
    generator = StyleGAN2Generator(get_preset("micro32")).eval().requires_grad_(False)
    with torch.no_grad():
        generator.mapping.w_avg.normal_(generator=torch.Generator().manual_seed(1))
    return generator


def _ws(generator: StyleGAN2Generator, n: int = 3) -> torch.Tensor:
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(2))
    return broadcast_ws(generator.mapping(z), generator.num_ws)


def test_images_are_the_native_images_with_each_pixel_repeated(small) -> None:
    seen = UpsampledGenerator(small, 64)
    ws = _ws(small)
    native = small.synthesize(ws)
    images = seen.synthesize(ws)
    assert images.shape == (3, 3, 64, 64)
    for dy in (0, 1):
        for dx in (0, 1):
            assert torch.equal(images[..., dy::2, dx::2], native)
    # what the quality measure and the sensor do to it gives the native images back
    assert torch.allclose(F.avg_pool2d(images, 2), native, atol=1e-6)
    assert torch.equal(at_resolution(native, 32, 64), images)


def test_everything_but_the_image_size_is_the_wrapped_generators(small) -> None:
    seen = UpsampledGenerator(small, 128)
    assert isinstance(seen, Generator)
    assert (seen.resolution, seen.native_resolution, seen.factor) == (128, 32, 4)
    assert (seen.z_dim, seen.w_dim, seen.num_ws, seen.img_channels) == (
        small.z_dim, small.w_dim, small.num_ws, small.img_channels)
    z = torch.randn(4, small.z_dim, generator=torch.Generator().manual_seed(3))
    assert torch.equal(seen.mapping(z, truncation_psi=0.5), small.mapping(z, truncation_psi=0.5))
    assert torch.equal(seen.w_avg, small.w_avg)
    for mine, theirs in zip(seen.style_affines(), small.style_affines(), strict=True):
        assert torch.equal(mine, theirs)
    ws = _ws(small, 2)
    for mine, theirs in zip(seen.features(ws, 2), small.features(ws, 2), strict=True):
        assert torch.equal(mine, theirs)
    # the wrapped weights are its parameters (frozen, moved, counted with it)
    assert sum(p.numel() for p in seen.parameters()) == sum(p.numel() for p in small.parameters())


def test_seen_at_wraps_only_a_smaller_generator(small) -> None:
    assert seen_at(small, 32) is small
    assert isinstance(seen_at(small, 64), UpsampledGenerator)
    with pytest.raises(ValueError, match="cannot upsample 32-px images to 48 px"):
        UpsampledGenerator(small, 48)
    with pytest.raises(ValueError, match="cannot upsample 32-px images to 16 px"):
        UpsampledGenerator(small, 16)


def test_quality_compares_at_the_native_resolution(small) -> None:
    assert image_resolution(small) == 32
    assert image_resolution(UpsampledGenerator(small, 64)) == 32


def test_discriminator_sensor_area_downsamples_whole_multiples() -> None:
    torch.manual_seed(4)
    sensor = DiscriminatorSensor(get_preset("micro32")).eval()
    images = torch.randn(2, 3, 32, 32)
    upsampled = images.repeat_interleave(2, -2).repeat_interleave(2, -1)
    for mine, native in zip(sensor(upsampled), sensor(images), strict=True):
        assert torch.allclose(mine, native, atol=1e-5)
    larger = torch.randn(2, 3, 64, 64)
    for mine, pooled in zip(sensor(larger), sensor(F.avg_pool2d(larger, 2)), strict=True):
        assert torch.equal(mine, pooled)
    with pytest.raises(ValueError, match=r"sensor expects images \[n, 3, 32, 32\]"):
        sensor(torch.zeros(2, 3, 48, 48))


def test_discriminator_sensor_exports_a_discriminator_with_its_own_channels(tmp_path) -> None:
    """A discriminator wider than its generator (``disc_channels``) exports to the sensor and
    loads back: the sensor's maps are the discriminator's own block outputs."""
    from dataclasses import replace

    from models.sensors import load_sensor
    from models.stylegan2 import StyleGAN2Discriminator
    from training.sensor_export import export_disc_sensor

    config = replace(get_preset("micro32"), disc_channels=((4, 40), (8, 24), (16, 24), (32, 8)))
    torch.manual_seed(5)
    disc = StyleGAN2Discriminator(config).eval()
    state_path = tmp_path / "state.pt"
    torch.save({"config": config.to_dict(), "D": disc.state_dict(), "cur_nimg": 0}, state_path)
    exported = export_disc_sensor(state_path, tmp_path / "sensor.safetensors")
    sensor = load_sensor("shapes3d-disc", exported)
    images = torch.randn(2, 3, 32, 32)
    maps, x = sensor(images), images
    assert [m.shape[1] for m in maps] == [24, 24, 40]
    for res, got in zip(sensor.block_resolutions, maps, strict=True):
        x = getattr(disc, f"b{res}")(x)
        assert torch.allclose(got, x, atol=1e-2)  # the sensor stores float16
