"""Known-answer tests for the pure-PyTorch StyleGAN2: ops, generator, discriminator, checkpoints."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.generator import Generator, broadcast_ws
from models.stylegan2 import (
    StyleGAN2Config,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    get_preset,
    load_generator,
    save_generator,
)
from models.stylegan2.ops import modulated_conv2d, setup_filter, upfirdn2d, upsample2d


def _micro(**changes: object) -> StyleGAN2Config:
    return get_preset("micro32").replace(**changes)


def _make(config: StyleGAN2Config, seed: int = 0) -> StyleGAN2Generator:
    torch.manual_seed(seed)
    G = StyleGAN2Generator(config).eval()
    # non-trivial w_avg and biases so truncation / bias paths are exercised
    with torch.no_grad():
        G.mapping.w_avg.normal_(generator=torch.Generator().manual_seed(seed + 1))
        for name, p in G.named_parameters():
            if name.endswith(".bias") and "affine" not in name:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    return G


# ----------------------------------------------------------------------------- upfirdn2d


def _upfirdn2d_direct(x: np.ndarray, f: np.ndarray, up: int, down: int,
                      pad: tuple[int, int, int, int]) -> np.ndarray:
    """Literal definition with numpy loops: zero-insert, pad/crop, true convolution, decimate."""
    n, c, h, w = x.shape
    px0, px1, py0, py1 = pad
    z = np.zeros((n, c, h * up, w * up), dtype=np.float64)
    z[:, :, ::up, ::up] = x
    hp, wp = h * up + py0 + py1, w * up + px0 + px1
    padded = np.zeros((n, c, hp, wp))
    for i in range(hp):
        for j in range(wp):
            si, sj = i - py0, j - px0
            if 0 <= si < h * up and 0 <= sj < w * up:
                padded[:, :, i, j] = z[:, :, si, sj]
    kh, kw = f.shape
    out = np.zeros((n, c, hp - kh + 1, wp - kw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            acc = np.zeros((n, c))
            for a in range(kh):
                for b in range(kw):
                    # true convolution: output(i, j) = sum padded(i + a, j + b) * f(kh-1-a, kw-1-b)
                    acc += padded[:, :, i + a, j + b] * f[kh - 1 - a, kw - 1 - b]
            out[:, :, i, j] = acc
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("up,down,pad", [
    (1, 1, (1, 1, 1, 1)),
    (2, 1, (2, 1, 2, 1)),
    (1, 2, (2, 2, 1, 0)),
    (2, 2, (0, 3, 1, 2)),
    (1, 1, (-1, 2, 0, -1)),  # negative padding crops
    (1, 1, (0, 0, 0, 0)),
    (2, 1, (1, -2, -1, 0)),  # crop on the right and at the top
])
def test_upfirdn2d_matches_direct_definition(up: int, down: int, pad: tuple) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 5, 6))
    f = rng.normal(size=(3, 4))  # asymmetric, so a missing flip would be caught
    got = upfirdn2d(torch.tensor(x, dtype=torch.float64), torch.tensor(f), up=up, down=down,
                    pad=pad).numpy()
    want = _upfirdn2d_direct(x, f, up, down, pad)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_fir_kernel_and_upsample_preserve_dc() -> None:
    f = setup_filter()
    np.testing.assert_allclose(f.numpy() * 64, np.outer([1, 3, 3, 1], [1, 3, 3, 1]))
    x = torch.full((1, 2, 6, 6), 3.0)
    y = upsample2d(x, f)
    assert y.shape == (1, 2, 12, 12)
    # interior of an upsampled constant stays constant (DC gain 1 after the x4 gain)
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 3.0))


# ----------------------------------------------------------------------------- modulated conv


def _modconv_reference(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                       demodulate: bool, up: int) -> torch.Tensor:
    """Slow per-sample loop: modulate, demodulate, then conv (or transposed conv + FIR)."""
    outs = []
    for i in range(x.shape[0]):
        w = weight * styles[i].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / torch.sqrt(w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        xi = x[i:i + 1]
        if up == 1:
            outs.append(F.conv2d(xi, w, padding=weight.shape[-1] // 2))
        else:
            y = F.conv_transpose2d(xi, w.transpose(0, 1), stride=2)
            outs.append(upfirdn2d(y, setup_filter(), pad=1, gain=4))
    return torch.cat(outs)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("fused", [False, True])
def test_modulated_conv_forms_agree(up: int, demodulate: bool, fused: bool) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 6, 6, generator=g)
    weight = torch.randn(4, 5, 3, 3, generator=g)
    styles = torch.randn(3, 5, generator=g) + 1
    got = modulated_conv2d(x, weight, styles, demodulate=demodulate, up=up,
                           resample_filter=setup_filter(), fused=fused)
    want = _modconv_reference(x, weight, styles, demodulate, up)
    assert got.shape == (3, 4, 6 * up, 6 * up)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_generator_fused_and_nonfused_images_agree(monkeypatch) -> None:
    """Both forms give the same image, and the flag reaches every modulated conv (the
    non-fused form is the default everywhere: it is the fast one on CPU)."""
    import models.stylegan2.generator as generator_module

    G = _make(_micro())
    ws = G.mapping_ws(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(2)))
    calls: list[bool] = []

    def spy(*args, **kwargs):
        calls.append(kwargs["fused"])
        return modulated_conv2d(*args, **kwargs)

    monkeypatch.setattr(generator_module, "modulated_conv2d", spy)
    fused = G.synthesize(ws, fused=True)
    n_layers = 2 * G.num_blocks - 1 + G.num_blocks  # convs + ToRGBs
    assert calls == [True] * n_layers
    calls.clear()
    plain = G.synthesize(ws)
    assert calls == [False] * n_layers
    calls.clear()
    torch.testing.assert_close(G.synthesis(ws), plain, atol=0, rtol=0)
    assert calls == [False] * n_layers
    calls.clear()
    G.features(ws, G.num_blocks)  # convs only: no ToRGB
    assert calls == [False] * (2 * G.num_blocks - 1)
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- W+ index rule


def _expected_table(resolution: int) -> list[str]:
    num_ws = 2 * int(np.log2(resolution)) - 2
    table = ["b4.conv1"]
    for k in range(3, int(np.log2(resolution)) + 1):
        table += [f"b{2**k}.conv0", f"b{2**k}.conv1"]
    assert len(table) == num_ws - 1
    return table + [f"b{resolution}.torgb"]


@pytest.mark.parametrize("resolution,num_ws", [(64, 10), (1024, 18)])
def test_wplus_index_rule(resolution: int, num_ws: int) -> None:
    # tiny channels: the rule depends only on the resolution
    config = StyleGAN2Config(resolution=resolution, z_dim=8, w_dim=8, mapping_layers=1,
                             channel_base=4 * resolution, channel_max=4, use_noise=False)
    G = StyleGAN2Generator(config).eval()
    assert G.num_ws == num_ws
    names = [G.layer_for_index(i)[0] for i in range(num_ws)]
    assert names == [f"synthesis.{n}" for n in _expected_table(resolution)]
    if resolution != 64:
        return
    assert names[7] == "synthesis.b64.conv0" and names[9] == "synthesis.b64.torgb"

    # functional check: fill W+ row j with the value j and record what every affine receives
    seen: dict[str, float] = {}
    hooks = [m.affine.register_forward_hook(
        lambda mod, inp, out, name=name: seen.__setitem__(name, float(inp[0][0, 0])))
        for name, m in G.synthesis.named_modules() if hasattr(m, "affine")]
    ws = torch.arange(num_ws, dtype=torch.float32).reshape(1, num_ws, 1).expand(1, num_ws, 8)
    G.synthesize(ws)
    for h in hooks:
        h.remove()
    expected = {"b4.conv1": 0, "b4.torgb": 1}
    for k in range(3, int(np.log2(resolution)) + 1):
        expected |= {f"b{2**k}.conv0": 2 * k - 5, f"b{2**k}.conv1": 2 * k - 4,
                     f"b{2**k}.torgb": 2 * k - 3}
    assert seen == {name: float(j) for name, j in expected.items()}


def test_float64_wplus_is_computed_in_float32() -> None:
    G = _make(_micro())
    ws = G.mapping_ws(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(4)))
    img = G.synthesize(ws.double())
    assert img.dtype == torch.float32
    torch.testing.assert_close(img, G.synthesize(ws), atol=0, rtol=0)
    for got, want in zip(G.features(ws.double(), 2), G.features(ws, 2), strict=True):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_block_windows_follow_the_index_rule() -> None:
    """Block 4x4 reads W+ rows 0-1 (conv1, ToRGB); the block at 2^k reads 2k-5 .. 2k-3."""
    G = _make(_micro())
    assert G.synthesis.block_windows() == [(0, 2), (1, 3), (3, 3), (5, 3)]
    assert [b.num_conv for b in (G.synthesis.b4, G.synthesis.b8, G.synthesis.b32)] == [1, 2, 2]


def test_mapping_normalises_z_in_float32_and_checks_its_shape() -> None:
    """An all-zero z row stays finite (the 1e-8 in the normalisation); float64 z is computed in
    float32; a z of the wrong shape is refused with the expected shape in the message."""
    G = _make(_micro())
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    z[1] = 0.0
    w = G.mapping(z)
    assert w.dtype == torch.float32 and torch.isfinite(w).all()
    assert G.mapping(z.double()).dtype == torch.float32
    for bad in (torch.zeros(3), torch.zeros(3, G.z_dim + 1), torch.zeros(1, 3, G.z_dim)):
        got = re.escape(str(tuple(bad.shape)))
        msg = rf"^mapping expects z of shape \[n, {G.z_dim}\], got {got}$"
        with pytest.raises(ValueError, match=msg):
            G.mapping(bad)


def test_mapping_uses_the_configs_learning_rate_multiplier_and_w_avg_beta() -> None:
    """Known answer with a non-default lr_mul (0.1) and w_avg_beta (0.5): normalised z, then per
    layer lrelu(x @ (W * lr_mul / sqrt(in)).T + b * lr_mul) * sqrt(2); in training mode w_avg
    moves to lerp(batch mean, w_avg, beta)."""
    G = _make(_micro(mapping_lr_mul=0.1, w_avg_beta=0.5))
    assert (G.mapping.z_dim, G.mapping.w_dim, G.mapping.num_layers) == (32, 32, 2)
    z = torch.randn(5, G.z_dim, generator=torch.Generator().manual_seed(11))
    x = z / z.square().mean(dim=1, keepdim=True).sqrt()
    for i in range(2):
        fc = getattr(G.mapping, f"fc{i}")
        with torch.no_grad():
            fc.bias.normal_(generator=torch.Generator().manual_seed(i))
        y = x @ (fc.weight * 0.1 / np.sqrt(x.shape[1])).T + fc.bias * 0.1
        x = F.leaky_relu(y, 0.2) * np.sqrt(2)
    torch.testing.assert_close(G.mapping(z), x, atol=1e-5, rtol=1e-5)
    before = G.w_avg.clone()
    G.train()
    w = G.mapping(z)
    torch.testing.assert_close(G.w_avg, 0.5 * w.mean(0) + 0.5 * before)


def test_features_take_w_or_wplus_and_check_the_block_count() -> None:
    """``features`` broadcasts a W code like ``synthesize``; block i's map is 4 * 2**i pixels;
    1 .. num_blocks blocks are accepted, nothing outside; W+ indices outside [0, num_ws) are
    refused by ``layer_for_index``."""
    G = _make(_micro())
    w = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)))
    n = G.num_blocks
    full = G.features(broadcast_ws(w, G.num_ws), n)
    flat = G.features(w, n)
    assert len(full) == len(flat) == n
    for i, (a, b) in enumerate(zip(flat, full, strict=True)):
        assert a.shape[-2:] == (4 * 2**i, 4 * 2**i)
        assert torch.equal(a, b)
    first = G.features(w, 1)
    assert len(first) == 1 and torch.equal(first[0], full[0])
    for bad in (0, n + 1):
        with pytest.raises(ValueError, match=rf"^upto_block must be in \[1, {n}\], got {bad}$"):
            G.features(w, bad)
    for bad in (-1, G.num_ws):
        with pytest.raises(ValueError, match=rf"^W\+ index must be in \[0, {G.num_ws}\), "
                                             rf"got {bad}$"):
            G.layer_for_index(bad)


def test_style_affines_follow_the_index_rule() -> None:
    G = _make(_micro())
    affines = G.style_affines()
    assert len(affines) == G.num_ws
    for i, a in enumerate(affines):
        _, layer = G.layer_for_index(i)
        assert a.shape == (layer.affine.weight.shape[0], G.w_dim)
        torch.testing.assert_close(a, layer.affine.weight)
    torch.testing.assert_close(affines[-1], G.synthesis.b32.torgb.affine.weight)
    torch.testing.assert_close(affines[0], G.synthesis.b4.conv1.affine.weight)


# ----------------------------------------------------------------------------- geometry / names


def test_ffhq_config_f_parameter_counts() -> None:
    config = get_preset("ffhq1024")
    G = StyleGAN2Generator(config)  # about 120 MB; no forward pass
    n_g = sum(p.numel() for p in G.parameters())
    assert abs(n_g - 30.37e6) <= 0.01e6, n_g
    assert G.num_ws == 18 and G.z_dim == 512 and G.w_dim == 512
    assert G.synthesis.b1024.torgb.affine.weight.shape == (32, 512)
    style_channels = sum(a.shape[0] for a in G.style_affines()[:-1])
    del G
    D = StyleGAN2Discriminator(config)
    n_d = sum(p.numel() for p in D.parameters())
    assert abs(n_d - 29.01e6) <= 0.01e6, n_d
    assert style_channels == 6048  # the 17 conv affines (spec 1.5: 6048 conv style channels)


def test_state_dict_uses_nvidia_names() -> None:
    keys = set(_make(_micro()).state_dict())
    expected = {"mapping.w_avg", "mapping.fc0.weight", "mapping.fc0.bias", "mapping.fc1.weight",
                "synthesis.b4.const", "synthesis.b4.conv1.weight", "synthesis.b4.conv1.bias",
                "synthesis.b4.conv1.affine.weight", "synthesis.b4.conv1.affine.bias",
                "synthesis.b4.torgb.weight", "synthesis.b4.torgb.affine.bias",
                "synthesis.b8.conv0.weight", "synthesis.b32.torgb.bias"}
    assert expected <= keys
    assert not any("resample_filter" in k or "noise" in k for k in keys)
    noisy = set(StyleGAN2Generator(_micro(use_noise=True)).state_dict())
    assert {"synthesis.b8.conv0.noise_strength", "synthesis.b8.conv0.noise_const",
            "synthesis.b4.conv1.noise_const"} <= noisy
    G = StyleGAN2Generator(_micro())
    # raw storage: mapping weights ~ N(0, 1/lr_mul^2), affine biases initialised to 1
    assert 50 < float(G.mapping.fc0.weight.detach().std()) < 200
    for affine in (G.synthesis.b8.conv1.affine, G.synthesis.b8.torgb.affine):
        torch.testing.assert_close(affine.bias, torch.ones_like(affine.bias))


def test_generator_protocol_and_shapes() -> None:
    G = _make(get_preset("tiny64"))
    assert isinstance(G, Generator)
    assert (G.num_ws, G.resolution, G.img_channels) == (10, 64, 3)
    assert G.noise_mode == "none" and G.synthesis.config is G.config
    assert (G.synthesis.resolution, G.synthesis.img_channels) == (64, 3)
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f"b{res}")
        assert block.resolution == res
        for layer in (getattr(block, "conv0", None), block.conv1):
            if layer is not None:
                assert layer.resolution == res and not layer.use_noise
                assert (layer.out_channels, layer.in_channels) == tuple(layer.weight.shape[:2])
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    w = G.mapping(z)
    assert w.shape == (2, G.w_dim)
    img = G.synthesize(broadcast_ws(w, G.num_ws))
    assert img.shape == (2, 3, 64, 64) and torch.isfinite(img).all()
    feats = G.features(broadcast_ws(w, G.num_ws), upto_block=3)
    assert [tuple(f.shape[1:]) for f in feats] == [(128, 4, 4), (128, 8, 8), (64, 16, 16)]
    with pytest.raises(ValueError, match="W\\+"):
        G.synthesize(torch.zeros(2, 3, G.w_dim))


# ----------------------------------------------------------------------------- semantics


def test_truncation() -> None:
    G = _make(_micro())
    z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(3))
    w = G.mapping(z)
    torch.testing.assert_close(G.mapping(z, truncation_psi=0.0), G.w_avg.expand(4, -1))
    torch.testing.assert_close(G.mapping(z, 0.5), G.w_avg + 0.5 * (w - G.w_avg))
    ws = G.mapping_ws(z, truncation_psi=0.0, truncation_cutoff=3)
    torch.testing.assert_close(ws[:, :3], G.w_avg.expand(4, 3, -1))
    torch.testing.assert_close(ws[:, 3:], w.unsqueeze(1).expand(-1, G.num_ws - 3, -1))
    # psi > 1 extrapolates away from w_avg, in mapping and in mapping_ws (every row)
    far = G.w_avg + 2.0 * (w - G.w_avg)
    torch.testing.assert_close(G.mapping(z, truncation_psi=2.0), far)
    torch.testing.assert_close(G.mapping_ws(z, truncation_psi=2.0),
                               far.unsqueeze(1).expand(-1, G.num_ws, -1))


def test_w_avg_updates_only_in_training_mode() -> None:
    G = _make(_micro())
    before = G.w_avg.clone()
    z = torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(4))
    G.mapping(z)
    torch.testing.assert_close(G.w_avg, before)
    G.train()
    w = G.mapping(z, update_w_avg=False)
    torch.testing.assert_close(G.w_avg, before)
    G.mapping_ws(z, update_w_avg=False)
    torch.testing.assert_close(G.w_avg, before)
    G.mapping(z)
    torch.testing.assert_close(G.w_avg, w.mean(0).lerp(before, 0.995))


def test_determinism_and_broadcast() -> None:
    G1, G2 = _make(_micro(), seed=5), _make(_micro(), seed=5)
    z = torch.randn(3, G1.z_dim, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(G1(z), G2(z), atol=0, rtol=0)
    w = G1.mapping(z)
    per_layer = torch.stack([w.clone() for _ in range(G1.num_ws)], dim=1)
    img_w = G1.synthesize(w)
    torch.testing.assert_close(G1.synthesize(per_layer), img_w, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(G1(z), img_w, atol=1e-6, rtol=1e-6)
    other = per_layer.clone()
    other[:, 4] += 1.0  # changing one W+ row changes the image
    assert (G1.synthesize(other) - img_w).abs().max() > 1e-3


def test_noise_modes() -> None:
    G = _make(_micro(use_noise=True))
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    ws = G.mapping_ws(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(7)))
    const = G.synthesize(ws, noise_mode="const")
    torch.testing.assert_close(G.synthesize(ws, noise_mode="const"), const)
    assert (G.synthesize(ws, noise_mode="none") - const).abs().max() > 1e-4
    r1 = G.synthesize(ws, noise_mode="random", generator=torch.Generator().manual_seed(1))
    r2 = G.synthesize(ws, noise_mode="random", generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(r1, r2)
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesize(ws, noise_mode="fresh")


def test_random_noise_is_drawn_per_layer_from_the_generator_in_layer_order() -> None:
    """Known answer: 'random' noise equals 'const' noise whose buffers hold the draws that
    'random' makes (one [n, 1, res, res] normal draw per layer, in synthesis order, from the
    given generator), and 'none' equals noise strength 0."""
    G = _make(_micro(use_noise=True))
    layers = [m for name, m in G.synthesis.named_modules() if name.endswith(("conv0", "conv1"))]
    with torch.no_grad():
        for k, layer in enumerate(layers):
            layer.noise_strength.fill_(0.25 + 0.1 * k)
    assert G.noise_mode == "const"
    ws = G.mapping_ws(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(7)))
    n = G.num_blocks
    random = G.synthesize(ws, noise_mode="random", generator=torch.Generator().manual_seed(2))
    random_feats = G.synthesis.features(ws, n, "random", torch.Generator().manual_seed(2))
    draws = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for layer in layers:
            res = layer.resolution
            layer.noise_const.copy_(torch.randn(1, 1, res, res, generator=draws)[0, 0])
    torch.testing.assert_close(G.synthesize(ws), random, atol=1e-6, rtol=1e-6)
    assert random.dtype == torch.float32
    for got, want in zip(G.features(ws, n), random_feats, strict=True):  # G's mode: const
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    for got, want in zip(G.synthesis.features(ws, n), random_feats, strict=True):  # default
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="^noise_mode must be one of .*, got 'fresh'$"):
        G.synthesis.features(ws, n, "fresh")
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(7))
    seeded = torch.Generator().manual_seed(2)
    torch.testing.assert_close(G(z, noise_mode="random", generator=seeded), random, atol=0, rtol=0)
    other = G.synthesize(ws, noise_mode="random", generator=torch.Generator().manual_seed(3))
    assert (other - random).abs().max() > 1e-3
    # two samples draw independent noise maps
    two = G.synthesize(ws.expand(2, -1, -1), noise_mode="random",
                       generator=torch.Generator().manual_seed(2))
    assert (two[0] - two[1]).abs().max() > 1e-3
    none = G.synthesize(ws, noise_mode="none")
    none_feats = G.synthesis.features(ws, n, "none")
    assert (none_feats[-1] - random_feats[-1]).abs().max() > 1e-3
    with torch.no_grad():
        for layer in layers:
            layer.noise_strength.zero_()
    torch.testing.assert_close(G.synthesize(ws), none, atol=0, rtol=0)
    for got, want in zip(G.features(ws, n), none_feats, strict=True):
        torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_conv_clamp_bounds_outputs() -> None:
    G = _make(_micro(conv_clamp=0.05))
    img = G(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(8)))
    # the final image is a sum of one clamped ToRGB per block
    assert img.abs().max() <= 0.05 * G.num_blocks * 1.01


def test_discriminator() -> None:
    config = _micro()
    torch.manual_seed(0)
    D = StyleGAN2Discriminator(config)
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    out = D(x)
    assert out.shape == (8, 1) and torch.isfinite(out).all()
    keys = set(D.state_dict())
    assert {"b32.fromrgb.weight", "b32.conv0.weight", "b32.conv1.weight", "b32.skip.weight",
            "b8.conv1.bias", "b4.conv.weight", "b4.fc.weight", "b4.out.bias"} <= keys
    assert "b32.skip.bias" not in keys and not any("resample" in k for k in keys)
    # minibatch stddev couples samples: changing sample 0 moves the logit of its group mate 2
    y = x.clone()
    y[0] += 1
    assert (D(y)[2] - out[2]).abs() > 0
    with pytest.raises(ValueError, match="divisible"):
        D(torch.randn(6, 3, 32, 32))
    with pytest.raises(ValueError, match=r"^discriminator expects images \[n, 3, 32, 32\], "
                                         r"got \(4, 3, 16, 16\)$"):
        D(torch.randn(4, 3, 16, 16))
    assert D.config is config and D.block_resolutions == [32, 16, 8]


def test_discriminator_takes_its_own_channel_table() -> None:
    """``disc_channels`` sets the discriminator's widths (the generator keeps its own); without
    it both share ``channels`` and the config's JSON form has no ``disc_channels`` key."""
    base = _micro()
    wide = base.replace(disc_channels={"32": 24, "16": 20, "8": 12, "4": 8})
    assert wide.disc_channels == ((4, 8), (8, 12), (16, 20), (32, 24))
    assert [wide.disc_channels_at(r) for r in (4, 8, 16, 32)] == [8, 12, 20, 24]
    assert [base.disc_channels_at(r) for r in (4, 8, 16, 32)] == [32, 32, 16, 16]
    D = StyleGAN2Discriminator(wide)
    shapes = {k: tuple(v.shape) for k, v in D.state_dict().items()}
    assert shapes["b32.fromrgb.weight"] == (24, 3, 1, 1)
    assert shapes["b32.conv0.weight"] == (24, 24, 3, 3)
    assert shapes["b32.conv1.weight"] == (20, 24, 3, 3)
    assert shapes["b32.skip.weight"] == (20, 24, 1, 1)
    assert shapes["b16.conv1.weight"] == (12, 20, 3, 3)
    assert shapes["b8.skip.weight"] == (8, 12, 1, 1)
    assert shapes["b4.conv.weight"] == (8, 9, 3, 3) and shapes["b4.fc.weight"] == (8, 128)
    assert D(torch.randn(4, 3, 32, 32)).shape == (4, 1)
    def generator_shapes(config: StyleGAN2Config) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in StyleGAN2Generator(config).state_dict().items()}

    assert generator_shapes(wide) == generator_shapes(base)
    assert "disc_channels" not in base.to_dict()
    assert wide.to_dict()["disc_channels"] == {"4": 8, "8": 12, "16": 20, "32": 24}
    assert StyleGAN2Config.from_dict(json.loads(json.dumps(wide.to_dict()))) == wide
    assert StyleGAN2Config.from_dict(base.to_dict()) == base != wide
    with pytest.raises(ValueError, match=r"^explicit disc_channels lack resolutions \[4, 8\]$"):
        base.replace(disc_channels={16: 8, 32: 8})
    with pytest.raises(ValueError, match=r"^explicit channels lack resolutions \[32\]$"):
        base.replace(channels={4: 8, 8: 8, 16: 8})


def test_minibatch_stddev_known_answer() -> None:
    """Group size g: sample i is grouped with i + k (n // g) ; the extra map is the group's
    population std per feature, averaged over channels and pixels. g = 0 means the whole batch."""
    from models.stylegan2.discriminator import minibatch_stddev

    x = torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    whole = minibatch_stddev(x, 0)
    assert whole.shape == (6, 3, 3, 3)
    torch.testing.assert_close(whole[:, :2], x)
    want = x.std(dim=0, unbiased=False).mean()
    torch.testing.assert_close(whole[:, 2], want.expand(6, 3, 3))
    torch.testing.assert_close(minibatch_stddev(x, 6), whole)
    pairs = minibatch_stddev(x, 2)[:, 2, 0, 0]  # groups {0, 3}, {1, 4}, {2, 5}
    for i in range(3):
        group = x[[i, i + 3]]
        torch.testing.assert_close(pairs[[i, i + 3]], group.std(0, unbiased=False).mean()
                                   .expand(2))


def test_discriminator_resolution_and_conv_clamp() -> None:
    """Resolution 8 is the smallest (one block and the 4x4 head); every clamped layer's output
    is clamped to conv_clamp (times the layer's gain)."""
    D8 = StyleGAN2Discriminator(_micro(resolution=8))
    assert D8.block_resolutions == [8]
    assert D8(torch.randn(4, 3, 8, 8)).shape == (4, 1)
    with pytest.raises(ValueError, match="^the discriminator needs resolution >= 8, got 4$"):
        StyleGAN2Discriminator(_micro(resolution=4))
    torch.manual_seed(0)
    clamp = 0.01
    D = StyleGAN2Discriminator(_micro(conv_clamp=clamp))
    with torch.no_grad():  # biases of 1: every pre-activation far above the clamp
        for name, p in D.named_parameters():
            if name.endswith("bias"):
                p.fill_(1.0)
    peaks: dict[str, float] = {}
    layers = {name: m for name, m in D.named_modules()
              if name.endswith(("fromrgb", "conv0", "conv1")) or name == "b4.conv"}
    assert len(layers) == 1 + 2 * 3 + 1
    hooks = [m.register_forward_hook(
        lambda mod, inp, out, name=name: peaks.__setitem__(name, float(out.detach().abs().max())))
        for name, m in layers.items()]
    D(torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 3)
    for h in hooks:
        h.remove()
    for name, peak in peaks.items():
        bound = clamp * (np.sqrt(0.5) if name.endswith("conv1") else 1.0)
        assert peak == pytest.approx(bound, rel=1e-5), name


# ----------------------------------------------------------------------------- checkpoints


def test_native_checkpoint_round_trip(tmp_path) -> None:
    G = _make(get_preset("tiny32"))
    weights, meta_path = save_generator(G, tmp_path / "g", {"kimg": 1.5, "seed": 3})
    assert weights.name == "g.safetensors" and meta_path.name == "g.json"
    assert not list(tmp_path.glob("*.tmp"))
    H = load_generator(tmp_path / "g.safetensors")
    assert not H.training
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(H(z), G(z), atol=0, rtol=0)
    torch.testing.assert_close(H.w_avg, G.w_avg)
    doc = json.loads(meta_path.read_text())
    assert doc["meta"] == {"kimg": 1.5, "seed": 3}
    assert doc["config"]["channels"] == {"4": 128, "8": 128, "16": 64, "32": 32}
    assert H.config == G.config


def test_native_checkpoint_in_float16(tmp_path) -> None:
    """A float16 asset is half the size and loads as float32 weights equal to the rounded ones."""
    G = _make(get_preset("tiny32"))
    full, _ = save_generator(G, tmp_path / "full")
    half, _ = save_generator(G, tmp_path / "half", dtype=torch.float16)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded = load_generator(half).state_dict()
    for key, value in G.state_dict().items():
        assert loaded[key].dtype == torch.float32
        torch.testing.assert_close(loaded[key], value.half().float(), atol=0, rtol=0)
    with pytest.raises(ValueError, match="dtype"):
        save_generator(G, tmp_path / "bad", dtype=torch.bfloat16)


def test_native_checkpoint_errors(tmp_path) -> None:
    G = _make(_micro())
    save_generator(G, tmp_path / "g")
    with pytest.raises(FileNotFoundError, match="nothere.safetensors"):
        load_generator(tmp_path / "nothere")
    # a config that does not match the tensors: strict check names the file
    doc = json.loads((tmp_path / "g.json").read_text())
    doc["config"]["mapping_layers"] = 3
    (tmp_path / "g.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="g.safetensors.*missing.*mapping.fc2"):
        load_generator(tmp_path / "g")
    doc["config"]["mapping_layers"] = 2
    doc["config"]["channels"]["4"] = 8
    (tmp_path / "g.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="shapes"):
        load_generator(tmp_path / "g")
    (tmp_path / "g.json").unlink()
    with pytest.raises(FileNotFoundError, match="g.json"):
        load_generator(tmp_path / "g")


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="^resolution must be a power of two >= 4, got 48$"):
        StyleGAN2Config(resolution=48)
    with pytest.raises(ValueError, match="^explicit channels lack resolutions \\[16\\]$"):
        StyleGAN2Config(resolution=16, channels=((4, 8), (8, 8)))
    with pytest.raises(ValueError, match="^only the 'skip' generator architecture is supported, "
                                         "got 'resnet'$"):
        StyleGAN2Config(resolution=16, architecture="resnet")
    with pytest.raises(ValueError, match="^w_dim must be >= 1, got 0$"):
        StyleGAN2Config(resolution=16, w_dim=0)
    with pytest.raises(ValueError, match=r"^unknown StyleGAN2 config keys \['depth', 'fmaps'\]$"):
        StyleGAN2Config.from_dict({"resolution": 16, "fmaps": 1, "depth": 2})
    known = (r"\(known: micro32, tiny32, tiny32m4, tiny32m4f, tiny32m4s, tiny32m4w, "
             r"tiny32m4x8, tiny32m4x4, tiny32m4x16, tiny64, "
             r"ffhq1024\)")
    with pytest.raises(ValueError, match=rf"^unknown StyleGAN2 config 'tiny128' {known}$"):
        get_preset("tiny128")
    c = get_preset("tiny64")
    assert StyleGAN2Config.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_config_channel_tables_in_any_form_are_stored_as_sorted_pairs() -> None:
    """A mapping, pairs in any order, JSON's string keys and lists: one stored form, so configs
    compare equal (a resumed training run compares its config with the saved one)."""
    want = ((4, 16), (8, 8), (16, 4))
    forms = [{16: 4, 4: 16, 8: 8}, ((16, 4), (8, 8), (4, 16)), [[8, 8], [4, 16], [16, 4]],
             {"4": 16, "8": 8, "16": 4, "32": 2}]
    configs = [StyleGAN2Config(resolution=16, channels=form) for form in forms]
    assert all(c.channels == want for c in configs) and len(set(configs)) == 1
    base = StyleGAN2Config(resolution=16)
    assert base.replace(channels={16: 4, 8: 8, 4: 16}).channels == want
    assert StyleGAN2Config.from_dict({"resolution": 16, "channels": [[16, 4], [4, 16], [8, 8]]}
                                     ).channels == want
    assert get_preset("micro32").channels == ((4, 32), (8, 32), (16, 16), (32, 16))
    assert base.channel_table() == {4: 512, 8: 512, 16: 512}
    assert configs[0].channel_table() == dict(want)


def test_native_checkpoint_layout(tmp_path) -> None:
    """The files' exact layout: float32 tensors whatever G's dtype, safetensors metadata naming
    the format, JSON with its four keys in order, indented by 2, meta keys in insertion order,
    a final newline; the loaded generator is frozen."""
    from safetensors import safe_open

    from models.stylegan2.native import FORMAT_NAME

    G = _make(_micro()).double()
    weights, json_path = save_generator(G, tmp_path / "g", {"zeta": 1, "alpha": 2})
    with safe_open(str(weights), framework="pt") as f:
        assert f.metadata() == {"format": FORMAT_NAME}
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}
    text = json_path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "format": ') and text.endswith("}\n")
    doc = json.loads(text)
    assert list(doc) == ["format", "version", "config", "meta"]
    assert doc["version"] == 1 and list(doc["meta"]) == ["zeta", "alpha"]
    H = load_generator(weights)
    assert not any(p.requires_grad for p in H.parameters())


def test_native_checkpoint_messages(tmp_path) -> None:
    """Each refusal names the file and what was wrong; state-dict key lists show five names."""
    save_generator(_make(_micro()), tmp_path / "g")
    path = tmp_path / "g.json"
    good = json.loads(path.read_text())
    p = re.escape(str(path))

    def refused(doc: object, message: str) -> None:
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        with pytest.raises(ValueError, match=message):
            load_generator(tmp_path / "g")

    refused("{", f"^{p}: not valid JSON \\(")
    for doc in ([1, 2], good | {"format": "other"}, {k: v for k, v in good.items()
                                                     if k != "config"}):
        refused(doc, f"^{p}: not a disentangle-bench/stylegan2-generator config file$")
    refused(good | {"version": 2}, f"^{p}: format version 2 is newer than supported \\(1\\)$")
    refused(good | {"config": good["config"] | {"resolution": 48}},
            f"^{p}: invalid config \\(resolution must be a power of two >= 4, got 48\\)$")
    w = re.escape(str(tmp_path / "g.safetensors"))
    refused(good | {"config": good["config"] | {"mapping_layers": 3}},
            f"^{w}: state dict does not match its config \\(missing \\['mapping.fc2.bias', "
            f"'mapping.fc2.weight'\\], unexpected \\[\\]\\)$")
    # five names are listed in full, a sixth is replaced by "..."
    from safetensors.torch import load_file, save_file

    path.write_text(json.dumps(good))
    tensors = load_file(str(tmp_path / "g.safetensors"))
    names = r"\[('[^']+', ){4}'[^']+'\]"
    for k in (5, 6):
        dots = r"\.\.\." if k > 5 else ""
        dropped = dict(list(tensors.items())[k:])
        save_file(dropped, str(tmp_path / "g.safetensors"))
        with pytest.raises(ValueError, match=f"^{w}: state dict does not match its config "
                                             f"\\(missing {names}{dots}, unexpected \\[\\]\\)$"):
            load_generator(tmp_path / "g")
        extra = tensors | {f"extra{i}": torch.zeros(1) for i in range(k)}
        save_file(extra, str(tmp_path / "g.safetensors"))
        with pytest.raises(ValueError, match=f"^{w}: state dict does not match its config "
                                             f"\\(missing \\[\\], unexpected {names}{dots}\\)$"):
            load_generator(tmp_path / "g")
    save_file(tensors, str(tmp_path / "g.safetensors"))
    wide = good["config"] | {"channels": {"4": 8, "8": 8, "16": 8, "32": 8}}
    refused(good | {"config": wide},
            f"^{w}: tensor shapes do not match the config: \\[('[^']+', ){{4}}'[^']+'\\]$")
    path.write_text(json.dumps(good | {"version": 0}))  # older versions load
    load_generator(tmp_path / "g")
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "version"}))
    load_generator(tmp_path / "g")

