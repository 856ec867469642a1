"""genforce / SeFa StyleGAN2 ``.pth`` checkpoints <-> native (NVIDIA-named) state dicts.

genforce files are ``torch.save`` dicts with ``generator`` and, for the EMA weights,
``generator_smooth`` (preferred, as SeFa does). Besides the renaming (spec §1.5, §1.7(d)), two
value conventions differ from NVIDIA's, as read from genforce's ``stylegan2_generator.py``:

* style (affine) biases are stored WITHOUT the +1 initial bias, which genforce adds at run
  time (``additional_bias=1.0``); native biases include it;
* up-sampling conv weights are stored in TF orientation and flipped spatially at run time;
  native (NVIDIA and rosinality) weights are stored already flipped.

Only the default ``skip`` architecture with a constant input and repeated w is supported. No
architecture is stored, so it is inferred from tensor shapes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import torch

from models.stylegan2.foreign import (
    CheckpointFormatError,
    generator_from_state_dict,
    infer_native_config,
    read_torch_checkpoint,
    short_list,
)
from models.stylegan2.generator import StyleGAN2Generator

_IGNORED = re.compile(r"^synthesis\.(layer\d+\.filter\.kernel|upsample\.kernel)$")


def is_genforce_state_dict(obj: Any) -> bool:
    """True for a bare genforce generator state dict."""
    return isinstance(obj, Mapping) and "synthesis.early_layer.const" in obj


def _layer_names(num_ws: int) -> list[tuple[str, str, bool]]:
    """(genforce layer, native layer, is up-conv) for every modulated 3x3 conv."""
    out = [("layer0", "synthesis.b4.conv1", False)]
    for j in range(1, num_ws - 1):
        k = (j + 5) // 2 if j % 2 else (j + 4) // 2  # block at 2^k
        out.append((f"layer{j}", f"synthesis.b{2**k}.conv{0 if j % 2 else 1}", j % 2 == 1))
    return out


def genforce_to_native(
    state: Mapping[str, torch.Tensor], source: str = "genforce state dict"
) -> dict[str, torch.Tensor]:
    """Rename and convert a genforce generator state dict (strict; FIR kernels ignored)."""
    if not is_genforce_state_dict(state):
        raise CheckpointFormatError(f"{source}: not a genforce StyleGAN2 generator state dict "
                                    "(expected key 'synthesis.early_layer.const')")
    num_outputs = 0
    while f"synthesis.output{num_outputs}.weight" in state:
        num_outputs += 1
    num_ws = 2 * num_outputs
    resolution = 2 ** (num_outputs + 1)
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(g_key: str, n_key: str, convert: Any = None) -> None:
        used.add(g_key)
        if g_key not in state:
            raise CheckpointFormatError(f"{source}: missing key '{g_key}' for a "
                                        f"{resolution}x{resolution} genforce generator")
        tensor = state[g_key].detach().clone()
        out[n_key] = convert(tensor) if convert is not None else tensor

    num_mapping = 0
    while f"mapping.dense{num_mapping}.weight" in state:
        take(f"mapping.dense{num_mapping}.weight", f"mapping.fc{num_mapping}.weight")
        take(f"mapping.dense{num_mapping}.bias", f"mapping.fc{num_mapping}.bias")
        num_mapping += 1
    if num_mapping == 0:
        raise CheckpointFormatError(f"{source}: genforce generator without mapping layers "
                                    "(expected 'mapping.dense0.weight')")
    take("synthesis.early_layer.const", "synthesis.b4.const", lambda t: t.reshape(t.shape[1:]))
    for g_layer, n_layer, up in _layer_names(num_ws):
        g_pre = f"synthesis.{g_layer}"
        take(f"{g_pre}.weight", f"{n_layer}.weight",
             (lambda t: t.flip(2, 3)) if up else None)
        take(f"{g_pre}.bias", f"{n_layer}.bias")
        take(f"{g_pre}.style.weight", f"{n_layer}.affine.weight")
        take(f"{g_pre}.style.bias", f"{n_layer}.affine.bias", lambda t: t + 1)
        if f"{g_pre}.noise_strength" in state:
            take(f"{g_pre}.noise_strength", f"{n_layer}.noise_strength",
                 lambda t: t.reshape(()))
            take(f"{g_pre}.noise", f"{n_layer}.noise_const",
                 lambda t: t.reshape(t.shape[-2:]))
    for k in range(num_outputs):
        g_pre, n_pre = f"synthesis.output{k}", f"synthesis.b{2 ** (k + 2)}.torgb"
        take(f"{g_pre}.weight", f"{n_pre}.weight")
        take(f"{g_pre}.bias", f"{n_pre}.bias")
        take(f"{g_pre}.style.weight", f"{n_pre}.affine.weight")
        take(f"{g_pre}.style.bias", f"{n_pre}.affine.bias", lambda t: t + 1)
    if "truncation.w_avg" in state:
        take("truncation.w_avg", "mapping.w_avg")
        w_dim = int(out["mapping.fc0.weight"].shape[0])
        if out["mapping.w_avg"].numel() != w_dim:
            raise CheckpointFormatError(f"{source}: 'truncation.w_avg' has "
                                        f"{out['mapping.w_avg'].numel()} entries; only "
                                        f"repeat_w=True generators (w_avg of size {w_dim}) "
                                        "are supported")
    unknown = sorted(k for k in state if k not in used and not _IGNORED.match(k))
    if unknown:
        raise CheckpointFormatError(f"{source}: keys the skip-architecture StyleGAN2 generator "
                                    f"does not have: {short_list(unknown)}")
    return out


def native_to_genforce(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of ``genforce_to_native`` (FIR kernel buffers are not written)."""
    resolution = max(int(k.split(".")[1][1:]) for k in state if k.startswith("synthesis.b"))
    num_ws = 2 * int(math.log2(resolution)) - 2
    out: dict[str, torch.Tensor] = {}
    i = 0
    while f"mapping.fc{i}.weight" in state:
        out[f"mapping.dense{i}.weight"] = state[f"mapping.fc{i}.weight"].clone()
        out[f"mapping.dense{i}.bias"] = state[f"mapping.fc{i}.bias"].clone()
        i += 1
    out["truncation.w_avg"] = state["mapping.w_avg"].clone()
    out["synthesis.early_layer.const"] = state["synthesis.b4.const"].unsqueeze(0).clone()
    for g_layer, n_layer, up in _layer_names(num_ws):
        g_pre = f"synthesis.{g_layer}"
        weight = state[f"{n_layer}.weight"]
        out[f"{g_pre}.weight"] = weight.flip(2, 3) if up else weight.clone()
        out[f"{g_pre}.bias"] = state[f"{n_layer}.bias"].clone()
        out[f"{g_pre}.style.weight"] = state[f"{n_layer}.affine.weight"].clone()
        out[f"{g_pre}.style.bias"] = state[f"{n_layer}.affine.bias"] - 1
        if f"{n_layer}.noise_strength" in state:
            out[f"{g_pre}.noise_strength"] = state[f"{n_layer}.noise_strength"].clone()
            out[f"{g_pre}.noise"] = state[f"{n_layer}.noise_const"][None, None].clone()
    for k in range(num_ws // 2):
        g_pre, n_pre = f"synthesis.output{k}", f"synthesis.b{2 ** (k + 2)}.torgb"
        out[f"{g_pre}.weight"] = state[f"{n_pre}.weight"].clone()
        out[f"{g_pre}.bias"] = state[f"{n_pre}.bias"].clone()
        out[f"{g_pre}.style.weight"] = state[f"{n_pre}.affine.weight"].clone()
        out[f"{g_pre}.style.bias"] = state[f"{n_pre}.affine.bias"] - 1
    return out


def genforce_generator(ckpt: Any, source: str, *, mapping_lr_mul: float = 0.01
                       ) -> StyleGAN2Generator:
    """Native generator from a loaded genforce checkpoint (``generator_smooth`` preferred)."""
    if isinstance(ckpt, Mapping) and not is_genforce_state_dict(ckpt):
        for key in ("generator_smooth", "generator"):
            if key in ckpt:
                ckpt = ckpt[key]
                break
    if not is_genforce_state_dict(ckpt):
        raise CheckpointFormatError(f"{source}: expected a genforce checkpoint with "
                                    "'generator_smooth' or 'generator' holding a StyleGAN2 "
                                    "generator state dict")
    state = genforce_to_native(ckpt, source)
    config = infer_native_config(state, source, mapping_lr_mul)
    if "mapping.w_avg" not in state:
        raise CheckpointFormatError(f"{source}: genforce generator lacks 'truncation.w_avg'")
    return generator_from_state_dict(config, state, source)


def load_genforce_generator(path: str | os.PathLike[str], *, mapping_lr_mul: float = 0.01
                            ) -> StyleGAN2Generator:
    """Import a genforce / SeFa StyleGAN2 ``.pth`` as a native generator."""
    return genforce_generator(read_torch_checkpoint(path, "genforce"), str(path),
                              mapping_lr_mul=mapping_lr_mul)
