"""DisCo's public StyleGAN2 generators (3DShapes, MPI3D, Cars3D) load unchanged.

``tests/golden/disco_g64.pt`` is a bare state dict written by DisCo's own model code (its copy of
rosinality's ``Generator`` with ``small=True``, 64 px, n_mlp 3, as DisCo's ``models/loader.py``
builds it; style_dim 32 and 64 channels instead of 512 and 256 to stay small), with DisCo's
outputs for fixed inputs in ``disco_g64.npz`` (``tests/golden/make_golden_disco.py``, run by
hand; these tests never need DisCo). Conventions bridged as in ``test_golden_stylegan2.py``:
``randomize_noise=False`` -> noise_mode 'const', all-zero noise tensors -> 'none',
``input_is_latent=True`` -> ``synthesize``; mixing at index 3 -> W+ rows [0, 3) from z.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from models.stylegan2 import StyleGAN2Generator
from models.stylegan2.loader import describe_generator, inspect_generator, load_any_generator
from models.stylegan2.rosinality import block_resolutions, rosinality_to_native

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GOLDEN = Path(__file__).resolve().parent / "golden"
DISCO_PT = GOLDEN / "disco_g64.pt"
ATOL = 1e-4

Arrays = dict[str, torch.Tensor]
Case = Callable[[StyleGAN2Generator, Arrays, bool], torch.Tensor]


def load_arrays() -> tuple[Arrays, dict]:
    with np.load(GOLDEN / "disco_g64.npz") as data:
        arrays = {k: torch.from_numpy(data[k].astype(np.float32)) for k in data.files
                  if k != "info"}
        info = json.loads(str(data["info"]))
    return arrays, info


@pytest.fixture(scope="module")
def disco() -> tuple[StyleGAN2Generator, Arrays]:
    return load_any_generator(DISCO_PT), load_arrays()[0]


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return float((a - b).abs().max())


def mixed_ws(G: StyleGAN2Generator, a: Arrays, index: int = 3) -> torch.Tensor:
    return torch.cat([G.mapping_ws(a["z"])[:, :index], G.mapping_ws(a["z2"])[:, index:]], dim=1)


def test_disco_file_is_a_bare_state_dict_of_the_small_layout(
        disco: tuple[StyleGAN2Generator, Arrays]) -> None:
    G, a = disco
    _, info = load_arrays()
    raw = torch.load(DISCO_PT, map_location="cpu", weights_only=True)
    assert "g_ema" not in raw and "latent_avg" not in raw and "input.input" in raw
    c = G.config
    assert (c.resolution, c.z_dim, c.w_dim, c.mapping_layers, c.num_ws) == (64, 32, 32, 3, 10)
    assert c.channel_table() == dict.fromkeys((4, 8, 16, 32, 64), 64)
    assert info["channels"] == {str(r): 64 for r in (4, 8, 16, 32, 64)} and info["small"]
    assert c.use_noise and c.conv_clamp is None and c.mapping_lr_mul == 0.01
    assert describe_generator(G, "rosinality").endswith(
        "64 channels, layout Generator(size=64, channel_multiplier=1, small=True)")
    assert str(inspect_generator(DISCO_PT)) == describe_generator(G, "rosinality")
    with torch.no_grad():
        assert max_abs(G.mapping(a["z"]), a["w_z"]) <= ATOL
        assert max_abs(mixed_ws(G, a), a["ws_mix3"]) <= ATOL


CASES: dict[str, Case] = {
    "img_z_const": lambda G, a, f: G.synthesize(G.mapping_ws(a["z"]), "const", fused=f),
    "img_z_none": lambda G, a, f: G.synthesize(G.mapping_ws(a["z"]), "none", fused=f),
    "img_w_const": lambda G, a, f: G.synthesize(a["w"], "const", fused=f),
    "img_wplus_const": lambda G, a, f: G.synthesize(a["wplus"], "const", fused=f),
    "img_wplus_none": lambda G, a, f: G.synthesize(a["wplus"], "none", fused=f),
    "img_mix3_const": lambda G, a, f: G.synthesize(mixed_ws(G, a), "const", fused=f),
}


@pytest.mark.parametrize("fused", [False, True], ids=["nonfused", "fused"])
@pytest.mark.parametrize("case", list(CASES))
def test_disco_images(disco: tuple[StyleGAN2Generator, Arrays], case: str, fused: bool) -> None:
    G, a = disco
    with torch.no_grad():
        out = CASES[case](G, a, fused)
    assert max_abs(out, a[case]) <= ATOL
    assert max_abs(a["img_z_const"], a["img_z_none"]) > 0.1  # the noise is not vacuous


def small_layout_shapes(style_dim: int, channels: int, n_mlp: int = 3,
                        size: int = 64) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state dict of DisCo's ``Generator(size, style_dim, n_mlp,
    channel_multiplier=channels // 64, small=True)`` (checked against the golden file)."""
    c, s = channels, style_dim
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, n_mlp + 1):
        shapes |= {f"style.{i}.weight": (s, s), f"style.{i}.bias": (s,)}
    shapes["input.input"] = (1, c, 4, 4)

    def styled(prefix: str, upsample: bool) -> None:
        shapes.update({f"{prefix}.conv.weight": (1, c, c, 3, 3),
                       f"{prefix}.conv.modulation.weight": (c, s),
                       f"{prefix}.conv.modulation.bias": (c,),
                       f"{prefix}.noise.weight": (1,), f"{prefix}.activate.bias": (c,)})
        if upsample:
            shapes[f"{prefix}.conv.blur.kernel"] = (4, 4)

    def to_rgb(prefix: str, upsample: bool) -> None:
        shapes.update({f"{prefix}.conv.weight": (1, 3, c, 1, 1),
                       f"{prefix}.conv.modulation.weight": (c, s),
                       f"{prefix}.conv.modulation.bias": (c,), f"{prefix}.bias": (1, 3, 1, 1)})
        if upsample:
            shapes[f"{prefix}.upsample.kernel"] = (4, 4)

    styled("conv1", False)
    to_rgb("to_rgb1", False)
    sides = [4] + [r for r in block_resolutions(size)[1:] for _ in range(2)]
    shapes |= {f"noises.noise_{i}": (1, 1, r, r) for i, r in enumerate(sides)}
    for j in range(len(block_resolutions(size)) - 1):
        styled(f"convs.{2 * j}", True)
        styled(f"convs.{2 * j + 1}", False)
        to_rgb(f"to_rgbs.{j}", True)
    return shapes


def test_disco_published_layout_is_read_as_such() -> None:
    """The layout of DisCo's published files (style_dim 512, 256 channels), written out by rule
    and checked against the golden file's keys and shapes at its own sizes, imports strictly
    (no missing or unknown key) as small=True with channel_multiplier 4; 30.4 MiB of float32."""
    raw = torch.load(DISCO_PT, map_location="cpu", weights_only=True)
    assert {k: tuple(v.shape) for k, v in raw.items()} == small_layout_shapes(32, 64)
    shapes = small_layout_shapes(512, 256)
    with torch.device("meta"):
        state = {k: torch.empty(shape) for k, shape in shapes.items()}
    native, arch = rosinality_to_native(state, source="0.pt")
    assert arch.layout == ("Generator(size=64, style_dim=512, n_mlp=3, channel_multiplier=4, "
                           "small=True)")
    assert arch.small and arch.channel_multiplier == 4 and arch.num_ws == 10
    assert arch.channels == dict.fromkeys((4, 8, 16, 32, 64), 256)
    assert native["synthesis.b64.conv1.weight"].shape == (256, 256, 3, 3)
    mebibytes = 4 * sum(math.prod(shape) for shape in shapes.values()) / 2**20
    assert 30.3 < mebibytes < 30.4, mebibytes
