"""The native StyleGAN2 against golden outputs of the REFERENCE implementations.

``tests/golden/`` holds checkpoints written by NVIDIA's stylegan2-ada-pytorch and by rosinality's
stylegan2-pytorch themselves, with the reference outputs for fixed inputs (see
``tests/golden/make_golden.py``, run by hand; these tests never need the reference code). The
checkpoints go through the project's loaders, the native modules synthesise the same images from
the same inputs, and every setting must agree within 1e-4 (max abs, float32) in both the fused and
the non-fused modulated convolution. In training mode the w_avg update and the gradients (every
generator and discriminator parameter, W+, the discriminator's input) are checked as well, scaled
by the reference gradient's largest entry where that exceeds 1.

Conventions bridged here (not in the code):

* NVIDIA ``G(z, c, truncation_psi, truncation_cutoff, noise_mode)`` -> ``G(z, psi, cutoff,
  noise_mode)``; NVIDIA ``G.synthesis(ws)`` -> ``G.synthesize(ws)``. The snapshot has fp16 blocks
  (``num_fp16_res=2``, as real snapshots do); its outputs were taken with ``force_fp32=True``,
  the native generator always runs float32.
* rosinality ``g([z])`` with ``randomize_noise=False`` (its stored ``noises.noise_i`` buffers) ->
  noise_mode ``'const'``; rosinality with explicit all-zero noise tensors -> ``'none'``;
  ``truncation=psi, truncation_latent=latent_avg`` (applied to every W+ row) -> ``psi`` with no
  cutoff; ``input_is_latent=True`` -> ``synthesize``; style mixing ``g([z, z2], inject_index=3)``
  -> a W+ whose rows [0, 3) come from z and the rest from z2.
* Both return raw NCHW images (no clamping or rescaling), compared as they are.
* The project has no loader for NVIDIA's discriminator: it is built from ``G_ema``'s config and
  the pickle's ``D`` minibatch-stddev group, and loaded from the pickled record's state dict
  (parameter names match one to one; NVIDIA's persistent FIR-filter buffers are dropped).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from models.stylegan2.loader import load_any_generator
from models.stylegan2.nvidia_pickle import (
    nvidia_config,
    nvidia_init_kwargs,
    read_nvidia_pickle,
    record_state_dict,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GOLDEN = Path(__file__).resolve().parent / "golden"
NVIDIA_PKL = GOLDEN / "nvidia_g32.pkl"
ROSINALITY_PT = GOLDEN / "rosinality_g32.pt"
ATOL = 1e-4

Arrays = dict[str, torch.Tensor]
Case = Callable[[StyleGAN2Generator, Arrays, bool], torch.Tensor]


def load_arrays(name: str) -> Arrays:
    with np.load(GOLDEN / name) as data:
        return {k: torch.from_numpy(data[k].astype(np.float32)) for k in data.files}


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return float((a - b).abs().max())


@pytest.fixture(scope="module")
def nvidia() -> tuple[StyleGAN2Generator, Arrays]:
    return load_any_generator(NVIDIA_PKL), load_arrays("nvidia_g32.npz")


@pytest.fixture(scope="module")
def rosinality() -> tuple[StyleGAN2Generator, Arrays]:
    return load_any_generator(ROSINALITY_PT), load_arrays("rosinality_g32.npz")


# ---------------------------------------------------------------------------------------------
# NVIDIA stylegan2-ada-pytorch


def test_nvidia_config_and_latents(nvidia: tuple[StyleGAN2Generator, Arrays]) -> None:
    G, a = nvidia
    c = G.config
    assert (c.resolution, c.z_dim, c.w_dim, c.mapping_layers, c.img_channels) == (32, 24, 32, 3, 3)
    assert c.channel_table() == {4: 16, 8: 16, 16: 16, 32: 8}
    assert c.use_noise and c.conv_clamp == 2.0
    assert max_abs(G.w_avg, a["w_avg"]) == 0
    with torch.no_grad():
        assert max_abs(G.mapping_ws(a["z"]), a["ws_z"]) <= ATOL
        assert max_abs(G.mapping_ws(a["z"], 0.5), a["ws_z_psi05"]) <= ATOL
        assert max_abs(G.mapping_ws(a["z"], 0.7, 4), a["ws_z_psi07_cut4"]) <= ATOL


NVIDIA_CASES: dict[str, Case] = {
    "img_z_const": lambda G, a, f: G.synthesize(G.mapping_ws(a["z"]), "const", fused=f),
    "img_z_none": lambda G, a, f: G.synthesize(G.mapping_ws(a["z"]), "none", fused=f),
    "img_z_psi05_const": lambda G, a, f: G.synthesize(G.mapping_ws(a["z"], 0.5), "const",
                                                      fused=f),
    "img_z_psi07_cut4_const": lambda G, a, f: G.synthesize(G.mapping_ws(a["z"], 0.7, 4),
                                                           "const", fused=f),
    "img_w_const": lambda G, a, f: G.synthesize(a["w"], "const", fused=f),
    "img_wplus_const": lambda G, a, f: G.synthesize(a["wplus"], "const", fused=f),
    "img_wplus_none": lambda G, a, f: G.synthesize(a["wplus"], "none", fused=f),
    # NVIDIA's non-fused (training-mode) modulated conv, recorded separately
    "img_wplus_const_unfused": lambda G, a, f: G.synthesize(a["wplus"], "const", fused=f),
}


@pytest.mark.parametrize("fused", [False, True], ids=["nonfused", "fused"])
@pytest.mark.parametrize("case", list(NVIDIA_CASES))
def test_nvidia_images(nvidia: tuple[StyleGAN2Generator, Arrays], case: str,
                       fused: bool) -> None:
    G, a = nvidia
    with torch.no_grad():
        out = NVIDIA_CASES[case](G, a, fused)
    assert max_abs(out, a[case]) <= ATOL


def test_nvidia_forward_and_noise(nvidia: tuple[StyleGAN2Generator, Arrays]) -> None:
    """``G(z, ...)`` end to end; the noise really contributes (so 'const' is not vacuous)."""
    G, a = nvidia
    with torch.no_grad():
        assert max_abs(G(a["z"], noise_mode="const"), a["img_z_const"]) <= ATOL
        assert max_abs(G(a["z"], 0.7, 4, noise_mode="const"), a["img_z_psi07_cut4_const"]) <= ATOL
        assert max_abs(G(a["z"], noise_mode="none"), a["img_z_none"]) <= ATOL
    assert max_abs(a["img_z_const"], a["img_z_none"]) > 0.1


def test_nvidia_training_network() -> None:
    """``network='G'`` reads the snapshot's training generator (different weights and w_avg)."""
    a = load_arrays("nvidia_g32.npz")
    G = load_any_generator(NVIDIA_PKL, network="G")
    with torch.no_grad():
        out = G(a["z"], noise_mode="const")
    assert max_abs(out, a["G_img_z_const"]) <= ATOL
    assert max_abs(a["G_img_z_const"], a["img_z_const"]) > 0.1


def nvidia_discriminator() -> StyleGAN2Discriminator:
    """The snapshot's ``D`` as a native discriminator (eval mode)."""
    data = read_nvidia_pickle(NVIDIA_PKL)
    d_kwargs = nvidia_init_kwargs(data["D"])
    config = nvidia_config(nvidia_init_kwargs(data["G_ema"]), str(NVIDIA_PKL)).replace(
        mbstd_group=int(d_kwargs["epilogue_kwargs"]["mbstd_group_size"]))
    assert (d_kwargs.get("architecture", "resnet"), d_kwargs["channel_base"],
            d_kwargs["channel_max"], d_kwargs["conv_clamp"]) == (
        "resnet", config.channel_base, config.channel_max, config.conv_clamp)
    state = {k: v for k, v in record_state_dict(data["D"]).items()
             if not k.endswith("resample_filter")}
    D = StyleGAN2Discriminator(config).eval()
    D.load_state_dict(state, strict=True)
    return D


def test_nvidia_discriminator() -> None:
    a = load_arrays("nvidia_g32.npz")
    D = nvidia_discriminator()
    with torch.no_grad():
        assert max_abs(D(a["d_img8"]), a["d_logits8"]) <= ATOL  # two stddev groups of 4
        assert max_abs(D(a["d_img8"][:2]), a["d_logits2"]) <= ATOL  # one group of 2


# ---------------------------------------------------------------------------------------------
# rosinality stylegan2-pytorch


def mixed_ws(G: StyleGAN2Generator, a: Arrays, index: int = 3) -> torch.Tensor:
    """rosinality's ``g([z, z2], inject_index=index)``: rows [0, index) from z, the rest z2."""
    return torch.cat([G.mapping_ws(a["z"])[:, :index], G.mapping_ws(a["z2"])[:, index:]], dim=1)


def test_rosinality_config_and_latents(rosinality: tuple[StyleGAN2Generator, Arrays]) -> None:
    G, a = rosinality
    c = G.config
    assert (c.resolution, c.z_dim, c.w_dim, c.mapping_layers, c.img_channels) == (32, 32, 32, 3, 3)
    assert c.channel_table() == {4: 16, 8: 16, 16: 8, 32: 8}
    assert c.use_noise and c.conv_clamp is None
    assert max_abs(G.w_avg, a["latent_avg"]) == 0
    with torch.no_grad():
        assert max_abs(G.mapping(a["z"]), a["w_z"]) <= ATOL
        assert max_abs(mixed_ws(G, a), a["ws_mix3"]) <= ATOL


ROSINALITY_CASES: dict[str, Case] = {
    "img_z_const": lambda G, a, f: G.synthesize(G.mapping_ws(a["z"]), "const", fused=f),
    "img_z_none": lambda G, a, f: G.synthesize(G.mapping_ws(a["z"]), "none", fused=f),
    "img_z_psi05_const": lambda G, a, f: G.synthesize(G.mapping_ws(a["z"], 0.5), "const",
                                                      fused=f),
    "img_w_const": lambda G, a, f: G.synthesize(a["w"], "const", fused=f),
    "img_wplus_const": lambda G, a, f: G.synthesize(a["wplus"], "const", fused=f),
    "img_wplus_none": lambda G, a, f: G.synthesize(a["wplus"], "none", fused=f),
    "img_mix3_const": lambda G, a, f: G.synthesize(mixed_ws(G, a), "const", fused=f),
}


@pytest.mark.parametrize("fused", [False, True], ids=["nonfused", "fused"])
@pytest.mark.parametrize("case", list(ROSINALITY_CASES))
def test_rosinality_images(rosinality: tuple[StyleGAN2Generator, Arrays], case: str,
                           fused: bool) -> None:
    G, a = rosinality
    with torch.no_grad():
        out = ROSINALITY_CASES[case](G, a, fused)
    assert max_abs(out, a[case]) <= ATOL


def test_rosinality_forward_and_noise(rosinality: tuple[StyleGAN2Generator, Arrays]) -> None:
    G, a = rosinality
    with torch.no_grad():
        assert max_abs(G(a["z"], noise_mode="const"), a["img_z_const"]) <= ATOL
        assert max_abs(G(a["z"], 0.5, noise_mode="const"), a["img_z_psi05_const"]) <= ATOL
    assert max_abs(a["img_z_const"], a["img_z_none"]) > 0.1


# ---------------------------------------------------------------------------------------------
# training-mode behaviour and gradients (NVIDIA's train-mode G runs the non-fused path)


def loss_weights(shape: tuple[int, ...]) -> torch.Tensor:
    """The fixed weights of make_golden.py's recorded scalars."""
    n = int(np.prod(shape))
    return torch.cos(torch.arange(n, dtype=torch.float64) * 0.37 + 0.1).reshape(shape).float()


def grad_error(ref: torch.Tensor, got: torch.Tensor) -> float:
    """Max abs difference, relative to the reference's largest entry when that exceeds 1."""
    return max_abs(got, ref) / max(1.0, float(ref.abs().max()))


@pytest.mark.parametrize("fused", [False, True], ids=["nonfused", "fused"])
def test_nvidia_generator_training_gradients(fused: bool) -> None:
    a = load_arrays("nvidia_g32.npz")
    G = load_any_generator(NVIDIA_PKL).train().requires_grad_(True)
    ws = G.mapping_ws(a["z"])  # train mode: updates w_avg like NVIDIA's mapping
    assert max_abs(G.w_avg, a["train_w_avg"]) <= ATOL
    img = G.synthesize(ws, "const", fused=fused)
    assert max_abs(img.detach(), a["train_img_z_const"]) <= ATOL
    names, params = zip(*G.named_parameters(), strict=True)
    assert {f"gradG/{k}" for k in names} == {k for k in a if k.startswith("gradG/")}
    grads = torch.autograd.grad((img * loss_weights(img.shape)).sum(), params)
    errors = {k: grad_error(a[f"gradG/{k}"], g) for k, g in zip(names, grads, strict=True)}
    assert max(errors.values()) <= ATOL, {k: e for k, e in errors.items() if e > ATOL}
    wplus = a["wplus"].clone().requires_grad_(True)
    img = G.synthesize(wplus, "const", fused=fused)
    grad, = torch.autograd.grad((img * loss_weights(img.shape)).sum(), [wplus])
    assert grad_error(a["gradG_wplus"], grad) <= ATOL


def test_nvidia_discriminator_gradients() -> None:
    a = load_arrays("nvidia_g32.npz")
    D = nvidia_discriminator().train().requires_grad_(True)
    imgs = a["d_img8"][:4].clone().requires_grad_(True)
    logits = D(imgs)
    names, params = zip(*D.named_parameters(), strict=True)
    assert {f"gradD/{k}" for k in names} == {k for k in a if k.startswith("gradD/")}
    grads = torch.autograd.grad((logits * loss_weights(logits.shape)).sum(), [imgs, *params])
    assert grad_error(a["gradD_img4"], grads[0]) <= ATOL  # what R1 penalises
    errors = {k: grad_error(a[f"gradD/{k}"], g) for k, g in zip(names, grads[1:], strict=True)}
    assert max(errors.values()) <= ATOL, {k: e for k, e in errors.items() if e > ATOL}
