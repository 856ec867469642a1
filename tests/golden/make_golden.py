"""Write the golden fixtures of ``tests/test_golden_stylegan2.py`` with the REFERENCE StyleGAN2s.

Run by hand, once, when the fixtures need remaking; the tests never run this script and never
need the reference code (they only read the files written here). It builds small networks with
the reference implementations themselves, perturbs every parameter and buffer so that nothing
is left at its zero / one initialisation, saves them in each reference's own checkpoint layout,
and records the reference outputs for fixed inputs:

* ``nvidia_g32.pkl`` + ``nvidia_g32.npz``: NVlabs/stylegan2-ada-pytorch at commit
  d72cc7d041b42ec8e806021a205ed9349f87c6a4. A ``{'training_set_kwargs', 'G', 'D', 'G_ema',
  'augment_pipe'}`` dict written with ``pickle.dump`` exactly as ``training/training_loop.py``
  writes its snapshots (networks built by ``dnnlib.util.construct_class_by_name`` from
  ``train.py``-style kwargs, ``copy.deepcopy(module).eval().requires_grad_(False).cpu()``,
  pickled through ``torch_utils.persistence``), checked to load with NVIDIA's own
  ``legacy.load_network_pkl``. Outputs of ``G_ema`` (z / W / W+ / truncation / noise 'const'
  and 'none'), of ``G`` for one setting, of ``D`` on fixed image batches, and in training
  mode: the w_avg update and the gradients of fixed scalars of G's image (every parameter, W+)
  and of D's logits (every parameter, the images).
* ``rosinality_g32.pt`` + ``rosinality_g32.npz``: rosinality/stylegan2-pytorch at commit
  bef283a1c24087da704d16c30abc8e36e63efa0e. ``torch.save({'g_ema': state_dict, 'latent_avg':
  [style_dim]})``, the layout of rosinality's ``convert_weight.py``. rosinality's Generator
  hard-codes 512 channels up to 32x32 (9 MB per 3x3 conv), so the script's ``Generator``
  subclass swaps in a small channel table; nothing else of rosinality's code is changed.

How to run (2 CPU cores are plenty; it takes seconds)::

    mkdir -p /tmp/refs/nvidia /tmp/refs/rosinality
    git -C <mirror of NVlabs/stylegan2-ada-pytorch> archive d72cc7d0 | tar -x -C /tmp/refs/nvidia
    git -C <mirror of rosinality/stylegan2-pytorch> archive bef283a1 -- model.py op \\
        | tar -x -C /tmp/refs/rosinality
    OMP_NUM_THREADS=1 PYTHONPATH=. python tests/golden/make_golden.py \\
        --nvidia /tmp/refs/nvidia --rosinality /tmp/refs/rosinality

The reference exports stay outside the repository (scratch folders); nothing of them is copied
in. Both run on their pure-PyTorch CPU paths: NVIDIA's ``bias_act`` / ``upfirdn2d`` /
``conv2d_gradfix`` use their ``impl='ref'`` code for CPU tensors and never compile; rosinality's
``op`` package compiles its CUDA extensions at import, so ``torch.utils.cpp_extension.load`` is
replaced by a stub while it is imported (its CPU branches, ``upfirdn2d_native`` and the native
``fused_leaky_relu``, never touch the extension). ``requests`` (imported by NVIDIA's
``dnnlib.util``, unused here) is stubbed when it is not installed.

Everything is float32; noise 'random' is not reproducible across implementations and is not
recorded. Inputs (z, W, W+, images) are float16-valued and stored as float16 to halve the .npz.
Reruns reproduce the .npz and .pt files byte for byte; the .pkl only up to the storage keys that
torch's legacy serialisation takes from memory addresses (the tensors are the same).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

NVIDIA_COMMIT = "d72cc7d041b42ec8e806021a205ed9349f87c6a4"
ROSINALITY_COMMIT = "bef283a1c24087da704d16c30abc8e36e63efa0e"
HERE = Path(__file__).resolve().parent

# NVIDIA generator: 32x32, z_dim != w_dim, 3 mapping layers, channels {4: 16, 8: 16, 16: 16,
# 32: 8}, noise on, a conv_clamp low enough to clip a few per cent of the activations (so the
# clamp is exercised), fp16 blocks as in real snapshots (the reference runs with force_fp32).
NVIDIA_RES = 32
NVIDIA_Z, NVIDIA_W = 24, 32
NVIDIA_MAPPING_LAYERS = 3
NVIDIA_CHANNEL_BASE, NVIDIA_CHANNEL_MAX = 256, 16
NVIDIA_CONV_CLAMP = 2.0
NVIDIA_FP16_RES = 2
NVIDIA_MBSTD_GROUP = 4

# rosinality generator: 32x32, style_dim 32, 3 mapping layers, channels {4: 16, 8: 16, 16: 8,
# 32: 8} (rosinality's own table would be 512 everywhere up to 32x32).
ROS_SIZE = 32
ROS_STYLE_DIM = 32
ROS_N_MLP = 3
ROS_CHANNELS = {4: 16, 8: 16, 16: 8, 32: 8}


@contextlib.contextmanager
def on_path(folder: Path) -> Iterator[None]:
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))


def rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=rng(seed))


def inputs(*shape: int, seed: int) -> torch.Tensor:
    """Standard-normal inputs rounded to float16 values (stored as float16, exact in float32)."""
    return randn(*shape, seed=seed).half().float()


def assert_nonzero(named: dict[str, torch.Tensor], what: str) -> None:
    """Every element of every tensor is non-zero (nothing left at a zero initialisation)."""
    zeros = [k for k, v in named.items() if v.numel() and (v == 0).any()]
    if zeros:
        raise AssertionError(f"{what}: tensors with zero entries: {zeros}")


# ---------------------------------------------------------------------------------------------
# NVIDIA


def perturb_nvidia(module: torch.nn.Module, seed: int) -> None:
    """Random, non-zero values everywhere, at scales that keep the activations O(1).

    Stored values are the raw ones (gains are applied at run time): the mapping layers' stored
    biases are divided by their lr multiplier 0.01 so that their effect is O(0.1-1)."""
    g = rng(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.startswith("mapping.") and name.endswith(".bias"):
                p.copy_(noise * 0.3 / 0.01)
            elif name.endswith("affine.bias"):
                p.add_(0.3 * noise)  # around the +1 initialisation
            elif name.endswith("noise_strength"):
                p.copy_(0.2 * noise.sign() * (noise.abs() + 0.5))
            elif name.endswith(".bias"):
                p.copy_(0.2 * noise)
            else:  # weights, const: keep the N(0, 1) / lr_mul scale, move every entry
                p.mul_(1 + 0.2 * noise).add_(0.05 * noise * p.std())
        for name, b in module.named_buffers():
            if name.endswith("noise_const"):
                b.copy_(torch.randn(b.shape, generator=g))


def nvidia_clamp_fraction(G: torch.nn.Module, ws: torch.Tensor) -> float:
    """Share of synthesis-layer outputs at the conv_clamp bound (to confirm it is exercised)."""
    hits, total = [0], [0]

    def hook(_m: torch.nn.Module, _i: object, out: torch.Tensor) -> None:
        hits[0] += int((out.abs() >= NVIDIA_CONV_CLAMP - 1e-6).sum())
        total[0] += out.numel()

    handles = [m.register_forward_hook(hook) for n, m in G.synthesis.named_modules()
               if type(m).__name__ in ("SynthesisLayer", "ToRGBLayer")]
    with torch.no_grad():
        G.synthesis(ws, noise_mode="const", force_fp32=True)
    for h in handles:
        h.remove()
    return hits[0] / total[0]


def stub_if_missing(name: str) -> None:
    """An empty module ``name`` in ``sys.modules`` when it is not installed: for imports that a
    reference module makes at its top but the code run here never uses."""
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except ImportError:
        sys.modules[name] = types.ModuleType(name)


def make_nvidia(ref: Path, out: Path) -> None:
    stub_if_missing("requests")  # imported by dnnlib.util, unused here
    with on_path(ref):
        import dnnlib
        import legacy
        from torch_utils import persistence  # noqa: F401  (registers the pickling hooks)

        common_kwargs = dict(c_dim=0, img_resolution=NVIDIA_RES, img_channels=3)
        G_kwargs = dnnlib.EasyDict(class_name="training.networks.Generator", z_dim=NVIDIA_Z,
                                   w_dim=NVIDIA_W, mapping_kwargs=dnnlib.EasyDict(),
                                   synthesis_kwargs=dnnlib.EasyDict())
        D_kwargs = dnnlib.EasyDict(class_name="training.networks.Discriminator",
                                   block_kwargs=dnnlib.EasyDict(),
                                   mapping_kwargs=dnnlib.EasyDict(),
                                   epilogue_kwargs=dnnlib.EasyDict())
        for kw in (G_kwargs.synthesis_kwargs, D_kwargs):
            kw.channel_base = NVIDIA_CHANNEL_BASE
            kw.channel_max = NVIDIA_CHANNEL_MAX
            kw.num_fp16_res = NVIDIA_FP16_RES
            kw.conv_clamp = NVIDIA_CONV_CLAMP
        G_kwargs.mapping_kwargs.num_layers = NVIDIA_MAPPING_LAYERS
        D_kwargs.epilogue_kwargs.mbstd_group_size = NVIDIA_MBSTD_GROUP
        augment_kwargs = dnnlib.EasyDict(class_name="training.augment.AugmentPipe", xflip=1,
                                         rotate90=1, xint=1, scale=1, rotate=1, aniso=1,
                                         xfrac=1, brightness=1, contrast=1, lumaflip=1,
                                         hue=1, saturation=1)

        torch.manual_seed(0)
        G = dnnlib.util.construct_class_by_name(**G_kwargs, **common_kwargs)
        D = dnnlib.util.construct_class_by_name(**D_kwargs, **common_kwargs)
        augment_pipe = dnnlib.util.construct_class_by_name(**augment_kwargs)
        augment_pipe.p.copy_(torch.as_tensor(0.25))
        perturb_nvidia(G, seed=101)
        perturb_nvidia(D, seed=102)
        G_ema = copy.deepcopy(G).eval()
        perturb_nvidia(G_ema, seed=103)  # G_ema differs from G, as after training
        with torch.no_grad():
            for net, seed in ((G, 104), (G_ema, 105)):  # w_avg: mapping mean + an offset
                w = net.mapping(randn(512, NVIDIA_Z, seed=seed), None, skip_w_avg_update=True)
                net.mapping.w_avg.copy_(w[:, 0].mean(0) + 0.3 * randn(NVIDIA_W, seed=seed + 1))
        for name, net in (("G", G), ("G_ema", G_ema), ("D", D)):
            assert_nonzero({**dict(net.named_parameters()),
                            **{k: v for k, v in net.named_buffers() if "resample" not in k}},
                           f"NVIDIA {name}")

        # the snapshot, exactly as training_loop.py writes it
        training_set_kwargs = dnnlib.EasyDict(
            class_name="training.dataset.ImageFolderDataset", path="~/datasets/golden.zip",
            use_labels=False, max_size=1000, xflip=False, resolution=NVIDIA_RES)
        snapshot_data = dict(training_set_kwargs=dict(training_set_kwargs))
        for name, module in [("G", G), ("D", D), ("G_ema", G_ema),
                             ("augment_pipe", augment_pipe)]:
            if module is not None:
                module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
            snapshot_data[name] = module
            del module
        pkl_path = out / "nvidia_g32.pkl"
        with open(pkl_path, "wb") as f:
            pickle.dump(snapshot_data, f)

        # NVIDIA's own loader reads it back (through its source-executing unpickler)
        with open(pkl_path, "rb") as f:
            data = legacy.load_network_pkl(f)
        G_ema, G, D = data["G_ema"], data["G"], data["D"]
        for a, b in ((G_ema, snapshot_data["G_ema"]), (D, snapshot_data["D"])):
            for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(),
                                          strict=True):
                assert ka == kb and torch.equal(va, vb), ka

        arrays = nvidia_outputs(G_ema, G, D)
        arrays.update(nvidia_gradients(G_ema, D, arrays))
    np.savez_compressed(out / "nvidia_g32.npz", **arrays)
    print(f"wrote {pkl_path} ({pkl_path.stat().st_size} bytes) and nvidia_g32.npz")


@torch.no_grad()
def nvidia_outputs(G_ema: torch.nn.Module, G: torch.nn.Module, D: torch.nn.Module
                   ) -> dict[str, np.ndarray]:
    num_ws = G_ema.num_ws
    n = 2
    c = torch.zeros([n, 0])
    z = inputs(n, NVIDIA_Z, seed=201)
    w = inputs(n, NVIDIA_W, seed=202)
    wplus = inputs(n, num_ws, NVIDIA_W, seed=203)  # every row different
    synth = dict(force_fp32=True)
    arrays: dict[str, torch.Tensor] = {"z": z, "w": w, "wplus": wplus,
                                       "w_avg": G_ema.mapping.w_avg.clone()}
    arrays["ws_z"] = G_ema.mapping(z, c)
    arrays["ws_z_psi05"] = G_ema.mapping(z, c, truncation_psi=0.5)
    arrays["ws_z_psi07_cut4"] = G_ema.mapping(z, c, truncation_psi=0.7, truncation_cutoff=4)
    arrays["img_z_const"] = G_ema(z, c, noise_mode="const", **synth)
    arrays["img_z_none"] = G_ema(z, c, noise_mode="none", **synth)
    arrays["img_z_psi05_const"] = G_ema(z, c, truncation_psi=0.5, noise_mode="const", **synth)
    arrays["img_z_psi07_cut4_const"] = G_ema(z, c, truncation_psi=0.7, truncation_cutoff=4,
                                             noise_mode="const", **synth)
    ws_w = w.unsqueeze(1).repeat([1, num_ws, 1])
    arrays["img_w_const"] = G_ema.synthesis(ws_w, noise_mode="const", **synth)
    arrays["img_wplus_const"] = G_ema.synthesis(wplus, noise_mode="const", **synth)
    arrays["img_wplus_none"] = G_ema.synthesis(wplus, noise_mode="none", **synth)
    # the non-fused modulated conv (NVIDIA's training-mode path) agrees with the fused one
    arrays["img_wplus_const_unfused"] = G_ema.synthesis(wplus, noise_mode="const",
                                                        fused_modconv=False, **synth)
    # the training network G of the same snapshot
    arrays["G_img_z_const"] = G(z, c, noise_mode="const", **synth)
    # the discriminator: 8 images (two minibatch-stddev groups of 4) and 2 (one group of 2)
    imgs = inputs(8, 3, NVIDIA_RES, NVIDIA_RES, seed=204)
    arrays["d_img8"] = imgs
    arrays["d_logits8"] = D(imgs, None, force_fp32=True)
    arrays["d_logits2"] = D(imgs[:2], None, force_fp32=True)
    frac = nvidia_clamp_fraction(G_ema, wplus)
    print(f"NVIDIA G_ema: {frac:.1%} of synthesis-layer outputs at the conv_clamp bound")
    assert 0.001 < frac < 0.2, frac
    diff = (arrays["img_z_const"] - arrays["img_z_none"]).abs().max()
    assert diff > 1e-2, "noise has no visible effect"
    return to_numpy(arrays, inputs=("z", "w", "wplus", "d_img8"))


def loss_weights(shape: tuple[int, ...]) -> torch.Tensor:
    """Fixed weights of the scalar whose gradients are recorded (recomputed by the tests)."""
    n = int(np.prod(shape))
    return torch.cos(torch.arange(n, dtype=torch.float64) * 0.37 + 0.1).reshape(shape).float()


def nvidia_gradients(G_ema: torch.nn.Module, D: torch.nn.Module, arrays: dict[str, np.ndarray]
                     ) -> dict[str, np.ndarray]:
    """Training-mode behaviour: the w_avg update and the gradients of fixed scalars.

    G: train mode (NVIDIA then runs the non-fused modulated conv and updates w_avg), ws from the
    mapping of z, noise 'const'; gradients of ``sum(img * loss_weights)`` w.r.t. every parameter
    and w.r.t. a W+ leaf. D: gradients of ``sum(logits * loss_weights)`` w.r.t. every parameter
    and the images (R1's gradient) on the first 4 images (one stddev group)."""
    G = copy.deepcopy(G_ema).train().requires_grad_(True)
    z = torch.from_numpy(arrays["z"].astype(np.float32))
    c = torch.zeros([z.shape[0], 0])
    ws = G.mapping(z, c)
    out: dict[str, torch.Tensor] = {"train_w_avg": G.mapping.w_avg.detach().clone()}
    img = G.synthesis(ws, noise_mode="const", force_fp32=True)
    out["train_img_z_const"] = img.detach()
    names, params = zip(*G.named_parameters(), strict=True)
    grads = torch.autograd.grad((img * loss_weights(img.shape)).sum(), params)
    out.update({f"gradG/{k}": g for k, g in zip(names, grads, strict=True)})
    wplus = torch.from_numpy(arrays["wplus"].astype(np.float32)).requires_grad_(True)
    img = G.synthesis(wplus, noise_mode="const", force_fp32=True)
    out["gradG_wplus"], = torch.autograd.grad((img * loss_weights(img.shape)).sum(), [wplus])

    D = copy.deepcopy(D).train().requires_grad_(True)
    imgs = torch.from_numpy(arrays["d_img8"][:4].astype(np.float32)).requires_grad_(True)
    logits = D(imgs, None, force_fp32=True)
    names, params = zip(*D.named_parameters(), strict=True)
    grads = torch.autograd.grad((logits * loss_weights(logits.shape)).sum(), [imgs, *params])
    out["gradD_img4"] = grads[0]
    out.update({f"gradD/{k}": g for k, g in zip(names, grads[1:], strict=True)})
    assert all(bool((g != 0).any()) for g in out.values()), "a gradient is all zero"
    return to_numpy(out, inputs=())


# ---------------------------------------------------------------------------------------------
# rosinality


def import_rosinality(ref: Path) -> types.ModuleType:
    """rosinality's ``model`` module, its ``op`` package imported without building CUDA code."""
    import torch.utils.cpp_extension as cpp_extension

    real_load = cpp_extension.load

    def no_build(name: str, *args: object, **kwargs: object) -> None:
        return None  # only the CUDA branches use the result; on CPU they are never reached

    cpp_extension.load = no_build
    try:
        with on_path(ref):
            import model as rosinality_model
    finally:
        cpp_extension.load = real_load
    return rosinality_model


def make_rosinality(ref: Path, out: Path) -> None:
    model = import_rosinality(ref)

    class SmallGenerator(model.Generator):
        """rosinality's Generator with a small channel table (its __init__ writes
        ``self.channels`` once and builds every layer from it)."""

        def __setattr__(self, name: str, value: object) -> None:
            if name == "channels":
                value = dict(ROS_CHANNELS)
            super().__setattr__(name, value)

    torch.manual_seed(1)
    g = SmallGenerator(ROS_SIZE, ROS_STYLE_DIM, ROS_N_MLP).eval()
    gen = rng(301)
    with torch.no_grad():
        for name, p in g.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.startswith("style.") and name.endswith(".bias"):
                p.copy_(noise * 0.3 / 0.01)  # EqualLinear(lr_mul=0.01) stores bias / 0.01
            elif name.endswith("modulation.bias"):
                p.add_(0.3 * noise)
            elif name.endswith("noise.weight"):
                p.copy_(0.2 * noise.sign() * (noise.abs() + 0.5))
            elif name.endswith("bias"):  # activate.bias, to_rgb bias
                p.copy_(0.2 * noise)
            else:
                p.mul_(1 + 0.2 * noise).add_(0.05 * noise * p.std())
        latent_avg = (g.style(randn(512, ROS_STYLE_DIM, seed=302)).mean(0)
                      + 0.3 * randn(ROS_STYLE_DIM, seed=303))
    state = g.state_dict()
    assert_nonzero(dict(state), "rosinality g_ema")
    pt_path = out / "rosinality_g32.pt"
    torch.save({"g_ema": state, "latent_avg": latent_avg}, pt_path)

    arrays = rosinality_outputs(g, latent_avg)
    np.savez_compressed(out / "rosinality_g32.npz", **arrays)
    print(f"wrote {pt_path} ({pt_path.stat().st_size} bytes) and rosinality_g32.npz")


@torch.no_grad()
def rosinality_outputs(g: torch.nn.Module, latent_avg: torch.Tensor) -> dict[str, np.ndarray]:
    n = 2
    z = inputs(n, ROS_STYLE_DIM, seed=401)
    z2 = inputs(n, ROS_STYLE_DIM, seed=402)
    w = inputs(n, ROS_STYLE_DIM, seed=403)
    wplus = inputs(n, g.n_latent, ROS_STYLE_DIM, seed=404)
    zeros = [torch.zeros_like(getattr(g.noises, f"noise_{i}")) for i in range(g.num_layers)]
    stored = dict(randomize_noise=False)  # the noises.noise_i buffers ('const')
    arrays: dict[str, torch.Tensor] = {"z": z, "z2": z2, "w": w, "wplus": wplus,
                                       "latent_avg": latent_avg}
    arrays["w_z"] = g.style(z)
    arrays["img_z_const"], _ = g([z], **stored)
    arrays["img_z_none"], _ = g([z], noise=zeros)
    arrays["img_z_psi05_const"], _ = g([z], truncation=0.5, truncation_latent=latent_avg,
                                       **stored)
    arrays["img_w_const"], _ = g([w], input_is_latent=True, **stored)
    arrays["img_wplus_const"], _ = g([wplus], input_is_latent=True, **stored)
    arrays["img_wplus_none"], _ = g([wplus], input_is_latent=True, noise=zeros)
    # style mixing: rows [0, 3) from z, [3, n_latent) from z2
    arrays["img_mix3_const"], latent = g([z, z2], inject_index=3, return_latents=True,
                                         **stored)
    arrays["ws_mix3"] = latent
    # explicitly passed noise tensors == the stored buffers
    explicit = [getattr(g.noises, f"noise_{i}").clone() for i in range(g.num_layers)]
    same, _ = g([z], noise=explicit)
    assert torch.equal(same, arrays["img_z_const"])
    diff = (arrays["img_z_const"] - arrays["img_z_none"]).abs().max()
    assert diff > 1e-2, "noise has no visible effect"
    return to_numpy(arrays, inputs=("z", "z2", "w", "wplus"))


def to_numpy(arrays: dict[str, torch.Tensor], inputs: tuple[str, ...]) -> dict[str, np.ndarray]:
    """float32 arrays; the (float16-valued) inputs as float16 to halve their size."""
    out = {}
    for key, value in arrays.items():
        value = value.detach().cpu()
        if key in inputs:
            assert torch.equal(value.half().float(), value), key
            value = value.half()
        out[key] = value.numpy()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nvidia", type=Path, required=True,
                        help=f"export of NVlabs/stylegan2-ada-pytorch @ {NVIDIA_COMMIT[:8]}")
    parser.add_argument("--rosinality", type=Path, required=True,
                        help=f"export of rosinality/stylegan2-pytorch @ {ROSINALITY_COMMIT[:8]}")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (tests/golden)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    make_nvidia(args.nvidia.resolve(), args.out)
    make_rosinality(args.rosinality.resolve(), args.out)
    for path in sorted(args.out.glob("*_g32.*")):
        size = path.stat().st_size
        assert size < 1_000_000, f"{path} is {size} bytes"


if __name__ == "__main__":
    main()
