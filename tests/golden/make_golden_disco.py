"""Write ``disco_g64.pt`` + ``disco_g64.npz``: a generator in the layout of DisCo's public
3DShapes / MPI3D / Cars3D StyleGAN2 files, made and run by DisCo's own model code.

Run by hand, once, when the fixture needs remaking; ``tests/test_golden_disco.py`` only reads the
files written here and never needs DisCo. xrenaa/DisCo at commit
a3ceda76f8589e53da8dace5c8991ab42a2865dd: ``models/StyleGAN2/models.py`` (its copy of
rosinality's StyleGAN2 with the ``small`` option) and ``models/StyleGAN2/op``, both unchanged.

DisCo's ``models/loader.py`` builds the generator of those three datasets as
``Generator(size=64, style_dim=512, n_mlp=3, channel_multiplier=4, small=True)`` and reads each
file with ``generator.load_state_dict(torch.load(path))``: a bare state dict (no ``g_ema`` key,
no ``latent_avg``). ``small=True`` gives every resolution, 4 to 64, the same width,
``64 * channel_multiplier`` channels (256 for DisCo's files, about 30 MB). The fixture keeps
that layout and DisCo's code path but is small: ``style_dim`` 32 instead of 512 and
``channel_multiplier`` 1 (64 channels at every resolution), n_mlp 3 and 64 px as DisCo has
them. Every parameter is perturbed (nothing is left at its zero / one initialisation), the
state dict is saved bare with ``torch.save(generator.state_dict(), path)``, read back the way
DisCo's loader reads it into a fresh ``Generator`` (strict), and the outputs for fixed inputs
are recorded (noise 'const' = DisCo's ``randomize_noise=False``, its stored ``noises.noise_i``;
'none' = explicit all-zero noise tensors; ``input_is_latent=True`` for W and W+; style mixing
at index 3). ``info`` (a JSON string) records the commit, the settings and the torch / numpy
versions.

How to run (seconds on one CPU core)::

    mkdir -p /tmp/refs-disco
    git -C <mirror of xrenaa/DisCo> archive a3ceda76 -- models/__init__.py \\
        models/StyleGAN2/models.py models/StyleGAN2/op | tar -x -C /tmp/refs-disco
    OMP_NUM_THREADS=1 python tests/golden/make_golden_disco.py --disco /tmp/refs-disco

The export stays outside the repository; nothing of it is copied in. DisCo's ``op`` package
compiles its CUDA extensions at import, so ``torch.utils.cpp_extension.load`` is replaced by a
stub while it is imported (its CPU branches never touch the extension). DisCo's package is named
``models`` like the suite's: this script never imports the suite. Everything is float32; reruns
reproduce both files byte for byte.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_golden import assert_nonzero, inputs, on_path, rng, to_numpy  # noqa: E402

DISCO_COMMIT = "a3ceda76f8589e53da8dace5c8991ab42a2865dd"
SIZE = 64
STYLE_DIM = 32  # DisCo: 512
N_MLP = 3
CHANNEL_MULTIPLIER = 1  # DisCo: 4 (256 channels at every resolution)
NAME = "disco_g64"
MAX_BYTES = 2_000_000


def import_disco_models(ref: Path) -> types.ModuleType:
    """DisCo's ``models.StyleGAN2.models``, its ``op`` package imported without building CUDA
    code."""
    import torch.utils.cpp_extension as cpp_extension

    real_load = cpp_extension.load

    def no_build(name: str, *args: object, **kwargs: object) -> None:
        return None  # only the CUDA branches use the result; on CPU they are never reached

    if "models" in sys.modules:
        raise RuntimeError("a module named 'models' is already imported; run this script alone")
    cpp_extension.load = no_build
    try:
        with on_path(ref):
            from models.StyleGAN2 import models as disco_models
    finally:
        cpp_extension.load = real_load
    return disco_models


def build(disco_models: types.ModuleType) -> torch.nn.Module:
    """DisCo's generator call of models/loader.py, with the fixture's style_dim and multiplier."""
    return disco_models.Generator(size=SIZE, style_dim=STYLE_DIM, n_mlp=N_MLP,
                                  channel_multiplier=CHANNEL_MULTIPLIER, small=True).eval()


def perturb(g: torch.nn.Module, seed: int) -> None:
    """Random, non-zero values everywhere at scales that keep the activations O(1) (as
    make_golden.py does for rosinality's generator)."""
    gen = rng(seed)
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


@torch.no_grad()
def outputs(g: torch.nn.Module) -> dict[str, np.ndarray]:
    n = 2
    z = inputs(n, STYLE_DIM, seed=501)
    z2 = inputs(n, STYLE_DIM, seed=502)
    w = inputs(n, STYLE_DIM, seed=503)
    wplus = inputs(n, g.n_latent, STYLE_DIM, seed=504)
    zeros = [torch.zeros_like(getattr(g.noises, f"noise_{i}")) for i in range(g.num_layers)]
    stored = dict(randomize_noise=False)  # the noises.noise_i buffers ('const')
    arrays: dict[str, torch.Tensor] = {"z": z, "z2": z2, "w": w, "wplus": wplus}
    arrays["w_z"] = g.style(z)
    arrays["img_z_const"], _ = g([z], **stored)
    arrays["img_z_none"], _ = g([z], noise=zeros)
    arrays["img_w_const"], _ = g([w], input_is_latent=True, **stored)
    arrays["img_wplus_const"], _ = g([wplus], input_is_latent=True, **stored)
    arrays["img_wplus_none"], _ = g([wplus], input_is_latent=True, noise=zeros)
    arrays["img_mix3_const"], latent = g([z, z2], inject_index=3, return_latents=True,
                                         **stored)
    arrays["ws_mix3"] = latent
    diff = (arrays["img_z_const"] - arrays["img_z_none"]).abs().max()
    assert diff > 1e-2, "noise has no visible effect"
    return to_numpy(arrays, inputs=("z", "z2", "w", "wplus"))


def make(ref: Path, out: Path) -> None:
    disco_models = import_disco_models(ref)
    torch.manual_seed(2)
    g = build(disco_models)
    channels = {res: int(c) for res, c in g.channels.items() if res <= SIZE}
    assert set(channels.values()) == {64 * CHANNEL_MULTIPLIER}, channels
    perturb(g, seed=601)
    state = g.state_dict()
    assert_nonzero(dict(state), "DisCo generator")
    pt_path = out / f"{NAME}.pt"
    torch.save(state, pt_path)

    # read back as DisCo's models/loader.py does: a fresh Generator, load_state_dict(torch.load)
    again = build(disco_models)
    again.load_state_dict(torch.load(pt_path))
    arrays = outputs(again)
    check = outputs(g)
    assert all(np.array_equal(arrays[k], check[k]) for k in arrays)
    arrays["info"] = np.array(json.dumps({
        "commit": DISCO_COMMIT, "size": SIZE, "style_dim": STYLE_DIM, "n_mlp": N_MLP,
        "channel_multiplier": CHANNEL_MULTIPLIER, "small": True, "channels": channels,
        "n_latent": int(g.n_latent), "torch": torch.__version__, "numpy": np.__version__,
    }, sort_keys=True))
    np.savez_compressed(out / f"{NAME}.npz", **arrays)
    for path in (pt_path, out / f"{NAME}.npz"):
        size = path.stat().st_size
        assert size < MAX_BYTES, f"{path} is {size} bytes"
    print(f"wrote {pt_path} ({pt_path.stat().st_size} bytes) and {NAME}.npz")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--disco", type=Path, required=True,
                        help=f"export of xrenaa/DisCo @ {DISCO_COMMIT[:8]} (models/StyleGAN2)")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (tests/golden)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    make(args.disco.resolve(), args.out)


if __name__ == "__main__":
    main()
