"""Foreign StyleGAN2 checkpoint formats: rosinality .pt, NVIDIA .pkl, and the format-detecting
loader. Every checkpoint is built here from randomly initialised native generators."""

from __future__ import annotations

import argparse
import io
import pickle
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from nvidia_generator_pickle import (
    fake_nvidia_modules,
    nvidia_records,
    random_generator,
    write_nvidia_pickle,
)
from tf_network_pickle import fake_tf_network_class

from models.stylegan2 import (
    StyleGAN2Config,
    StyleGAN2Generator,
    get_preset,
    read_checkpoint_json,
    save_generator,
)
from models.stylegan2.foreign import (
    CheckpointFormatError,
    UnsafePickleError,
    estimate_w_avg,
    first_line,
    generator_from_state_dict,
    infer_native_config,
    read_torch_checkpoint,
    short_list,
)
from models.stylegan2.genforce import (
    genforce_generator,
    genforce_to_native,
    load_genforce_generator,
    native_to_genforce,
)
from models.stylegan2.loader import convert_to_native, load_any_generator
from models.stylegan2.nvidia_pickle import (
    ALLOWED_GLOBALS,
    EasyDict,
    PersistentRecord,
    RestrictedUnpickler,
    TFNetworkRecord,
    load_nvidia_generator,
    nvidia_config,
    nvidia_generator,
    nvidia_init_kwargs,
    read_nvidia_pickle,
    record_state_dict,
)
from models.stylegan2.rosinality import (
    RosinalityArchitecture,
    block_resolutions,
    infer_rosinality_architecture,
    is_rosinality_state_dict,
    load_rosinality_generator,
    native_resolution,
    native_to_rosinality,
    noise_buffer_keys,
    rosinality_config,
    rosinality_generator,
    rosinality_to_native,
    save_rosinality_generator,
    split_rosinality_checkpoint,
    write_rosinality_checkpoint,
)
from models.stylegan2.tf_pickle import (
    load_tf_generator,
    tf_generator,
    tf_to_native,
    tf_variables,
)

# Smallest configs each format can express. rosinality needs 512 channels up to 32x32.
ROSINALITY_CFG = StyleGAN2Config(resolution=16, z_dim=32, w_dim=32, mapping_layers=2,
                                 channel_base=32768)  # <= 32: the multiplier does not show
ROSINALITY_SMALL = ROSINALITY_CFG.replace(resolution=8)  # for forward passes
NVIDIA_CFG = StyleGAN2Config(resolution=32, z_dim=24, w_dim=24, mapping_layers=3,
                             channel_base=512, channel_max=64, conv_clamp=256.0)


def images(G: StyleGAN2Generator, noise_mode: str, seed: int = 5) -> torch.Tensor:
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.synthesize(G.mapping_ws(z, truncation_psi=0.7, update_w_avg=False),
                            noise_mode=noise_mode)


def assert_same_state(a: StyleGAN2Generator, b: StyleGAN2Generator) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# ---------------------------------------------------------------------------------------------
# rosinality


@pytest.fixture(scope="module")
def r_generator() -> StyleGAN2Generator:
    return random_generator(ROSINALITY_CFG)


@pytest.fixture(scope="module")
def r_small() -> StyleGAN2Generator:
    return random_generator(ROSINALITY_SMALL, seed=7)


def test_rosinality_names_and_shapes(r_generator: StyleGAN2Generator) -> None:
    g_ema, latent_avg = native_to_rosinality(r_generator.state_dict())
    assert g_ema["input.input"].shape == (1, 512, 4, 4)
    assert g_ema["conv1.conv.weight"].shape == (1, 512, 512, 3, 3)
    assert g_ema["convs.0.conv.weight"].shape == (1, 512, 512, 3, 3)  # b8.conv0
    assert g_ema["to_rgbs.1.bias"].shape == (1, 3, 1, 1)  # b16.torgb
    assert g_ema["noises.noise_4"].shape == (1, 1, 16, 16)  # b16.conv1
    assert g_ema["convs.2.noise.weight"].shape == (1,)
    assert "style.0.weight" not in g_ema and "style.2.weight" in g_ema
    assert torch.equal(g_ema["noises.noise_3"][0, 0],
                       r_generator.state_dict()["synthesis.b16.conv0.noise_const"])
    assert torch.equal(latent_avg, r_generator.w_avg)
    arch = infer_rosinality_architecture(g_ema)
    assert (arch.resolution, arch.style_dim, arch.n_mlp, arch.num_ws) == (16, 32, 2, 6)
    assert arch.img_channels == 3


def test_rosinality_round_trip(r_generator: StyleGAN2Generator, r_small: StyleGAN2Generator,
                               tmp_path: Path) -> None:
    path = save_rosinality_generator(r_generator, tmp_path / "g.pt")
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"g_ema", "latent_avg"}
    back = load_rosinality_generator(path)
    assert back.config == r_generator.config
    assert_same_state(back, r_generator)
    # outputs (at 8x8, to keep the 512-channel forward cheap)
    path = save_rosinality_generator(r_small, tmp_path / "small.pt")
    back = load_rosinality_generator(path)
    assert_same_state(back, r_small)
    outputs = {}
    for mode in ("none", "const"):
        outputs[mode] = images(back, mode)
        torch.testing.assert_close(outputs[mode], images(r_small, mode), rtol=0, atol=1e-5)
    # the const noise really contributes, so the const comparison is not vacuous
    assert not torch.allclose(outputs["const"], outputs["none"], atol=1e-4)


def test_rosinality_export_without_noise(tmp_path: Path) -> None:
    """use_noise=False exports as zero noise strengths (rosinality always has noise)."""
    G = random_generator(ROSINALITY_SMALL.replace(use_noise=False), seed=8)
    back = load_rosinality_generator(save_rosinality_generator(G, tmp_path / "g.pt"))
    assert back.config.use_noise
    assert all(float(v) == 0 for k, v in back.state_dict().items()
               if k.endswith("noise_strength"))
    torch.testing.assert_close(images(back, "const"), images(G, "none"), rtol=0, atol=1e-5)


def test_rosinality_multiplier_inferred(tmp_path: Path) -> None:
    # resolution 64 is the first where rosinality's channel multiplier shows.
    for cm, base in ((1, 16384), (2, 32768)):
        cfg = StyleGAN2Config(resolution=64, z_dim=8, w_dim=8, mapping_layers=1,
                              channel_base=base)
        with torch.device("meta"):
            state = StyleGAN2Generator(cfg).state_dict()
        g_ema, _ = native_to_rosinality(state)
        arch = infer_rosinality_architecture(g_ema)
        assert arch.channel_multiplier == cm
        assert arch.channels[64] == 256 * cm


def test_rosinality_training_checkpoint(r_small: StyleGAN2Generator, tmp_path: Path) -> None:
    """args Namespace is allowlisted; no latent_avg -> seeded mapping mean."""
    g_ema, _ = native_to_rosinality(r_small.state_dict())
    ckpt = {"g": g_ema, "d": {}, "g_ema": g_ema, "g_optim": {}, "d_optim": {},
            "args": argparse.Namespace(size=16, latent=32, n_mlp=2, channel_multiplier=2),
            "ada_aug_p": 0.0}
    path = tmp_path / "train.pt"
    torch.save(ckpt, path)
    a = load_rosinality_generator(path, w_avg_samples=3000, seed=1)
    b = load_rosinality_generator(path, w_avg_samples=3000, seed=1)
    assert torch.equal(a.w_avg, b.w_avg)
    assert torch.equal(a.w_avg, estimate_w_avg(a, 3000, seed=1))
    z = torch.randn(20000, 32, generator=torch.Generator().manual_seed(99))
    reference = a.mapping(z, update_w_avg=False).mean(0)
    spread = a.mapping(z, update_w_avg=False).std(0)
    assert (a.w_avg - reference).abs().max() < 0.1 * spread.max()
    assert not torch.allclose(a.w_avg, torch.zeros_like(a.w_avg))
    for key, value in r_small.state_dict().items():
        if key != "mapping.w_avg":
            assert torch.equal(a.state_dict()[key], value), key


def test_rosinality_strict_keys(r_generator: StyleGAN2Generator) -> None:
    g_ema, _ = native_to_rosinality(r_generator.state_dict())
    # FIR kernels are ignored and noise buffers optional
    trimmed = {k: v for k, v in g_ema.items()
               if not k.startswith("noises.") and not k.endswith("kernel")}
    state, _ = rosinality_to_native(trimmed)
    assert not any(k.endswith("noise_const") for k in state)
    with pytest.raises(CheckpointFormatError, match=r"unknown keys: convs\.1\.extra\.weight"):
        rosinality_to_native({**g_ema, "convs.1.extra.weight": torch.zeros(1)})
    broken = dict(g_ema)
    del broken["to_rgbs.0.conv.modulation.bias"]
    with pytest.raises(CheckpointFormatError,
                       match=r"missing keys: to_rgbs\.0\.conv\.modulation\.bias"):
        rosinality_to_native(broken)


def test_rosinality_export_refuses_inexpressible(tmp_path: Path) -> None:
    G = random_generator(get_preset("micro32"))
    with pytest.raises(ValueError, match="not expressible by rosinality"):
        save_rosinality_generator(G, tmp_path / "x.pt")
    clamped = random_generator(ROSINALITY_CFG.replace(conv_clamp=256.0))
    with pytest.raises(ValueError, match="conv_clamp"):
        save_rosinality_generator(clamped, tmp_path / "y.pt")
    assert not list(tmp_path.iterdir())


def test_ffhq_1024_geometry_via_rosinality(tmp_path: Path) -> None:
    """config-f at 1024 exported to rosinality names and imported back (no forward pass)."""
    G = StyleGAN2Generator(get_preset("ffhq1024")).eval()
    path = save_rosinality_generator(G, tmp_path / "stylegan2-ffhq-config-f.pt")
    del G
    back = load_rosinality_generator(path)
    assert back.num_ws == 18
    assert back.config.channel_base == 32768 and back.config.channel_max == 512
    assert back.config.mapping_layers == 8 and back.z_dim == back.w_dim == 512
    n_params = sum(p.numel() for p in back.parameters())
    assert round(n_params / 1e6, 2) == 30.37
    g_ema, _ = split_of(path)
    assert infer_rosinality_architecture(g_ema).channel_multiplier == 2


def test_rosinality_export_layout_is_rosinalitys(r_generator: StyleGAN2Generator) -> None:
    """The exported g_ema has the keys, order, FIR kernels and noise shapes of a state dict
    written by rosinality's own Generator (tests/golden/rosinality_g32.pt, 32x32, 3 mapping
    layers; its channels are smaller, so only channel-free shapes are compared)."""
    golden = torch.load(Path(__file__).parent / "golden" / "rosinality_g32.pt",
                        weights_only=True)["g_ema"]
    cfg = StyleGAN2Config(resolution=32, z_dim=32, w_dim=32, mapping_layers=3,
                          channel_base=32768)
    checked: set[str] = set()
    for use_noise in (True, False):
        with torch.device("meta"):
            state = StyleGAN2Generator(cfg.replace(use_noise=use_noise)).state_dict()
        g_ema, _ = native_to_rosinality(state)
        assert list(g_ema) == list(golden)
        for key, value in golden.items():
            assert g_ema[key].ndim == value.ndim, key
            if key.endswith("kernel"):
                assert torch.equal(g_ema[key], value), key
            elif (key.startswith(("noises.", "style.")) or key.endswith(".noise.weight")
                  or re.fullmatch(r"to_rgb(1|s\.\d+)\.bias", key)):
                assert g_ema[key].shape == value.shape, key
                checked.add(key)
        if not use_noise:
            assert all(g_ema[k].device.type == "cpu" and not g_ema[k].any()
                       for k in g_ema if k.startswith("noises.") or k.endswith("noise.weight"))
    assert len(checked) == 3 * 2 + 7 + 7 + 4  # style, noises, noise strengths, to_rgb biases
    # the blur kernel is [1, 3, 3, 1] outer itself, normalised and scaled by 4 (= up ** 2)
    expected = torch.tensor([[1.0, 3, 3, 1], [3, 9, 9, 3], [3, 9, 9, 3], [1, 3, 3, 1]]) / 16
    assert torch.equal(golden["convs.0.conv.blur.kernel"], expected)


def test_rosinality_architecture_known_answers() -> None:
    """Shapes and key counts -> resolution, style_dim, n_mlp, channels, image channels, and the
    channel multiplier (1, 2, 4, 8 from 64 px on; 2 up to 32 px; None off the tables)."""
    def fake(res: int, channels: dict[int, int], n_mlp: int = 2, rgb: int = 3,
             style: int = 8) -> dict[str, torch.Tensor]:
        with torch.device("meta"):
            state = {"input.input": torch.empty(1, channels[4], 4, 4),
                     "to_rgb1.conv.weight": torch.empty(1, rgb, channels[4], 1, 1)}
            state |= {f"style.{i + 1}.weight": torch.empty(style, style) for i in range(n_mlp)}
            for j, r in enumerate(block_resolutions(res)[1:]):
                state[f"convs.{2 * j}.conv.weight"] = torch.empty(1, channels[r], 1, 3, 3)
                state[f"convs.{2 * j + 1}.conv.weight"] = torch.empty(1, channels[r], 1, 3, 3)
        return state

    for cm in (1, 2, 4, 8):
        table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm}
        arch = infer_rosinality_architecture(fake(64, table, n_mlp=3, rgb=1, style=6))
        assert arch == RosinalityArchitecture(64, 6, 3, table, 1, cm)
        assert repr(arch.channels) == f"{{4: 512, 8: 512, 16: 512, 32: 512, 64: {256 * cm}}}"
        assert arch.num_ws == 10
    assert infer_rosinality_architecture(fake(32, dict.fromkeys((4, 8, 16, 32), 512))
                                         ).channel_multiplier == 2
    assert infer_rosinality_architecture(fake(4, {4: 512})).channel_multiplier == 2
    for res, table in ((32, {4: 16, 8: 16, 16: 8, 32: 8}),
                       (64, {4: 512, 8: 512, 16: 512, 32: 512, 64: 128}),
                       (64, dict.fromkeys((4, 8, 16, 32, 64), 96)),
                       (128, dict.fromkeys((4, 8, 16, 32, 64, 128), 256))):
        arch = infer_rosinality_architecture(fake(res, table))
        assert arch.channel_multiplier is None and not arch.small
        assert arch.layout == "channels " + ", ".join(f"{r}: {c}" for r, c in table.items())
    # small=True (DisCo's copy): one width, 64 * channel_multiplier, at every resolution <= 64
    for res, cm in ((64, 4), (64, 1), (32, 2), (16, 3)):
        table = dict.fromkeys(block_resolutions(res), 64 * cm)
        arch = infer_rosinality_architecture(fake(res, table, n_mlp=3, style=512))
        assert arch == RosinalityArchitecture(res, 512, 3, table, 3, cm, small=True)
        assert arch.layout == (f"Generator(size={res}, style_dim=512, n_mlp=3, "
                               f"channel_multiplier={cm}, small=True)")
    # an all-512 table up to 32 px is the default table's (config-f), not small=True's
    arch = infer_rosinality_architecture(fake(32, dict.fromkeys((4, 8, 16, 32), 512)))
    assert (arch.channel_multiplier, arch.small) == (2, False)
    assert arch.layout == "Generator(size=32, style_dim=8, n_mlp=2)"
    arch = infer_rosinality_architecture(fake(64, {4: 512, 8: 512, 16: 512, 32: 512, 64: 1024}))
    assert arch.layout == "Generator(size=64, style_dim=8, n_mlp=2, channel_multiplier=4)"
    no_rgb = fake(8, {4: 512, 8: 512})
    del no_rgb["to_rgb1.conv.weight"]
    assert infer_rosinality_architecture(no_rgb).img_channels == 3

    def refused(state: dict[str, torch.Tensor], message: str) -> None:
        with pytest.raises(CheckpointFormatError, match=f"^src: {message}$"):
            infer_rosinality_architecture(state, "src")

    good = fake(16, {4: 512, 8: 512, 16: 512})
    for key in ("input.input", "style.1.weight"):
        refused({k: v for k, v in good.items() if k != key},
                r"not a rosinality generator state dict \(expected keys 'input\.input' and "
                r"'style\.1\.weight' of rosinality's Generator, the default channel table "
                r"or small=True .*\)")
    refused({k: v for k, v in good.items() if k != "convs.3.conv.weight"},
            r"odd number of 'convs\.\*' layers \(3\); expected pairs")
    for shape in ((1, 512, 4, 2), (512, 4, 4)):
        refused(good | {"input.input": torch.empty(shape, device="meta")},
                re.escape(f"'input.input' has shape {shape}; expected [1,C,4,4]"))
    with pytest.raises(CheckpointFormatError, match="^rosinality state dict: not a rosinality"):
        infer_rosinality_architecture({})
    assert block_resolutions(4) == [4] and block_resolutions(32) == [4, 8, 16, 32]
    for bad in (0, 1, 2, 3, 6, 48):
        with pytest.raises(ValueError, match=f"^resolution must be a power of two >= 4, "
                                             f"got {bad}$"):
            block_resolutions(bad)


def test_rosinality_import_messages(r_small: StyleGAN2Generator) -> None:
    """Every refusal of rosinality_to_native names its source and what was expected."""
    g_ema, latent_avg = native_to_rosinality(r_small.state_dict())

    def refused(state: dict[str, torch.Tensor], message: str, **kwargs: Any) -> None:
        with pytest.raises(CheckpointFormatError, match=f"^src: {message}$"):
            rosinality_to_native(state, source="src", **kwargs)

    layout = (r"rosinality generator state dict does not match the keys of Generator\(size=8, "
              r"style_dim=32, n_mlp=2\) \(expected the default channel table or small=True "
              r"\(one width at every resolution, as in DisCo's 3DShapes/MPI3D/Cars3D files: "
              r"Generator\(size=64, style_dim=512, n_mlp=3, channel_multiplier=4, small=True\), "
              r"a bare state dict\)\); ")
    refused({k: v for k, v in g_ema.items() if k != "conv1.conv.weight"},
            layout + r"missing keys: conv1\.conv\.weight; unknown keys: none")
    refused(g_ema | {"noises.noise_9": torch.zeros(1, 1, 8, 8)},
            layout + r"missing keys: none; unknown keys: noises\.noise_9")
    refused(g_ema | {"conv1.conv.weight": g_ema["conv1.conv.weight"][0]},
            r"'conv1\.conv\.weight' has 4 dims; expected 5")
    refused(g_ema | {"to_rgb1.bias": torch.zeros(1, 4, 1, 1)},
            re.escape("'to_rgb1.bias' has shape (1, 4, 1, 1); expected (3,)"))
    refused(g_ema | {"noises.noise_1": torch.zeros(1, 1, 8, 4)},
            re.escape("'noises.noise_1' has shape (1, 1, 8, 4); expected (4, 4)"))
    refused(g_ema, "'latent_avg' has 31 entries; expected 32", latent_avg=latent_avg[:31])
    refused({k: v for k, v in g_ema.items() if k != "input.input"},
            r"not a rosinality generator state dict \(expected keys 'input\.input' and "
            r"'style\.1\.weight' of rosinality's Generator, the default channel table or "
            r"small=True .*\)")
    with pytest.raises(CheckpointFormatError, match="^rosinality state dict: rosinality gen"):
        rosinality_to_native({k: v for k, v in g_ema.items() if k != "conv1.conv.weight"})
    state, arch = rosinality_to_native(g_ema, latent_avg.reshape(1, -1))
    assert state["mapping.w_avg"].shape == (32,) and arch.resolution == 8
    assert torch.equal(state["synthesis.b8.conv1.noise_const"], g_ema["noises.noise_2"][0, 0])


def test_rosinality_export_messages(r_small: StyleGAN2Generator, tmp_path: Path) -> None:
    """native_to_rosinality / write / save refusals: one line naming the source."""
    state = r_small.state_dict()

    def refused(bad: dict[str, torch.Tensor], message: str) -> None:
        with pytest.raises(CheckpointFormatError, match=f"^src: {message}$"):
            native_to_rosinality(bad, source="src")

    without = {k: v for k, v in state.items() if k != "mapping.w_avg"}
    refused(without, r"expected 'mapping\.fc0\.weight' and 'mapping\.w_avg'")
    refused({k: v for k, v in state.items() if not k.startswith("mapping.fc")},
            r"expected 'mapping\.fc0\.weight' and 'mapping\.w_avg'")
    refused(state | {"mapping.w_avg": torch.zeros(16)},
            "rosinality needs z_dim == w_dim; got z_dim=32, w_dim=16")
    for key in ("synthesis.b4.const", "synthesis.b8.conv0.weight", "synthesis.b4.torgb.weight",
                "synthesis.b4.conv1.weight", "synthesis.b8.torgb.weight",
                "synthesis.b8.conv1.noise_const", "synthesis.b8.torgb.affine.bias"):
        refused({k: v for k, v in state.items() if k != key}, f"missing key '{re.escape(key)}'")
    refused(state | {"synthesis.b8.torgb.weight": torch.zeros(1, 512, 1, 1),
                     "synthesis.b4.torgb.weight": torch.zeros(1, 512, 1, 1)},
            "rosinality's ToRGB has 3 channels; got 1")
    refused(state | {"synthesis.b8.conv0.weight": torch.zeros(256, 512, 3, 3)},
            re.escape("channel table {4: 512, 8: 256} is not expressible by rosinality's "
                      "Generator (needs channel_base 16384 or 32768 with channel_max 512)"))
    refused(state | {"synthesis.b8.extra": torch.zeros(1), "synthesis.b4.extra": torch.zeros(1)},
            r"keys rosinality's Generator cannot express: synthesis\.b4\.extra, "
            r"synthesis\.b8\.extra")
    with pytest.raises(ValueError, match="^native state dict has no 'synthesis.b{res}.\\*' keys$"):
        native_resolution({"mapping.w_avg": torch.zeros(1)})
    assert native_resolution(state) == 8
    with pytest.raises(CheckpointFormatError, match="^native state dict: expected 'mapping"):
        native_to_rosinality(without)
    # NVIDIA's FIR buffers are dropped
    g_ema, _ = native_to_rosinality(state | {"synthesis.b8.conv0.resample_filter": torch.ones(4)})
    assert list(g_ema) == list(native_to_rosinality(state)[0])

    path = tmp_path / "x.pt"
    with pytest.raises(CheckpointFormatError, match=f"^{re.escape(str(path))}: expected 'map"):
        write_rosinality_checkpoint(without, path)
    G = random_generator(ROSINALITY_SMALL.replace(mapping_lr_mul=1.0, conv_clamp=8.0))
    with pytest.raises(CheckpointFormatError, match=re.escape(
            f"{path}: cannot export to rosinality format: mapping_lr_mul=1.0 (rosinality "
            "assumes 0.01); conv_clamp=8.0 (rosinality has no clamp; pass "
            "allow_conv_clamp=True to drop it)") + "$"):
        save_rosinality_generator(G, path)
    assert not list(tmp_path.iterdir())
    clamped = random_generator(ROSINALITY_SMALL.replace(conv_clamp=8.0))
    back = load_rosinality_generator(save_rosinality_generator(clamped, path,
                                                               allow_conv_clamp=True))
    assert back.config == ROSINALITY_SMALL and back.w_avg.shape == (32,)


def test_rosinality_checkpoint_objects_and_configs(r_small: StyleGAN2Generator,
                                                  tmp_path: Path) -> None:
    """The checkpoint dict's accepted forms and refusals, the config a rosinality architecture
    maps to, noise buffer names and the loader's keywords."""
    g_ema, latent_avg = native_to_rosinality(r_small.state_dict())
    t = torch.zeros(1)
    assert is_rosinality_state_dict(g_ema)
    for obj in ({"input.input": t}, {"style.1.weight": t}, [g_ema], None):
        assert not is_rosinality_state_dict(obj)
    assert split_rosinality_checkpoint(g_ema, "src") == (g_ema, None)
    got, avg = split_rosinality_checkpoint({"g_ema": g_ema, "latent_avg": latent_avg}, "src")
    assert got == g_ema and avg is latent_avg

    def refused(ckpt: Any, message: str) -> None:
        with pytest.raises(CheckpointFormatError, match=f"^src: {message}$"):
            split_rosinality_checkpoint(ckpt, "src")

    keys = ", ".join(f"'k{i}'" for i in range(8))
    refused({f"k{i}": t for i in range(9)},
            rf"expected a rosinality checkpoint dict with key 'g_ema'; found \[{keys}\]")
    refused([g_ema], "expected a rosinality checkpoint dict with key 'g_ema'; found list")
    refused({"g_ema": {"a": t, "b": 1}}, "'g_ema' is not a state dict of tensors")
    refused({"g_ema": [t]}, "'g_ema' is not a state dict of tensors")
    refused({"g_ema": g_ema, "latent_avg": [0.0]}, "'latent_avg' is a list; expected a tensor")

    # rosinality_config: NVIDIA's channel rule for multipliers 1 and 2, explicit otherwise
    for cm, base in ((1, 16384), (2, 32768)):
        table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm}
        config = rosinality_config(RosinalityArchitecture(64, 8, 2, table, 3, cm))
        assert (config.channel_base, config.channel_max, config.channels) == (base, 512, None)
        assert config.mapping_lr_mul == 0.01 and config.use_noise and config.conv_clamp is None
        assert (config.z_dim, config.w_dim, config.mapping_layers) == (8, 8, 2)
    odd = {4: 16, 8: 8}
    config = rosinality_config(RosinalityArchitecture(8, 4, 1, odd, 1, None), mapping_lr_mul=0.5)
    assert config.channel_table() == odd and config.channels == ((4, 16), (8, 8))
    assert (config.img_channels, config.mapping_lr_mul) == (1, 0.5)
    assert noise_buffer_keys(ROSINALITY_CFG) == [
        "synthesis.b4.conv1.noise_const", "synthesis.b8.conv0.noise_const",
        "synthesis.b8.conv1.noise_const", "synthesis.b16.conv0.noise_const",
        "synthesis.b16.conv1.noise_const"]
    assert noise_buffer_keys(ROSINALITY_CFG.replace(use_noise=False)) == []

    # the loaders: lr multiplier, default w_avg estimate (10,000 z, seed 0), messages
    torch.save({"g_ema": g_ema}, tmp_path / "r.pt")
    G = load_rosinality_generator(tmp_path / "r.pt", mapping_lr_mul=1.0)
    assert G.config.mapping_lr_mul == 1.0
    G = load_rosinality_generator(tmp_path / "r.pt")
    assert G.config.mapping_lr_mul == 0.01
    assert torch.equal(G.w_avg, estimate_w_avg(G, 10_000, 0))
    H = rosinality_generator({"g_ema": g_ema}, "src")
    assert H.config.mapping_lr_mul == 0.01 and torch.equal(H.w_avg, G.w_avg)
    p = re.escape(str(tmp_path / "none.pt"))
    with pytest.raises(FileNotFoundError, match=f"^{p}: no such rosinality checkpoint file$"):
        load_rosinality_generator(tmp_path / "none.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointFormatError, match=f"^{re.escape(str(tmp_path / 'empty.pt'))}"
                                                    ": cannot be read as a rosinality torch"):
        load_rosinality_generator(tmp_path / "empty.pt")
    torch.save({"g_ema": {k: v for k, v in g_ema.items() if k != "conv1.conv.weight"}},
               tmp_path / "cut.pt")
    with pytest.raises(CheckpointFormatError,
                       match=f"^{re.escape(str(tmp_path / 'cut.pt'))}: rosinality generator"):
        load_rosinality_generator(tmp_path / "cut.pt")
    bad = g_ema | {"conv1.activate.bias": torch.zeros(3)}
    with pytest.raises(CheckpointFormatError, match="^src: tensor shapes do not match"):
        rosinality_generator(bad, "src")


def split_of(path: Path) -> tuple[dict[str, torch.Tensor], Any]:
    ckpt = torch.load(path, weights_only=True)
    return ckpt["g_ema"], ckpt.get("latent_avg")


# ---------------------------------------------------------------------------------------------
# NVIDIA pickles, written by tests/nvidia_generator_pickle.py (stand-in modules while dumping)


def pickle_globals(payload: bytes) -> set[str]:
    """Every global an (allowlist-clean) pickle names, as seen by the unpickler's gate."""
    seen: set[str] = set()

    class Recording(RestrictedUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            seen.add(f"{module}.{name}")
            return super().find_class(module, name)

    Recording(io.BytesIO(payload), "payload").load()
    return seen


@pytest.fixture(scope="module")
def n_generator() -> StyleGAN2Generator:
    return random_generator(NVIDIA_CFG, seed=3)


@pytest.mark.parametrize("protocol", [2, 4])
def test_nvidia_pickle_import(n_generator: StyleGAN2Generator, tmp_path: Path,
                              protocol: int) -> None:
    marker = tmp_path / "module_src_ran"
    src = f"open({str(marker)!r}, 'w').write('executed')\n"
    exec(src)  # the payload is live: running module_src would leave the marker
    assert marker.exists()
    marker.unlink()
    payload = write_nvidia_pickle(n_generator, tmp_path / "network.pkl", protocol, src)
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules
    names = pickle_globals(payload)
    # tensors pickled with plain pickle go through the nested legacy storage load
    assert "torch.storage._load_from_bytes" in names
    assert "torch._utils._rebuild_parameter" in names
    assert "torch_utils.persistence._reconstruct_persistent_obj" in names
    G = load_nvidia_generator(tmp_path / "network.pkl")
    assert not marker.exists()
    assert G.config == n_generator.config
    assert_same_state(G, n_generator)
    for mode in ("none", "const"):
        torch.testing.assert_close(images(G, mode), images(n_generator, mode), rtol=0, atol=1e-5)


def test_nvidia_pickle_old_numpy_spelling(n_generator: StyleGAN2Generator,
                                          tmp_path: Path) -> None:
    """Pickles from numpy 1.x name ``numpy.core.multiarray``; both spellings are accepted."""
    payload = write_nvidia_pickle(n_generator, tmp_path / "a.pkl", protocol=2)
    assert b"numpy._core.multiarray\nscalar" in payload or b"numpy.core.multiarray\nscalar" \
        in payload
    old = payload.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    (tmp_path / "old.pkl").write_bytes(old)
    names = pickle_globals(old)
    assert "numpy.core.multiarray.scalar" in names and "__builtin__.set" in names
    G = load_nvidia_generator(tmp_path / "old.pkl")
    assert_same_state(G, n_generator)


class _Payload:
    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


@pytest.mark.parametrize("func", ["os.system", "builtins.exec", "torch.load"])
def test_nvidia_pickle_refuses_foreign_globals(n_generator: StyleGAN2Generator, tmp_path: Path,
                                               func: str) -> None:
    import os

    marker = tmp_path / "payload_ran"
    calls = {
        "os.system": (os.system, (f"touch {marker}",)),
        "builtins.exec": (exec, (f"open({str(marker)!r}, 'w')",)),
        "torch.load": (torch.load, (str(marker),)),
    }
    target, args = calls[func]
    if func != "torch.load":  # the payload is live under a plain pickle.loads
        pickle.loads(pickle.dumps(_Payload(target, args)))
        assert marker.exists()
        marker.unlink()
    path = tmp_path / "evil.pkl"
    write_nvidia_pickle(n_generator, path, extra={"x": _Payload(target, args)})
    with pytest.raises(UnsafePickleError) as info:
        read_nvidia_pickle(path)
    message = str(info.value)
    assert str(path) in message and "refusing to load global" in message
    assert f".{target.__name__}'" in message
    assert "\n" not in message
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        load_any_generator(path)
    assert not marker.exists()


def test_nvidia_pickle_refuses_nested_storage_payload(tmp_path: Path) -> None:
    """The nested torch.load of storage bytes is the second hole; it runs weights_only."""
    import os

    marker = tmp_path / "nested_payload_ran"
    nested = io.BytesIO()
    torch.save(_Payload(os.system, (f"touch {marker}",)), nested,
               _use_new_zipfile_serialization=False)
    torch.load(io.BytesIO(nested.getvalue()), weights_only=False)  # live payload
    assert marker.exists()
    marker.unlink()
    import torch.storage as storage_module

    evil = _Payload(storage_module._load_from_bytes, (nested.getvalue(),))
    path = tmp_path / "nested.pkl"
    path.write_bytes(pickle.dumps({"G_ema": evil}))
    with pytest.raises(UnsafePickleError) as info:
        read_nvidia_pickle(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refusing a nested storage payload (global 'posix.system'")
    assert "\n" not in message
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_nested_storage_bytes_load_weights_only() -> None:
    """Plain-pickled tensors carry legacy torch.save bytes; they load with weights_only=True."""
    tensor = torch.randn(3, 4)
    func, (blob,) = tensor.storage().__reduce__()
    assert func.__module__ == "torch.storage" and func.__name__ == "_load_from_bytes"
    assert blob[:2] == b"\x80\x02"  # legacy (non-zip) format, pickle protocol 2
    rebuilt = torch.load(io.BytesIO(blob), weights_only=True)
    assert torch.equal(torch.tensor(rebuilt.tolist()).reshape(3, 4), tensor)


def test_nvidia_pickle_unsupported_config(n_generator: StyleGAN2Generator,
                                          tmp_path: Path) -> None:
    with fake_nvidia_modules() as fake:
        rec = nvidia_records(n_generator, fake, "")
        rec.meta["state"]["_init_kwargs"]["c_dim"] = 10
        payload = pickle.dumps({"G_ema": rec})
    (tmp_path / "cond.pkl").write_bytes(payload)
    with pytest.raises(CheckpointFormatError, match=r"cond\.pkl: unsupported .*c_dim=10"):
        load_nvidia_generator(tmp_path / "cond.pkl")


def test_nvidia_config_known_answers() -> None:
    """NVIDIA's Generator defaults, every stored keyword reaching the config, and every
    refusal in one line."""
    base = {"z_dim": 8, "w_dim": 8, "img_resolution": 16, "img_channels": 3}
    assert nvidia_config(base, "src") == StyleGAN2Config(
        resolution=16, z_dim=8, w_dim=8, mapping_layers=8, img_channels=3, channel_base=32768,
        channel_max=512, use_noise=True, conv_clamp=None, mapping_lr_mul=0.01, w_avg_beta=0.995)
    full = nvidia_config({
        "z_dim": 8, "w_dim": 6, "c_dim": 0, "img_resolution": 16, "img_channels": 1,
        "mapping_kwargs": {"num_layers": 2, "activation": "lrelu", "layer_features": 6,
                           "lr_multiplier": 0.1, "w_avg_beta": 0.9},
        "synthesis_kwargs": {"channel_base": 1024, "channel_max": 64, "use_noise": False,
                             "conv_clamp": 256, "architecture": "skip",
                             "resample_filter": (1, 3, 3, 1)}}, "src")
    assert full == StyleGAN2Config(
        resolution=16, z_dim=8, w_dim=6, mapping_layers=2, img_channels=1, channel_base=1024,
        channel_max=64, use_noise=False, conv_clamp=256.0, mapping_lr_mul=0.1, w_avg_beta=0.9)
    assert type(full.conv_clamp) is float

    def refused(kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(CheckpointFormatError, match=f"^src: {message}$"):
            nvidia_config(kwargs, "src")

    refused(base | {"c_dim": 10, "mapping_kwargs": {"activation": "relu", "layer_features": 7},
                    "synthesis_kwargs": {"architecture": "resnet", "resample_filter": (1, 1)}},
            re.escape("unsupported NVIDIA generator: conditional generator (c_dim=10); "
                      "architecture 'resnet' (only 'skip'); mapping activation 'relu'; "
                      "mapping layer_features=7 != w_dim; resample_filter [1, 1]"))
    lack = "G_ema constructor arguments lack z_dim, w_dim, img_resolution or img_channels"
    refused({"z_dim": 8}, f"{lack} \\('w_dim'\\)")
    refused(base | {"w_dim": None}, f"{lack} \\(int\\(\\) argument must be .*\\)")
    refused(base | {"img_resolution": 48}, "resolution must be a power of two >= 4, got 48")


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_nvidia_records_known_answers() -> None:
    """The unpickler's pieces called directly: persistent records, their state-dict walk and
    constructor arguments, the TF network record, EasyDict, and the tensor rebuilders."""
    reconstruct = ALLOWED_GLOBALS[("torch_utils.persistence", "_reconstruct_persistent_obj")]
    meta = {"type": "class", "version": 6, "class_name": "training.networks.Generator",
            "module_src": "raise SystemExit", "state": {"a": 1}}
    assert reconstruct(meta) == PersistentRecord("training.networks.Generator", 6, {"a": 1})
    assert reconstruct({"type": "class", "state": None}) == PersistentRecord("None", None, {})
    for bad, kind in (([1], "'list'"), ({"type": "function"}, "'function'"), ({}, "None")):
        with pytest.raises(pickle.UnpicklingError,
                           match=rf"^unsupported persistent object \(type {kind}\)$"):
            reconstruct(bad)
    with pytest.raises(pickle.UnpicklingError, match="^persistent object 'x.Y' has a list state; "
                                                     "expected a dict$"):
        reconstruct({"type": "class", "class_name": "x.Y", "state": [1]})
    with pytest.raises(pickle.UnpicklingError,
                       match="^unexpected BUILD state on a persistent-object record$"):
        PersistentRecord("x").__setstate__({})

    t = torch.arange(3.0)
    leaf = PersistentRecord("L", 1, {"_parameters": {"weight": t, "bias": None, "gain": t + 1},
                                     "_buffers": {"gain": t + 2, "seen": t + 3, "none": None},
                                     "_non_persistent_buffers_set": {"gain"}})
    top = PersistentRecord("T", 1, {"_parameters": {"p": t + 4},
                                    "_modules": {"a": PersistentRecord("A", 1, {"_modules": {
                                        "b": leaf, "c": None}})}})
    state = record_state_dict(top)
    assert list(state) == ["p", "a.b.weight", "a.b.gain", "a.b.seen"]
    for tensor, offset in zip(state.values(), (4, 0, 1, 3), strict=True):
        assert torch.equal(tensor, t + offset)
    nested_bad = PersistentRecord("T", 1, {"_modules": {"a": PersistentRecord(
        "A", 1, {"_modules": {"bX": {"weight": t}}})}})
    with pytest.raises(CheckpointFormatError, match="^record: sub-module 'a.bX' is a dict, not a "
                                                    "persistent network object$"):
        record_state_dict(nested_bad)
    with pytest.raises(CheckpointFormatError, match="^src: 'a.b.weight' is a list, not a "
                                                    "tensor$"):
        record_state_dict(PersistentRecord("T", 1, {"_modules": {"a": PersistentRecord(
            "A", 1, {"_modules": {"b": PersistentRecord("L", 1, {"_parameters": {
                "weight": [1.0]}})}})}}), "src")

    args = (np.int64(8), 0, np.int32(6), 16, 3)
    rec = PersistentRecord("G", 1, {"_init_args": args, "_init_kwargs": EasyDict(
        img_channels=1, mapping_kwargs=EasyDict(num_layers=np.int32(2)),
        synthesis_kwargs={"taps": [np.int64(1), 3], "pair": (np.float32(0.5), "a")})})
    kwargs = nvidia_init_kwargs(rec)
    assert kwargs == {"img_channels": 1, "mapping_kwargs": {"num_layers": 2},
                      "synthesis_kwargs": {"taps": [1, 3], "pair": (0.5, "a")},
                      "z_dim": 8, "c_dim": 0, "w_dim": 6, "img_resolution": 16}
    assert type(kwargs["z_dim"]) is int and type(kwargs["synthesis_kwargs"]["taps"][0]) is int
    assert type(kwargs["mapping_kwargs"]) is dict
    assert nvidia_init_kwargs(PersistentRecord("G")) == {}

    tf = TFNetworkRecord()
    tf.__setstate__({"name": "Gs", "static_kwargs": {"r": 32}, "components": {"m": 1},
                     "variables": [("a/b", 1)], "build_module_src": "x"})
    assert (tf.name, tf.static_kwargs, tf.components, tf.variables) == (
        "Gs", {"r": 32}, {"m": 1}, {"a/b": 1})
    with pytest.raises(pickle.UnpicklingError, match="^TF network state is a list$"):
        TFNetworkRecord().__setstate__([1])
    with pytest.raises(pickle.UnpicklingError,
                       match=r"^TF network variables are not \(name, array\) pairs$"):
        TFNetworkRecord().__setstate__({"variables": [1]})

    easy = EasyDict(a=1, __secret__=2)
    assert easy.a == 1
    for name in ("missing", "__secret__", "__reduce_ex__x"):
        with pytest.raises(AttributeError) as info:
            getattr(easy, name)
        assert info.value.args == (name,)

    rebuild_tensor = ALLOWED_GLOBALS[("torch._utils", "_rebuild_tensor_v2")]
    rebuild_parameter = ALLOWED_GLOBALS[("torch._utils", "_rebuild_parameter")]
    rebuild_from_type = ALLOWED_GLOBALS[("torch._tensor", "_rebuild_from_type_v2")]
    storage = torch.arange(4.0).storage()  # a TypedStorage, as pickles hold
    x = rebuild_tensor(storage, 1, (2,), (1,), True, "hooks", {"meta": 1})
    assert torch.equal(x, torch.tensor([1.0, 2.0])) and not x.requires_grad
    with pytest.raises(pickle.UnpicklingError, match="^tensor storage is a list$"):
        rebuild_tensor([1], 0, (1,), (1,), False, None)
    assert rebuild_parameter(x, True, None) is x
    with pytest.raises(pickle.UnpicklingError, match="^parameter data is a list$"):
        rebuild_parameter([1], False, None)
    assert torch.equal(rebuild_from_type(rebuild_tensor, torch.Tensor,
                                         (storage, 0, (2,), (2,), False, None)),
                       torch.tensor([0.0, 2.0]))
    with pytest.raises(pickle.UnpicklingError,
                       match="^tensor-subclass rebuild through a non-tensor function$"):
        rebuild_from_type(print, torch.Tensor, ("x",))
    encode = ALLOWED_GLOBALS[("_codecs", "encode")]
    assert encode("\xe9a", "latin1") == encode("\xe9a", "latin-1") == b"\xe9a"
    for bad in ((b"x", "latin1"), ("x", "utf-8")):
        with pytest.raises(pickle.UnpicklingError, match="^unexpected _codecs.encode call$"):
            encode(*bad)
    load_bytes = ALLOWED_GLOBALS[("torch.storage", "_load_from_bytes")]
    with pytest.raises(pickle.UnpicklingError, match="^storage payload is not bytes$"):
        load_bytes("text")
    with pytest.raises(UnsafePickleError,
                       match=r"^refusing a nested storage payload \(Weights only load failed"):
        load_bytes(b"\x80\x02garbage")


class _PersistentIdPickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        return "storage-0" if isinstance(obj, list) else None


def test_nvidia_reader_and_generator_messages(n_generator: StyleGAN2Generator,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """read_nvidia_pickle / nvidia_generator refusals name the file once; the network keyword
    reaches the import; the nested storage load stays weights-only whatever the environment."""
    import os

    def refused(path: Path, error: type[Exception], message: str, **kwargs: Any) -> None:
        with pytest.raises(error, match=f"^{re.escape(str(path))}: {message}$"):
            load_nvidia_generator(path, **kwargs)

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"G_ema": _Payload(os.system, ("true",))}))
    refused(evil, UnsafePickleError, re.escape(
        "refusing to load global 'posix.system' (only tensors, numpy arrays and NVIDIA "
        "StyleGAN2 network records are allowed in an NVIDIA .pkl)"))
    pid = io.BytesIO()
    _PersistentIdPickler(pid).dump({"G_ema": [1]})
    (tmp_path / "pid.pkl").write_bytes(pid.getvalue())
    refused(tmp_path / "pid.pkl", UnsafePickleError, "unexpected persistent id in pickle")
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"G_ema": 1})[:-3])
    refused(tmp_path / "cut.pkl", CheckpointFormatError,
            r"cannot be read as an NVIDIA stylegan2-ada-pytorch pickle \(pickle data was "
            r"truncated\)")
    refused(tmp_path / "none.pkl", FileNotFoundError, "no such NVIDIA pickle file")
    (tmp_path / "nested.pkl").write_bytes(pickle.dumps({"G_ema": _Payload(
        torch.storage._load_from_bytes, (b"\x80\x02garbage",))}))
    refused(tmp_path / "nested.pkl", UnsafePickleError,
            r"refusing a nested storage payload \((?!global ').+\)")

    with fake_nvidia_modules() as fake:
        G_rec = nvidia_records(random_generator(NVIDIA_CFG, seed=4), fake, "")
        ema_rec = nvidia_records(n_generator, fake, "")
        payload = pickle.dumps({"G": G_rec, "G_ema": ema_rec})
    (tmp_path / "two.pkl").write_bytes(payload)
    assert_same_state(load_nvidia_generator(tmp_path / "two.pkl", network="G"),
                      random_generator(NVIDIA_CFG, seed=4))
    data = read_nvidia_pickle(tmp_path / "two.pkl")
    assert_same_state(nvidia_generator(data, "src"), n_generator)

    def refused_data(obj: Any, message: str, **kwargs: Any) -> None:
        with pytest.raises(CheckpointFormatError, match=f"^src: {message}$"):
            nvidia_generator(obj, "src", **kwargs)

    keys = ", ".join(f"'k{i}'" for i in range(8))
    refused_data({f"k{i}": 1 for i in range(9)},
                 rf"expected an NVIDIA network pickle dict with key 'G_ema'; found \[{keys}\]")
    refused_data([1], "expected an NVIDIA network pickle dict with key 'G'; found list",
                 network="G")
    refused_data({"G_ema": {"w": 1}}, "'G_ema' is a dict, not a persistent network object")
    broken = PersistentRecord("G", 1, {"_modules": {"mapping": {"w": 1}}})
    refused_data({"G_ema": broken}, "sub-module 'mapping' is a dict, not a persistent network "
                                    "object")
    shapes_only = dict(data["G_ema"].state)
    shapes_only["_init_kwargs"] = {}
    no_synthesis = PersistentRecord("G", 1, shapes_only)
    no_synthesis.state["_modules"] = dict(no_synthesis.state["_modules"])
    no_synthesis.state["_modules"]["synthesis"] = PersistentRecord("S", 1, {"_modules": {}})
    refused_data({"G_ema": no_synthesis}, r"cannot infer the generator architecture \(missing "
                                      r"'synthesis\.b<res>\.\*'\)")
    extra = PersistentRecord("G", 1, dict(data["G_ema"].state))
    extra.state["_parameters"] = {"stray": torch.zeros(1)}
    refused_data({"G_ema": extra}, "tensors do not match a 32x32 StyleGAN2 generator; "
                                   "missing: none; unknown: stray")

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    nested = io.BytesIO()
    torch.save(_Payload(os.system, (f"touch {tmp_path / 'ran'}",)), nested,
               _use_new_zipfile_serialization=False)
    (tmp_path / "nested2.pkl").write_bytes(pickle.dumps({"G_ema": _Payload(
        torch.storage._load_from_bytes, (nested.getvalue(),))}))
    refused(tmp_path / "nested2.pkl", UnsafePickleError,
            r"refusing a nested storage payload \(global 'posix\.system'.*\)")
    assert not (tmp_path / "ran").exists()


def tf_layout(state: dict[str, torch.Tensor]) -> dict[str, dict[str, np.ndarray]]:
    """Native tensors in the TF StyleGAN2 variable layout (spec §1.7(c), inverted)."""
    np_state = {k: v.numpy() for k, v in state.items()}
    mapping = {}
    i = 0
    while f"mapping.fc{i}.weight" in np_state:
        mapping[f"Dense{i}/weight"] = np_state[f"mapping.fc{i}.weight"].T.copy()
        mapping[f"Dense{i}/bias"] = np_state[f"mapping.fc{i}.bias"]
        i += 1
    res_max = max(int(k.split(".")[1][1:]) for k in np_state if k.startswith("synthesis."))
    synthesis = {"4x4/Const/const": np_state["synthesis.b4.const"][None], "lod": np.float32(0)}
    layers = [("4x4/Conv", "synthesis.b4.conv1", False)]
    res = 8
    while res <= res_max:
        layers += [(f"{res}x{res}/Conv0_up", f"synthesis.b{res}.conv0", True),
                   (f"{res}x{res}/Conv1", f"synthesis.b{res}.conv1", False)]
        res *= 2
    for index, (tf_pre, n_pre, up) in enumerate(layers):
        weight = np_state[f"{n_pre}.weight"].transpose(2, 3, 1, 0)  # [k, k, I, O]
        synthesis[f"{tf_pre}/weight"] = weight[::-1, ::-1].copy() if up else weight
        synthesis[f"{tf_pre}/bias"] = np_state[f"{n_pre}.bias"]
        synthesis[f"{tf_pre}/mod_weight"] = np_state[f"{n_pre}.affine.weight"].T.copy()
        synthesis[f"{tf_pre}/mod_bias"] = np_state[f"{n_pre}.affine.bias"] - 1
        synthesis[f"{tf_pre}/noise_strength"] = np_state[f"{n_pre}.noise_strength"]
        synthesis[f"noise{index}"] = np_state[f"{n_pre}.noise_const"][None, None]
    res = 4
    while res <= res_max:
        n_pre = f"synthesis.b{res}.torgb"
        synthesis[f"{res}x{res}/ToRGB/weight"] = np_state[f"{n_pre}.weight"].transpose(2, 3, 1, 0)
        synthesis[f"{res}x{res}/ToRGB/bias"] = np_state[f"{n_pre}.bias"]
        synthesis[f"{res}x{res}/ToRGB/mod_weight"] = np_state[f"{n_pre}.affine.weight"].T.copy()
        synthesis[f"{res}x{res}/ToRGB/mod_bias"] = np_state[f"{n_pre}.affine.bias"] - 1
        res *= 2
    return {"mapping": mapping, "synthesis": synthesis,
            "Gs": {"dlatent_avg": np_state["mapping.w_avg"]}}


def write_tf_pickle(G: StyleGAN2Generator, path: Path, module_src: str = "") -> None:
    layout = tf_layout(G.state_dict())
    with fake_tf_network_class() as Network:
        def net(name: str, variables: dict[str, np.ndarray], **components: Any) -> Any:
            return Network({"version": 4, "name": name, "static_kwargs": {"resolution": 32},
                            "components": components, "build_module_src": module_src,
                            "build_func_name": "G_main", "variables": list(variables.items())})

        gs = net("Gs", layout["Gs"], mapping=net("G_mapping", layout["mapping"]),
                 synthesis=net("G_synthesis", layout["synthesis"]))
        payload = pickle.dumps((net("G", {}), net("D", {}), gs), protocol=3)
    path.write_bytes(payload)


def test_tensorflow_pickle_import(tmp_path: Path) -> None:
    G = random_generator(NVIDIA_CFG.replace(conv_clamp=None), seed=21)
    marker = tmp_path / "build_module_src_ran"
    write_tf_pickle(G, tmp_path / "stylegan2-tiny.pkl",
                    module_src=f"open({str(marker)!r}, 'w').write('executed')\n")
    back = load_any_generator(tmp_path / "stylegan2-tiny.pkl")
    assert not marker.exists()
    assert back.config.channel_table() == G.config.channel_table()
    for key, value in G.state_dict().items():
        torch.testing.assert_close(back.state_dict()[key], value, rtol=0, atol=1e-6)
    for mode in ("none", "const"):
        torch.testing.assert_close(images(back, mode), images(G, mode), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# genforce


def test_genforce_conventions_and_round_trip(n_generator: StyleGAN2Generator,
                                             tmp_path: Path) -> None:
    G = random_generator(NVIDIA_CFG.replace(conv_clamp=None), seed=11)
    native = G.state_dict()
    g = native_to_genforce(native)
    # value conventions: style bias without the +1, up-conv weights flipped, others as stored
    torch.testing.assert_close(g["synthesis.layer3.style.bias"],
                               native["synthesis.b16.conv0.affine.bias"] - 1)
    assert torch.equal(g["synthesis.layer3.weight"],
                       native["synthesis.b16.conv0.weight"].flip(2, 3))
    assert torch.equal(g["synthesis.layer4.weight"], native["synthesis.b16.conv1.weight"])
    assert torch.equal(g["synthesis.output2.bias"], native["synthesis.b16.torgb.bias"])
    assert g["synthesis.early_layer.const"].shape == (1, 64, 4, 4)
    assert g["synthesis.layer0.noise"].shape == (1, 1, 4, 4)
    assert torch.equal(g["truncation.w_avg"], native["mapping.w_avg"])
    # genforce keeps FIR kernels as buffers; they are ignored
    g["synthesis.layer1.filter.kernel"] = torch.ones(1, 1, 4, 4)
    g["synthesis.upsample.kernel"] = torch.ones(1, 1, 4, 4)
    torch.save({"generator": {k: v + 1 for k, v in g.items()}, "generator_smooth": g},
               tmp_path / "stylegan2_tiny32.pth")
    back = load_any_generator(tmp_path / "stylegan2_tiny32.pth")
    assert back.config == G.config
    for key, value in native.items():
        torch.testing.assert_close(back.state_dict()[key], value, rtol=0, atol=1e-6)
    for mode in ("none", "const"):
        torch.testing.assert_close(images(back, mode), images(G, mode), rtol=0, atol=1e-5)
    # without generator_smooth the plain generator is used
    torch.save({"generator": g}, tmp_path / "plain.pth")
    assert torch.equal(load_genforce_generator(tmp_path / "plain.pth").w_avg, G.w_avg)


def test_genforce_unsupported_layouts() -> None:
    G = random_generator(NVIDIA_CFG.replace(conv_clamp=None), seed=12)
    g = native_to_genforce(G.state_dict())
    with pytest.raises(CheckpointFormatError, match=r"does not have: synthesis\.skip_layer0"):
        genforce_to_native({**g, "synthesis.skip_layer0.weight": torch.zeros(1)})
    with pytest.raises(CheckpointFormatError, match="repeat_w=True"):
        genforce_to_native({**g, "truncation.w_avg": torch.zeros(8 * G.w_dim)})
    with pytest.raises(CheckpointFormatError, match=r"missing key 'synthesis\.layer2\.bias'"):
        genforce_to_native({k: v for k, v in g.items() if k != "synthesis.layer2.bias"})


def test_genforce_layouts_defaults_and_messages(tmp_path: Path) -> None:
    """Layer 0 (4x4) is not an up-conv, layer 1 is; a 16-px generator (three outputs) with one
    mapping layer and z_dim != w_dim converts; the mapping lr multiplier defaults to 0.01; each
    refusal is anchored and names its source."""
    G = random_generator(NVIDIA_CFG.replace(conv_clamp=None), seed=14)
    native = G.state_dict()
    g = native_to_genforce(native)
    assert torch.equal(g["synthesis.layer0.weight"], native["synthesis.b4.conv1.weight"])
    assert torch.equal(g["synthesis.layer1.weight"],
                       native["synthesis.b8.conv0.weight"].flip(2, 3))
    assert genforce_generator(g, "src").config.mapping_lr_mul == 0.01
    small = random_generator(StyleGAN2Config(resolution=16, z_dim=16, w_dim=24, mapping_layers=1,
                                             channel_base=256, channel_max=32), seed=15)
    back = genforce_generator({"generator": native_to_genforce(small.state_dict())}, "src")
    assert back.config == small.config
    assert_same_state(back, small)
    torch.save({"generator_smooth": g}, tmp_path / "g.pth")
    assert load_genforce_generator(tmp_path / "g.pth").config.mapping_lr_mul == 0.01
    assert load_genforce_generator(tmp_path / "g.pth",
                                   mapping_lr_mul=0.1).config.mapping_lr_mul == 0.1
    (tmp_path / "cut.pth").write_bytes((tmp_path / "g.pth").read_bytes()[:100])
    p = re.escape(str(tmp_path / "cut.pth"))
    with pytest.raises(CheckpointFormatError,
                       match=f"^{p}: cannot be read as a genforce torch.save checkpoint"):
        load_genforce_generator(tmp_path / "cut.pth")

    def refused(bad: Any, message: str) -> None:
        with pytest.raises(CheckpointFormatError, match=f"^src: {message}$"):
            genforce_generator(bad, "src")

    refused({"model": g}, "expected a genforce checkpoint with 'generator_smooth' or "
                          "'generator' holding a StyleGAN2 generator state dict")
    refused({k: v for k, v in g.items() if k != "synthesis.layer2.bias"},
            r"missing key 'synthesis\.layer2\.bias' for a 32x32 genforce generator")
    refused({k: v for k, v in g.items() if not k.startswith("mapping.")},
            r"genforce generator without mapping layers \(expected 'mapping\.dense0\.weight'\)")
    refused({k: v for k, v in g.items() if k != "truncation.w_avg"},
            r"genforce generator lacks 'truncation\.w_avg'")
    refused(g | {"truncation.w_avg": torch.zeros(2 * G.w_dim)},
            r"'truncation\.w_avg' has 48 entries; only repeat_w=True generators \(w_avg of size "
            r"24\) are supported")
    refused(g | {"synthesis.layer2.bias": torch.zeros(3)},
            r"tensor shapes do not match the inferred architecture: synthesis\.b8\.conv1\.bias "
            r"\(3,\) \(expected \(64,\)\)")
    refused(g | {"mapping.dense0.weight": torch.zeros(G.w_dim, 0)}, "z_dim must be >= 1, got 0")
    # a noise strength stored with shape [1] reads as the scalar it is
    assert_same_state(genforce_generator(g | {"synthesis.layer0.noise_strength":
                                              g["synthesis.layer0.noise_strength"].reshape(1)},
                                         "src"), G)
    torch.save({"model": g}, tmp_path / "other.pth")
    p = re.escape(str(tmp_path / "other.pth"))
    with pytest.raises(CheckpointFormatError, match=f"^{p}: expected a genforce checkpoint"):
        load_genforce_generator(tmp_path / "other.pth")
    with pytest.raises(CheckpointFormatError,
                       match=r"^genforce state dict: not a genforce StyleGAN2 generator state dict "
                             r"\(expected key 'synthesis\.early_layer\.const'\)$"):
        genforce_to_native({})


def test_nvidia_pickle_without_init_kwargs(n_generator: StyleGAN2Generator,
                                           tmp_path: Path) -> None:
    """No stored constructor arguments: the architecture comes from the tensor shapes."""
    with fake_nvidia_modules() as fake:
        rec = nvidia_records(n_generator, fake, "")
        rec.meta["state"]["_init_kwargs"] = fake.EasyDict()
        payload = pickle.dumps({"G_ema": rec})
    (tmp_path / "bare.pkl").write_bytes(payload)
    G = load_nvidia_generator(tmp_path / "bare.pkl")
    assert G.config.channel_table() == n_generator.config.channel_table()
    assert G.config.conv_clamp is None  # not recoverable from shapes
    assert_same_state(G, n_generator)


def test_tensorflow_pickle_strict(tmp_path: Path) -> None:
    G = random_generator(NVIDIA_CFG.replace(conv_clamp=None), seed=22)
    variables = {f"{group}/{k}" if group != "Gs" else k: v
                 for group, layer in tf_layout(G.state_dict()).items() for k, v in layer.items()}
    tf_to_native(variables)  # complete: converts
    with pytest.raises(CheckpointFormatError, match=r"unknown: synthesis/8x8/Skip/weight"):
        tf_to_native({**variables, "synthesis/8x8/Skip/weight": np.zeros(1)})
    del variables["synthesis/noise3"]
    with pytest.raises(CheckpointFormatError, match=r"missing: synthesis/noise3"):
        tf_to_native(variables)


def tf_record(name: str, variables: dict[str, Any], static_kwargs: dict[str, Any] | None = None,
              **components: Any) -> TFNetworkRecord:
    """A TF network as the restricted unpickler returns it."""
    record = TFNetworkRecord.__new__(TFNetworkRecord)
    record.__setstate__({"name": name, "static_kwargs": static_kwargs or {},
                         "components": components, "variables": list(variables.items())})
    return record


def tf_gs(G: StyleGAN2Generator, **static_kwargs: Any) -> TFNetworkRecord:
    layout = tf_layout(G.state_dict())
    return tf_record("Gs", layout["Gs"], static_kwargs,
                     mapping=tf_record("G_mapping", layout["mapping"]),
                     synthesis=tf_record("G_synthesis", layout["synthesis"]))


def test_tensorflow_networks_kwargs_and_messages(tmp_path: Path) -> None:
    """``G_ema`` / ``Gs`` read the third network, ``G`` the first; the static kwargs are read
    (architecture, label_size, mapping_lrmul); every refusal is anchored and names its source;
    tensors come out float32 and contiguous whatever the variables' dtype."""
    G, G_train = (random_generator(NVIDIA_CFG.replace(conv_clamp=None), seed=s) for s in (23, 24))
    data = (tf_gs(G_train), tf_record("D", {}), tf_gs(G))
    empty = (tf_record("G", {}), tf_record("D", {}))
    assert_same_state(tf_generator(data, "src"), G)
    for network, want in (("G_ema", G), ("Gs", G), ("G", G_train)):
        assert_same_state(tf_generator(data, "src", network=network), want)
    write_tf_pickle(G, tmp_path / "tf.pkl")
    assert_same_state(load_tf_generator(tmp_path / "tf.pkl"), G)
    p = re.escape(str(tmp_path / "tf.pkl"))
    with pytest.raises(ValueError, match=rf"^network must be 'G_ema' \(= 'Gs'\) or 'G' for {p}, "
                                         r"got 'D'$"):
        load_tf_generator(tmp_path / "tf.pkl", network="D")

    def refused(bad: Any, message: str) -> None:
        with pytest.raises(CheckpointFormatError, match=f"^src: {message}$"):
            tf_generator(bad, "src")

    for bad in (list(data), data[:2], (1, 2, 3)):
        refused(bad, r"expected a TF StyleGAN2 pickle holding \(G, D, Gs\)")
    refused((*empty, tf_gs(G, architecture="resnet")),
            r"unsupported TF generator architecture 'resnet' \(only 'skip'\)")
    refused((*empty, tf_gs(G, label_size=5)),
            r"conditional TF generators \(label_size=5\) are not supported")
    for kwargs in ({"architecture": "skip"}, {"label_size": None}, {"label_size": 0}):
        assert_same_state(tf_generator((*empty, tf_gs(G, **kwargs)), "src"), G)
    fast = tf_generator((*empty, tf_gs(G, mapping_lrmul=0.1)), "src")
    assert fast.config.mapping_lr_mul == 0.1
    gs = tf_gs(G)
    gs.components["mapping"] = {"Dense0/weight": np.zeros(1)}
    refused((*empty, gs), "component 'mapping' is a dict, not a TF network")
    gs = tf_gs(G)
    gs.components["synthesis"].variables["4x4/Conv/bias"] = [0.0]
    refused((*empty, gs), "TF variable 'synthesis/4x4/Conv/bias' is a list, not a numpy array")
    with pytest.raises(CheckpointFormatError, match="^TF network: component 'mapping' is a dict"):
        tf_variables(tf_record("Gs", {}, mapping={}))
    gs = tf_gs(G)
    del gs.components["synthesis"].variables["4x4/Conv/bias"]
    refused((*empty, gs), "TF variables do not match a skip-architecture StyleGAN2 generator; "
                              "missing: synthesis/4x4/Conv/bias; unknown: none")

    gs = tf_gs(G)
    gs.components["synthesis"].variables["8x8/Conv1/bias"] = np.zeros(3, np.float32)
    refused((*empty, gs), r"tensor shapes do not match the inferred architecture: "
                          r"synthesis\.b8\.conv1\.bias \(3,\) \(expected \(64,\)\)")
    gs = tf_gs(G)
    gs.components["mapping"].variables["Dense0/weight"] = np.zeros((0, G.w_dim), np.float32)
    refused((*empty, gs), "z_dim must be >= 1, got 0")

    variables = tf_variables(tf_gs(G))
    not_generator = (r"not a TF StyleGAN2 generator \(expected 'mapping/Dense0/weight' and "
                     r"'synthesis/4x4/\.\.\.' variables\)")
    for bad in ({}, {k: v for k, v in variables.items() if not k.startswith("mapping/")},
                {k: v for k, v in variables.items() if not k.startswith("synthesis/4x4/")}):
        with pytest.raises(CheckpointFormatError, match=f"^TF network: {not_generator}$"):
            tf_to_native(bad)
    wide = tf_to_native({k: np.asarray(v, dtype=np.float64) for k, v in variables.items()})
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in wide.values())
    for key, value in G.state_dict().items():
        torch.testing.assert_close(wide[key], value, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The format-detecting loader and its errors


def one_line_error(exc_type: type[BaseException], path: Path, match: str) -> None:
    with pytest.raises(exc_type) as info:
        load_any_generator(path)
    message = str(info.value)
    assert str(path) in message, message
    assert "\n" not in message, message
    assert match in message, message


def test_loader_dispatches_all_formats(r_small: StyleGAN2Generator,
                                       n_generator: StyleGAN2Generator, tmp_path: Path) -> None:
    save_generator(n_generator, tmp_path / "native")
    assert_same_state(load_any_generator(tmp_path / "native.safetensors"), n_generator)
    assert_same_state(load_any_generator(tmp_path / "native.json"), n_generator)
    assert_same_state(load_any_generator(tmp_path / "native"), n_generator)
    save_rosinality_generator(r_small, tmp_path / "r.pt")
    assert_same_state(load_any_generator(tmp_path / "r.pt"), r_small)
    g_ema, _ = native_to_rosinality(r_small.state_dict())
    torch.save(g_ema, tmp_path / "bare.pth")  # a bare g_ema state dict
    bare = load_any_generator(tmp_path / "bare.pth", w_avg_samples=500)
    assert bare.config == r_small.config
    write_nvidia_pickle(n_generator, tmp_path / "n.pkl")
    assert_same_state(load_any_generator(tmp_path / "n.pkl"), n_generator)
    _, json_path = convert_to_native(tmp_path / "n.pkl", tmp_path / "converted")
    assert read_checkpoint_json(json_path)["meta"] == {"converted_from": "n.pkl",
                                                       "source_format": "nvidia"}
    assert_same_state(load_any_generator(tmp_path / "converted"), n_generator)


def test_loader_errors(r_small: StyleGAN2Generator, tmp_path: Path) -> None:
    save_rosinality_generator(r_small, tmp_path / "good.pt")
    blob = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(blob[: len(blob) // 3])
    one_line_error(CheckpointFormatError, tmp_path / "truncated.pt", "weights_only")
    (tmp_path / "garbage.pkl").write_bytes(b"\x80\x04not a pickle at all")
    one_line_error(CheckpointFormatError, tmp_path / "garbage.pkl", "NVIDIA")
    (tmp_path / "empty.pkl").write_bytes(b"")
    one_line_error(CheckpointFormatError, tmp_path / "empty.pkl", "NVIDIA")
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 3}, tmp_path / "other.pt")
    one_line_error(CheckpointFormatError, tmp_path / "other.pt", "g_ema")
    resnet = {"conv1.weight": torch.zeros(8, 3, 7, 7), "bn1.weight": torch.zeros(8),
              "layer1.0.conv1.weight": torch.zeros(8, 8, 3, 3), "fc.weight": torch.zeros(10, 8)}
    torch.save(resnet, tmp_path / "resnet.pth")
    one_line_error(CheckpointFormatError, tmp_path / "resnet.pth", "g_ema")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")  # a pickled module, not tensors
    one_line_error(CheckpointFormatError, tmp_path / "module.pt",
                   "pickled 'torch.nn.modules.linear.Linear' object")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    one_line_error(ValueError, tmp_path / "model.onnx", ".safetensors")
    one_line_error(FileNotFoundError, tmp_path / "missing.pt", "missing.pt")
    one_line_error(FileNotFoundError, tmp_path / "no_such_stem", "no_such_stem.safetensors")
    # a torch.save zip under .pkl is read as a torch checkpoint, not as an NVIDIA pickle
    (tmp_path / "zip.pkl").write_bytes(blob)
    assert_same_state(load_any_generator(tmp_path / "zip.pkl"), r_small)
    # so is the legacy (pre-1.6, non-zip) torch.save format, under any torch extension
    legacy = torch.load(tmp_path / "good.pt", weights_only=True)
    for name in ("legacy.pt", "legacy.pkl"):
        torch.save(legacy, tmp_path / name, _use_new_zipfile_serialization=False)
        assert_same_state(load_any_generator(tmp_path / name), r_small)
    # safetensors without the JSON beside it
    save_generator(r_small, tmp_path / "lonely")
    (tmp_path / "lonely.json").unlink()
    with pytest.raises(FileNotFoundError, match="lonely.json not found"):
        load_any_generator(tmp_path / "lonely.safetensors")


def test_loader_detection_hints_and_messages(r_small: StyleGAN2Generator,
                                             n_generator: StyleGAN2Generator,
                                             tmp_path: Path) -> None:
    """genforce files are found by either key or as a bare state dict; every keyword reaches
    the format's converter; forced formats and network names are used; each refusal names the
    file."""
    G = random_generator(NVIDIA_CFG.replace(conv_clamp=None), seed=13)
    g = native_to_genforce(G.state_dict())
    for name, ckpt in (("plain", {"generator": g}), ("smooth", {"generator_smooth": g}),
                       ("bare", g)):
        for suffix in (".pth", ".pkl"):  # a torch.save zip under .pkl is read as one
            torch.save(ckpt, tmp_path / f"{name}{suffix}")
            assert_same_state(load_any_generator(tmp_path / f"{name}{suffix}"), G)
    assert load_any_generator(tmp_path / "bare.pth",
                              mapping_lr_mul=0.1).config.mapping_lr_mul == 0.1

    # rosinality without latent_avg: w_avg from 10,000 z of seed 0 unless told otherwise
    g_ema, _ = native_to_rosinality(r_small.state_dict())
    torch.save(g_ema, tmp_path / "r.pth")
    default = load_any_generator(tmp_path / "r.pth")
    explicit = load_any_generator(tmp_path / "r.pth", w_avg_samples=10_000, seed=0)
    assert torch.equal(default.w_avg, explicit.w_avg)
    other = load_any_generator(tmp_path / "r.pth", w_avg_samples=500, seed=3)
    for changed in ({"w_avg_samples": 10_000, "seed": 3}, {"w_avg_samples": 500, "seed": 0}):
        assert not torch.equal(load_any_generator(tmp_path / "r.pth", **changed).w_avg,
                               other.w_avg)
    assert {p.device.type for p in load_any_generator(tmp_path / "r.pth",
                                                      device="meta").parameters()} == {"meta"}
    assert load_any_generator(tmp_path / "r.pth", format="rosinality",
                              mapping_lr_mul=0.1).config.mapping_lr_mul == 0.1
    _, json_path = convert_to_native(tmp_path / "r.pth", tmp_path / "conv", format="rosinality",
                                     w_avg_samples=500, seed=3)
    assert read_checkpoint_json(json_path)["meta"]["source_format"] == "rosinality"
    assert torch.equal(load_any_generator(tmp_path / "conv").w_avg, other.w_avg)

    def refused(path: Path, message: str, **kwargs: Any) -> None:
        with pytest.raises(ValueError, match=f"^{re.escape(str(path))}{message}"):
            load_any_generator(path, **kwargs)

    with pytest.raises(ValueError, match=r"^format must be one of \('native', 'torch', "
                                         r"'rosinality', 'genforce', 'nvidia'\), got 'onnx'$"):
        load_any_generator(tmp_path / "r.pth", format="onnx")
    refused(tmp_path / "plain.pth", ": ", format="rosinality")  # genforce file read as rosinality
    refused(tmp_path / "r.pth", ": ", format="genforce")
    write_nvidia_pickle(n_generator, tmp_path / "n.pkl")
    refused(tmp_path / "n.pkl", ": expected an NVIDIA network pickle dict with key 'D_ema'",
            network="D_ema")
    write_tf_pickle(G, tmp_path / "tf.pkl")
    with pytest.raises(ValueError, match=f"for {re.escape(str(tmp_path / 'tf.pkl'))}, "
                                         "got 'D_ema'$"):
        load_any_generator(tmp_path / "tf.pkl", network="D_ema")
    torch.save({f"k{i:02d}": torch.zeros(1) for i in range(10)}, tmp_path / "ten.pt")
    keys = ", ".join(f"'k{i:02d}'" for i in range(8))
    refused(tmp_path / "ten.pt", rf": not a StyleGAN2 generator checkpoint; .* found \[{keys}\]$")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    refused(tmp_path / "list.pt", ": not a StyleGAN2 generator checkpoint; .* found list$")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "r.pth").read_bytes()[:200])
    refused(tmp_path / "cut.pt", ": cannot be read as a StyleGAN2 generator torch.save checkpoint "
                                 r"with weights_only=True \(")


def test_foreign_helpers_known_answers(tmp_path: Path) -> None:
    """The shared importer pieces: message helpers, the strict load (its messages, a frozen
    result), the architecture read off shapes (NVIDIA's channel rules first, an explicit table
    otherwise, lr multiplier 0.01 by default) and the reader's messages."""
    assert short_list([]) == "none"
    assert short_list("abcdefgh") == "a, b, c, d, e, f, g, h"
    assert short_list("abcdefghi") == "a, b, c, d, e, f, g, h, ... (9 in all)"
    assert short_list("abc", 2) == "a, b, ... (3 in all)"
    assert first_line(EOFError()) == "EOFError"
    assert first_line(ValueError("  one\ntwo ")) == "one"

    G = random_generator(NVIDIA_CFG.replace(conv_clamp=None), seed=16)
    state = G.state_dict()
    config = infer_native_config(state, "src")
    assert config.mapping_lr_mul == 0.01 and config.conv_clamp is None
    H = generator_from_state_dict(config, state, "src")
    assert_same_state(H, G)
    assert not any(p.requires_grad for p in H.parameters()) and not H.training

    def refused(bad: dict[str, torch.Tensor], message: str) -> None:
        with pytest.raises(CheckpointFormatError, match=f"^src: {message}$"):
            generator_from_state_dict(config, bad, "src")

    head = "tensors do not match a 32x32 StyleGAN2 generator; "
    refused({k: v for k, v in state.items() if k != "mapping.fc2.bias"},
            head + r"missing: mapping\.fc2\.bias; unknown: none")
    refused(state | {"extra": torch.zeros(1)}, head + "missing: none; unknown: extra")
    biases = [k for k in state if k.endswith(("conv0.bias", "conv1.bias"))]
    assert len(biases) == 7
    refused(state | {k: torch.zeros(3) for k in biases},
            r"tensor shapes do not match the inferred architecture: "
            r"(synthesis\.b\d+\.conv[01]\.bias \(3,\) \(expected \(\d+,\)\), ){4}"
            r"\.\.\. \(7 in all\)")
    no_const = r"^src: cannot infer the generator architecture \(missing 'synthesis\.b4\.const'\)$"
    with pytest.raises(CheckpointFormatError, match=no_const):
        infer_native_config({k: v for k, v in state.items() if k != "synthesis.b4.const"}, "src")

    # NVIDIA's rule with (32768, 512), then (16384, 512), is recognised; other tables are explicit
    for base, res in ((32768, 16), (16384, 64)):
        cfg = StyleGAN2Config(resolution=res, z_dim=8, w_dim=8, mapping_layers=1,
                              channel_base=base)
        with torch.device("meta"):
            meta = StyleGAN2Generator(cfg).state_dict()
        got = infer_native_config(meta, "src", mapping_lr_mul=0.1)
        assert (got.channel_base, got.channel_max, got.channels) == (base, 512, None)
        assert got.replace(use_noise=True) == cfg.replace(mapping_lr_mul=0.1)
    odd = StyleGAN2Config(resolution=16, z_dim=8, w_dim=8, mapping_layers=1,
                          channels={4: 32, 8: 64, 16: 16})
    with torch.device("meta"):
        meta = StyleGAN2Generator(odd).state_dict()
    assert infer_native_config(meta, "src") == odd.replace(use_noise=True)

    (tmp_path / "empty.pt").write_bytes(b"")
    p = re.escape(str(tmp_path / "empty.pt"))
    unreadable = r"torch\.save checkpoint with weights_only=True \(EOFError\)$"
    with pytest.raises(CheckpointFormatError,
                       match=f"^{p}: cannot be read as a genforce {unreadable}"):
        read_torch_checkpoint(tmp_path / "empty.pt", "genforce")
    p = re.escape(str(tmp_path / "none.pt"))
    with pytest.raises(FileNotFoundError, match=f"^{p}: no such genforce checkpoint file$"):
        read_torch_checkpoint(tmp_path / "none.pt", "genforce")


def test_torch_reader_refuses_pickled_objects_even_when_the_environment_allows_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """weights_only=True is passed explicitly, so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD (which flips
    torch.load's default) cannot make the reader unpickle arbitrary objects."""
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(CheckpointFormatError, match="holds a pickled 'torch.nn.modules.linear"):
        read_torch_checkpoint(tmp_path / "module.pt", "genforce")

