"""rosinality/stylegan2-pytorch checkpoints <-> native (NVIDIA-named) generator state dicts.

rosinality's ``.pt`` files store a ``g_ema`` state dict (and, when converted from TF, a
``latent_avg``) but no architecture, so the architecture is inferred from tensor shapes and key
counts. Two channel layouts of rosinality's ``Generator`` are recognised by name: the default
table (512 channels up to 32 px, then ``256 * channel_multiplier`` at 64 px, halving per
resolution) and ``small=True`` of the copies used by DisCo (one width, ``64 *
channel_multiplier``, at every resolution up to 64 px; DisCo's 3DShapes, MPI3D and Cars3D
generators are ``Generator(size=64, style_dim=512, n_mlp=3, channel_multiplier=4, small=True)``,
256 channels, saved as bare state dicts). Any other table is read as it is. The tensors
themselves are identical to the native ones up to renaming and a few reshapes (spec §1.8); the
FIR kernels stored by rosinality are recomputed, never imported.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.io import atomic_path
from models.stylegan2.config import StyleGAN2Config
from models.stylegan2.foreign import (
    CheckpointFormatError,
    estimate_w_avg,
    generator_from_state_dict,
    read_torch_checkpoint,
    short_list,
)
from models.stylegan2.generator import StyleGAN2Generator
from models.stylegan2.ops import setup_filter

# Channel table of rosinality's Generator: 512 up to 32, then 256*cm, 128*cm, ... at 64, 128, ...
_R_FIXED = {4: 512, 8: 512, 16: 512, 32: 512}
_R_SCALED = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def rosinality_channels(resolution: int, channel_multiplier: int) -> dict[int, int]:
    """Channels per block resolution of rosinality's ``Generator(resolution, ..., cm)``."""
    table = {**_R_FIXED, **{r: c * channel_multiplier for r, c in _R_SCALED.items()}}
    return {res: table[res] for res in block_resolutions(resolution)}


def small_channels(resolution: int, channel_multiplier: int) -> dict[int, int]:
    """Channels per block resolution of ``Generator(resolution, ..., cm, small=True)`` (the
    option of DisCo's copy of rosinality's model; resolution <= 64)."""
    return {res: 64 * channel_multiplier for res in block_resolutions(resolution)}


def block_resolutions(resolution: int) -> list[int]:
    """4, 8, ..., resolution (a power of two >= 4)."""
    log2 = int(math.log2(resolution)) if resolution >= 4 else 0
    if resolution < 4 or 2**log2 != resolution:
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
    return [2**k for k in range(2, log2 + 1)]


@dataclass(frozen=True)
class RosinalityArchitecture:
    """What a rosinality ``g_ema`` state dict implies about its ``Generator``.

    ``channel_multiplier`` is None when the channels follow no rosinality table. Up to 32x32
    every multiplier gives the same all-512 table; 2 (config-f) is reported then. ``small``:
    the table is ``small=True``'s (one width, ``64 * channel_multiplier``, up to 64 px) and not
    also the default table's.
    """

    resolution: int
    style_dim: int
    n_mlp: int
    channels: dict[int, int]
    img_channels: int
    channel_multiplier: int | None
    small: bool = False

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.resolution)) - 2

    @property
    def layout(self) -> str:
        """The rosinality ``Generator`` call these tensors fit, or the channel table."""
        return rosinality_layout(self.resolution, self.channels, self.style_dim, self.n_mlp)


def rosinality_layout(resolution: int, channels: Mapping[int, int], style_dim: int | None = None,
                      n_mlp: int | None = None) -> str:
    """``Generator(size=..., [style_dim=..., n_mlp=...,] channel_multiplier=...[, small=True])``
    when ``channels`` is one of rosinality's tables, else ``channels {res: c, ...}``."""
    channels = dict(channels)
    head = f"size={resolution}"
    if style_dim is not None and n_mlp is not None:
        head += f", style_dim={style_dim}, n_mlp={n_mlp}"
    if resolution >= 64:
        for cm in (1, 2, 4, 8):
            if rosinality_channels(resolution, cm) == channels:
                return f"Generator({head}, channel_multiplier={cm})"
    elif channels == rosinality_channels(resolution, 2):
        return f"Generator({head})"
    widths = set(channels.values())
    if resolution <= 64 and len(widths) == 1 and min(widths) % 64 == 0:
        return f"Generator({head}, channel_multiplier={min(widths) // 64}, small=True)"
    return "channels " + ", ".join(f"{res}: {c}" for res, c in sorted(channels.items()))


# Keys rosinality stores that carry nothing the native generator needs (FIR kernels).
_R_IGNORED = re.compile(r"^(convs\.\d+\.conv\.blur\.kernel|to_rgbs\.\d+\.upsample\.kernel)$")
_R_NOISE_BUFFER = re.compile(r"^noises\.noise_(\d+)$")


# What the error lines say a rosinality file may hold.
_LAYOUTS = ("the default channel table or small=True (one width at every resolution, as in "
            "DisCo's 3DShapes/MPI3D/Cars3D files: Generator(size=64, style_dim=512, n_mlp=3, "
            "channel_multiplier=4, small=True), a bare state dict)")


def _fail(source: str, message: str) -> CheckpointFormatError:
    return CheckpointFormatError(f"{source}: {message}")


def infer_rosinality_architecture(
    state: Mapping[str, torch.Tensor], source: str = "rosinality state dict"
) -> RosinalityArchitecture:
    """Read resolution, style_dim, n_mlp, channels and image channels off the tensor shapes."""
    if "input.input" not in state or "style.1.weight" not in state:
        raise _fail(
            source,
            "not a rosinality generator state dict (expected keys 'input.input' and "
            f"'style.1.weight' of rosinality's Generator, {_LAYOUTS})",
        )
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in state:
        n_mlp += 1
    style_dim = int(state["style.1.weight"].shape[0])
    num_convs = 0
    while f"convs.{num_convs}.conv.weight" in state:
        num_convs += 1
    if num_convs % 2:
        raise _fail(source, f"odd number of 'convs.*' layers ({num_convs}); expected pairs")
    resolution = 4 * 2 ** (num_convs // 2)
    const = state["input.input"]
    if const.ndim != 4 or tuple(const.shape[2:]) != (4, 4):
        raise _fail(source, f"'input.input' has shape {tuple(const.shape)}; expected [1,C,4,4]")
    channels = {4: int(const.shape[1])}
    for j in range(num_convs // 2):  # block j (8 * 2**j px) opens with convs.{2j}
        channels[8 * 2**j] = int(state[f"convs.{2 * j}.conv.weight"].shape[1])
    rgb_weight = state.get("to_rgb1.conv.weight")
    img_channels = int(rgb_weight.shape[1]) if rgb_weight is not None else 3
    multiplier = None
    for cm in (1, 2, 4, 8):
        if rosinality_channels(resolution, cm) == channels and resolution >= 64:
            multiplier = cm
            break
    if resolution <= 32 and channels == rosinality_channels(resolution, 2):
        multiplier = 2
    small = False
    widths = set(channels.values())
    if (multiplier is None and resolution <= 64 and len(widths) == 1
            and min(widths) % 64 == 0):
        multiplier, small = min(widths) // 64, True
    return RosinalityArchitecture(resolution, style_dim, n_mlp, channels, img_channels, multiplier,
                                  small)


def _layer_pairs(resolution: int) -> list[tuple[str, str, int, int]]:
    """(rosinality prefix, native prefix, noise index, block resolution) for every modulated 3x3
    conv, in rosinality's order."""
    pairs = [("conv1", "synthesis.b4.conv1", 0, 4)]
    for j, res in enumerate(block_resolutions(resolution)[1:]):
        pairs.append((f"convs.{2 * j}", f"synthesis.b{res}.conv0", 2 * j + 1, res))
        pairs.append((f"convs.{2 * j + 1}", f"synthesis.b{res}.conv1", 2 * j + 2, res))
    return pairs


def _torgb_pairs(resolution: int) -> list[tuple[str, str]]:
    pairs = [("to_rgb1", "synthesis.b4.torgb")]
    for j, res in enumerate(block_resolutions(resolution)[1:]):
        pairs.append((f"to_rgbs.{j}", f"synthesis.b{res}.torgb"))
    return pairs


def rosinality_to_native(
    state: Mapping[str, torch.Tensor],
    latent_avg: torch.Tensor | None = None,
    source: str = "rosinality state dict",
) -> tuple[dict[str, torch.Tensor], RosinalityArchitecture]:
    """Rename a rosinality ``g_ema`` state dict to native names (strict).

    Unknown or missing keys raise, listing them; the FIR kernels are ignored and missing noise
    buffers (``noises.noise_i``) are allowed (the native model keeps its own). ``latent_avg``
    becomes ``mapping.w_avg`` when given.
    """
    arch = infer_rosinality_architecture(state, source)
    res = arch.resolution
    out: dict[str, torch.Tensor] = {}
    expected: set[str] = set()

    def take(r_key: str, n_key: str, shape: tuple[int, ...] | None = None) -> None:
        expected.add(r_key)
        if r_key not in state:
            return
        tensor = state[r_key].detach().clone()
        if shape is not None:
            if tensor.numel() != math.prod(shape):
                raise _fail(
                    source, f"'{r_key}' has shape {tuple(tensor.shape)}; expected {shape}"
                )
            tensor = tensor.reshape(shape)
        out[n_key] = tensor

    def take_modulated_conv(r_pre: str, n_pre: str) -> None:
        """A modulated conv's 5-d weight (leading batch axis dropped) and its style affine."""
        weight = state.get(f"{r_pre}.conv.weight")
        if weight is not None and weight.ndim != 5:
            raise _fail(source, f"'{r_pre}.conv.weight' has {weight.ndim} dims; expected 5")
        take(f"{r_pre}.conv.weight", f"{n_pre}.weight",
             tuple(weight.shape[1:]) if weight is not None else None)
        take(f"{r_pre}.conv.modulation.weight", f"{n_pre}.affine.weight")
        take(f"{r_pre}.conv.modulation.bias", f"{n_pre}.affine.bias")

    for i in range(arch.n_mlp):
        take(f"style.{i + 1}.weight", f"mapping.fc{i}.weight")
        take(f"style.{i + 1}.bias", f"mapping.fc{i}.bias")
    take("input.input", "synthesis.b4.const", (arch.channels[4], 4, 4))
    for r_pre, n_pre, noise_idx, _ in _layer_pairs(res):
        take_modulated_conv(r_pre, n_pre)
        take(f"{r_pre}.noise.weight", f"{n_pre}.noise_strength", ())
        take(f"{r_pre}.activate.bias", f"{n_pre}.bias")
        noise_key = f"noises.noise_{noise_idx}"
        if noise_key in state:
            side = int(state[noise_key].shape[-1])
            take(noise_key, f"{n_pre}.noise_const", (side, side))
    for r_pre, n_pre in _torgb_pairs(res):
        take_modulated_conv(r_pre, n_pre)
        take(f"{r_pre}.bias", f"{n_pre}.bias", (arch.img_channels,))

    optional = {k for k in expected if _R_NOISE_BUFFER.match(k)}
    missing = sorted(k for k in expected - optional if k not in state)
    unknown = sorted(k for k in state if k not in expected and not _R_IGNORED.match(k)
                     and not _R_NOISE_BUFFER.match(k))
    stray_noise = sorted(k for k in state if _R_NOISE_BUFFER.match(k) and k not in expected)
    unknown += stray_noise
    if missing or unknown:
        raise _fail(
            source,
            f"rosinality generator state dict does not match the keys of {arch.layout} "
            f"(expected {_LAYOUTS}); missing keys: {short_list(missing)}; unknown keys: "
            f"{short_list(unknown)}",
        )
    if latent_avg is not None:
        latent_avg = latent_avg.detach().clone().reshape(-1)
        if latent_avg.numel() != arch.style_dim:
            raise _fail(source, f"'latent_avg' has {latent_avg.numel()} entries; expected "
                                f"{arch.style_dim}")
        out["mapping.w_avg"] = latent_avg
    return out, arch


_NATIVE_BLOCK = re.compile(r"^synthesis\.b(\d+)\.")


def native_resolution(state: Mapping[str, torch.Tensor]) -> int:
    """Largest ``synthesis.b{res}`` block in a native state dict."""
    resolutions = [int(m.group(1)) for k in state if (m := _NATIVE_BLOCK.match(k))]
    if not resolutions:
        raise ValueError("native state dict has no 'synthesis.b{res}.*' keys")
    return max(resolutions)


def native_to_rosinality(
    state: Mapping[str, torch.Tensor], source: str = "native state dict"
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Rename a native state dict to rosinality's ``g_ema`` layout; returns (g_ema, latent_avg).

    Keys come in the order rosinality's ``Generator.state_dict()`` has them, FIR kernels
    included. Raises when the state dict holds anything rosinality's Generator cannot express
    (keys beyond the skip architecture, a channel table not of rosinality's form, z_dim !=
    w_dim). Missing noise (``use_noise=False``) is written as zero strength and zero noise buffers.
    """
    res = native_resolution(state)
    n_mlp = 0
    while f"mapping.fc{n_mlp}.weight" in state:
        n_mlp += 1
    if n_mlp == 0 or "mapping.w_avg" not in state:
        raise _fail(source, "expected 'mapping.fc0.weight' and 'mapping.w_avg'")

    def need(n_key: str) -> torch.Tensor:
        if n_key not in state:
            raise _fail(source, f"missing key '{n_key}'")
        return state[n_key]

    w_dim = int(state["mapping.w_avg"].numel())
    z_dim = int(state["mapping.fc0.weight"].shape[1])
    if z_dim != w_dim:
        raise _fail(source, f"rosinality needs z_dim == w_dim; got z_dim={z_dim}, w_dim={w_dim}")
    channels = {4: int(need("synthesis.b4.const").shape[0])}
    for r in block_resolutions(res)[1:]:
        channels[r] = int(need(f"synthesis.b{r}.conv0.weight").shape[0])
    if not any(rosinality_channels(res, cm) == channels for cm in (1, 2)):
        raise _fail(
            source,
            f"channel table {channels} is not expressible by rosinality's Generator "
            "(needs channel_base 16384 or 32768 with channel_max 512)",
        )
    img_channels = int(need("synthesis.b4.torgb.weight").shape[0])
    if img_channels != 3:
        raise _fail(source, f"rosinality's ToRGB has 3 channels; got {img_channels}")
    # rosinality keeps the FIR kernel of every up-sampling layer as a buffer (x up**2 = 4)
    up_kernel = setup_filter() * 4

    out: dict[str, torch.Tensor] = {}
    used: set[str] = {"mapping.w_avg"}
    noises: dict[str, torch.Tensor] = {}  # rosinality keeps them after every layer

    def put(n_key: str, r_key: str, shape: tuple[int, ...] | None = None,
            into: dict[str, torch.Tensor] = out) -> None:
        tensor = need(n_key).detach().clone()
        used.add(n_key)
        into[r_key] = tensor.reshape(shape) if shape is not None else tensor

    def put_conv_weight(r_pre: str, n_pre: str, upsample: bool) -> None:
        put(f"{n_pre}.weight", f"{r_pre}.conv.weight", (1, *need(f"{n_pre}.weight").shape))
        if upsample:
            out[f"{r_pre}.conv.blur.kernel"] = up_kernel.clone()
        put(f"{n_pre}.affine.weight", f"{r_pre}.conv.modulation.weight")
        put(f"{n_pre}.affine.bias", f"{r_pre}.conv.modulation.bias")

    def put_layer(r_pre: str, n_pre: str, noise_idx: int, side: int) -> None:
        put_conv_weight(r_pre, n_pre, upsample=n_pre.endswith(".conv0"))
        noise_key = f"noises.noise_{noise_idx}"
        if f"{n_pre}.noise_strength" in state:
            put(f"{n_pre}.noise_strength", f"{r_pre}.noise.weight", (1,))
            put(f"{n_pre}.noise_const", noise_key, (1, 1, side, side), into=noises)
        else:
            out[f"{r_pre}.noise.weight"] = torch.zeros(1)
            noises[noise_key] = torch.zeros(1, 1, side, side)
        put(f"{n_pre}.bias", f"{r_pre}.activate.bias")

    def put_torgb(r_pre: str, n_pre: str) -> None:
        put(f"{n_pre}.bias", f"{r_pre}.bias", (1, img_channels, 1, 1))
        if r_pre != "to_rgb1":
            out[f"{r_pre}.upsample.kernel"] = up_kernel.clone()
        put(f"{n_pre}.weight", f"{r_pre}.conv.weight", (1, *need(f"{n_pre}.weight").shape))
        put(f"{n_pre}.affine.weight", f"{r_pre}.conv.modulation.weight")
        put(f"{n_pre}.affine.bias", f"{r_pre}.conv.modulation.bias")

    for i in range(n_mlp):
        put(f"mapping.fc{i}.weight", f"style.{i + 1}.weight")
        put(f"mapping.fc{i}.bias", f"style.{i + 1}.bias")
    put("synthesis.b4.const", "input.input", (1, channels[4], 4, 4))
    layers, torgbs = _layer_pairs(res), _torgb_pairs(res)
    put_layer(*layers[0])
    put_torgb(*torgbs[0])
    for layer in layers[1:]:
        put_layer(*layer)
    for torgb in torgbs[1:]:
        put_torgb(*torgb)
    out.update(noises)
    leftover = sorted(k for k in state if k not in used and not k.endswith("resample_filter"))
    if leftover:
        raise _fail(source, f"keys rosinality's Generator cannot express: {short_list(leftover)}")
    return out, state["mapping.w_avg"].detach().clone()


# ---------------------------------------------------------------------------------------------
# Files


def is_rosinality_state_dict(obj: Any) -> bool:
    """True for a bare rosinality ``g_ema`` state dict (some tools save only that)."""
    return isinstance(obj, Mapping) and "input.input" in obj and "style.1.weight" in obj


def split_rosinality_checkpoint(
    ckpt: Any, source: str
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """(g_ema state dict, latent_avg or None) of a loaded rosinality checkpoint object.

    Accepts the usual ``{"g_ema": ..., ["latent_avg": ...]}`` dict and a bare ``g_ema``."""
    if is_rosinality_state_dict(ckpt):
        ckpt = {"g_ema": ckpt}
    if not isinstance(ckpt, Mapping) or "g_ema" not in ckpt:
        keys = sorted(map(str, ckpt))[:8] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise _fail(source, f"expected a rosinality checkpoint dict with key 'g_ema'; "
                            f"found {keys}")
    g_ema = ckpt["g_ema"]
    if not isinstance(g_ema, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in g_ema.values()
    ):
        raise _fail(source, "'g_ema' is not a state dict of tensors")
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise _fail(source, f"'latent_avg' is a {type(latent_avg).__name__}; expected a tensor")
    return dict(g_ema), latent_avg


def rosinality_config(
    arch: RosinalityArchitecture, mapping_lr_mul: float = 0.01
) -> StyleGAN2Config:
    """The native config for a rosinality Generator: skip architecture, noise on, no clamp.

    rosinality does not store ``lr_mlp``; its default 0.01 is assumed unless given."""
    base = {
        "resolution": arch.resolution,
        "z_dim": arch.style_dim,
        "w_dim": arch.style_dim,
        "mapping_layers": arch.n_mlp,
        "img_channels": arch.img_channels,
        "use_noise": True,
        "conv_clamp": None,
        "mapping_lr_mul": mapping_lr_mul,
    }
    if arch.channel_multiplier in (1, 2):
        config = StyleGAN2Config(**base, channel_base=16384 * arch.channel_multiplier,
                                 channel_max=512)
        if config.channel_table() == arch.channels:
            return config
    return StyleGAN2Config(**base, channels=tuple(sorted(arch.channels.items())))


def load_rosinality_generator(
    path: str | os.PathLike[str],
    *,
    w_avg_samples: int = 10_000,
    seed: int = 0,
    mapping_lr_mul: float = 0.01,
) -> StyleGAN2Generator:
    """Import a rosinality ``.pt`` (converted or training checkpoint) as a native generator.

    ``mapping.w_avg`` comes from ``latent_avg`` when the file has one; otherwise it is the mean
    mapping output over ``w_avg_samples`` z drawn with ``seed``."""
    return rosinality_generator(read_torch_checkpoint(path, "rosinality"), str(path),
                                w_avg_samples=w_avg_samples, seed=seed,
                                mapping_lr_mul=mapping_lr_mul)


def rosinality_generator(
    ckpt: Any,
    source: str,
    *,
    w_avg_samples: int = 10_000,
    seed: int = 0,
    mapping_lr_mul: float = 0.01,
) -> StyleGAN2Generator:
    """Native generator from an already loaded rosinality checkpoint object."""
    g_ema, latent_avg = split_rosinality_checkpoint(ckpt, source)
    state, arch = rosinality_to_native(g_ema, latent_avg, source=source)
    config = rosinality_config(arch, mapping_lr_mul)
    optional = {*noise_buffer_keys(config), "mapping.w_avg"}
    G = generator_from_state_dict(config, state, source, optional=optional)
    if latent_avg is None:
        G.mapping.w_avg.copy_(estimate_w_avg(G, w_avg_samples, seed))
    return G


def noise_buffer_keys(config: StyleGAN2Config) -> list[str]:
    """Native ``noise_const`` buffer keys of a generator with this config."""
    if not config.use_noise:
        return []
    keys = ["synthesis.b4.conv1.noise_const"]
    for res in config.block_resolutions[1:]:
        keys += [f"synthesis.b{res}.conv0.noise_const", f"synthesis.b{res}.conv1.noise_const"]
    return keys


def save_rosinality_generator(
    G: StyleGAN2Generator, path: str | os.PathLike[str], *, allow_conv_clamp: bool = False
) -> Path:
    """Export ``G`` as a rosinality ``.pt`` (``{"g_ema": ..., "latent_avg": ...}``, atomic).

    Refused (ValueError) when rosinality's Generator cannot reproduce ``G``: channels not of the
    form channel_base 16384/32768 with channel_max 512, z_dim != w_dim, img_channels != 3, a
    mapping lr multiplier other than rosinality's default 0.01, or a conv_clamp (rosinality has
    none; pass ``allow_conv_clamp=True`` to drop it anyway)."""
    config = G.config
    problems = []
    if config.mapping_lr_mul != 0.01:
        problems.append(f"mapping_lr_mul={config.mapping_lr_mul} (rosinality assumes 0.01)")
    if config.conv_clamp is not None and not allow_conv_clamp:
        problems.append(f"conv_clamp={config.conv_clamp} (rosinality has no clamp; "
                        "pass allow_conv_clamp=True to drop it)")
    if problems:
        raise CheckpointFormatError(f"{path}: cannot export to rosinality format: "
                                    + "; ".join(problems))
    return write_rosinality_checkpoint(G.state_dict(), path)


def write_rosinality_checkpoint(
    native_state: Mapping[str, torch.Tensor], path: str | os.PathLike[str]
) -> Path:
    """Write ``{"g_ema": ..., "latent_avg": ...}`` (atomic) for rosinality-based tools."""
    path = Path(path)
    g_ema, latent_avg = native_to_rosinality(native_state, source=str(path))
    with atomic_path(path) as tmp:
        torch.save({"g_ema": g_ema, "latent_avg": latent_avg}, tmp)
    return path
