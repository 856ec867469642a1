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


def test_generator_fused_and_nonfused_images_agree() -> None:
    G = _make(_micro())
    ws = G.mapping_ws(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(2)))
    torch.testing.assert_close(G.synthesize(ws, fused=True), G.synthesize(ws), atol=1e-5,
                               rtol=1e-5)


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
    torch.testing.assert_close(G.synthesis.b8.conv1.affine.bias,
                               torch.ones_like(G.synthesis.b8.conv1.affine.bias))


def test_generator_protocol_and_shapes() -> None:
    G = _make(get_preset("tiny64"))
    assert isinstance(G, Generator)
    assert (G.num_ws, G.resolution, G.img_channels) == (10, 64, 3)
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


def test_w_avg_updates_only_in_training_mode() -> None:
    G = _make(_micro())
    before = G.w_avg.clone()
    z = torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(4))
    G.mapping(z)
    torch.testing.assert_close(G.w_avg, before)
    G.train()
    w = G.mapping(z, update_w_avg=False)
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
    with pytest.raises(ValueError, match="images"):
        D(torch.randn(4, 3, 16, 16))


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
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Config(resolution=48)
    with pytest.raises(ValueError, match="lack resolutions"):
        StyleGAN2Config(resolution=16, channels=((4, 8), (8, 8)))
    with pytest.raises(ValueError, match="unknown StyleGAN2 config"):
        get_preset("tiny128")
    c = get_preset("tiny64")
    assert StyleGAN2Config.from_dict(json.loads(json.dumps(c.to_dict()))) == c
