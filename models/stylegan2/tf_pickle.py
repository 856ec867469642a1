"""NVIDIA TensorFlow StyleGAN2 ``.pkl`` (e.g. ``stylegan2-ffhq-config-f.pkl``) import, no TF needed.

The pickle holds ``(G, D, Gs)`` TF networks; the restricted unpickler of ``nvidia_pickle`` turns
each into an inert ``TFNetworkRecord`` (its build source is never run) holding numpy variables.
Conversion to native tensors follows spec §1.7(c): conv weights ``[k, k, I, O] -> [O, I, k, k]``,
``Conv0_up`` weights additionally flipped spatially, dense weights transposed, every
``mod_bias`` + 1, the 4x4 constant and noise maps lose their leading unit dims.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from models.stylegan2.foreign import (
    CheckpointFormatError,
    generator_from_state_dict,
    infer_native_config,
    short_list,
)
from models.stylegan2.generator import StyleGAN2Generator
from models.stylegan2.nvidia_pickle import TFNetworkRecord, read_nvidia_pickle

# Variables that carry nothing the generator needs (progressive-growing level of detail).
_IGNORED = re.compile(r"(^|/)lod$")
_NETWORK_INDEX = {"G": 0, "D": 1, "Gs": 2, "G_ema": 2}


def is_tf_network_tuple(data: Any) -> bool:
    """True for the ``(G, D, Gs)`` tuple of a TF StyleGAN2 pickle."""
    return (isinstance(data, tuple) and len(data) == 3
            and all(isinstance(x, TFNetworkRecord) for x in data))


def tf_variables(record: TFNetworkRecord, source: str = "TF network") -> dict[str, np.ndarray]:
    """All variables of a network and its components, named ``component/.../variable``."""
    out: dict[str, np.ndarray] = {}

    def walk(rec: Any, prefix: str) -> None:
        if not isinstance(rec, TFNetworkRecord):
            raise CheckpointFormatError(f"{source}: component '{prefix.rstrip('/')}' is a "
                                        f"{type(rec).__name__}, not a TF network")
        for name, value in rec.variables.items():
            if not isinstance(value, np.ndarray | np.generic):
                raise CheckpointFormatError(f"{source}: TF variable '{prefix}{name}' is a "
                                            f"{type(value).__name__}, not a numpy array")
            out[prefix + name] = np.asarray(value)
        for name, comp in rec.components.items():
            walk(comp, f"{prefix}{name}/")

    walk(record, "")
    return out


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(3, 2, 0, 1)


def _conv_up(w: np.ndarray) -> np.ndarray:
    return w[::-1, ::-1].transpose(3, 2, 0, 1)


def tf_to_native(variables: dict[str, np.ndarray], source: str = "TF network"
                 ) -> dict[str, torch.Tensor]:
    """Convert Gs variables (``mapping/...``, ``synthesis/...``, ``dlatent_avg``) to native names.

    Strict: unknown variables (other than ``lod``) and missing ones raise, listing them."""
    resolutions = sorted({int(m.group(1)) for k in variables
                          if (m := re.match(r"^synthesis/(\d+)x\1/", k))})
    if not resolutions or resolutions[0] != 4 or "mapping/Dense0/weight" not in variables:
        raise CheckpointFormatError(f"{source}: not a TF StyleGAN2 generator (expected "
                                    "'mapping/Dense0/weight' and 'synthesis/4x4/...' variables)")
    rules: list[tuple[str, str, Callable[[np.ndarray], np.ndarray]]] = []
    i = 0
    while f"mapping/Dense{i}/weight" in variables:
        rules += [(f"mapping/Dense{i}/weight", f"mapping.fc{i}.weight", np.transpose),
                  (f"mapping/Dense{i}/bias", f"mapping.fc{i}.bias", np.asarray)]
        i += 1
    rules.append(("dlatent_avg", "mapping.w_avg", np.asarray))
    rules.append(("synthesis/4x4/Const/const", "synthesis.b4.const", lambda x: x[0]))
    use_noise = "synthesis/4x4/Conv/noise_strength" in variables
    layers = [("synthesis/4x4/Conv", "synthesis.b4.conv1", _conv, 0)]
    for k, res in enumerate(resolutions[1:], start=3):
        layers.append((f"synthesis/{res}x{res}/Conv0_up", f"synthesis.b{res}.conv0", _conv_up,
                       2 * k - 5))
        layers.append((f"synthesis/{res}x{res}/Conv1", f"synthesis.b{res}.conv1", _conv,
                       2 * k - 4))
    for tf_pre, n_pre, conv, noise_index in layers:
        rules += [(f"{tf_pre}/weight", f"{n_pre}.weight", conv),
                  (f"{tf_pre}/bias", f"{n_pre}.bias", np.asarray),
                  (f"{tf_pre}/mod_weight", f"{n_pre}.affine.weight", np.transpose),
                  (f"{tf_pre}/mod_bias", f"{n_pre}.affine.bias", lambda b: b + 1)]
        if use_noise:
            rules += [(f"{tf_pre}/noise_strength", f"{n_pre}.noise_strength", np.asarray),
                      (f"synthesis/noise{noise_index}", f"{n_pre}.noise_const",
                       lambda x: x[0, 0])]
    for res in resolutions:
        tf_pre, n_pre = f"synthesis/{res}x{res}/ToRGB", f"synthesis.b{res}.torgb"
        rules += [(f"{tf_pre}/weight", f"{n_pre}.weight", _conv),
                  (f"{tf_pre}/bias", f"{n_pre}.bias", np.asarray),
                  (f"{tf_pre}/mod_weight", f"{n_pre}.affine.weight", np.transpose),
                  (f"{tf_pre}/mod_bias", f"{n_pre}.affine.bias", lambda b: b + 1)]
    missing = [tf for tf, _, _ in rules if tf not in variables]
    used = {tf for tf, _, _ in rules}
    unknown = sorted(k for k in variables if k not in used and not _IGNORED.search(k))
    if missing or unknown:
        raise CheckpointFormatError(
            f"{source}: TF variables do not match a skip-architecture StyleGAN2 generator; "
            f"missing: {short_list(missing)}; unknown: {short_list(unknown)}"
        )
    # np.array (not ascontiguousarray, which turns 0-d noise strengths into 1-d)
    return {n_key: torch.from_numpy(np.array(convert(variables[tf]), dtype=np.float32, order="C"))
            for tf, n_key, convert in rules}


def tf_generator(data: Any, source: str, *, network: str = "G_ema") -> StyleGAN2Generator:
    """Native generator from an unpickled TF ``(G, D, Gs)`` tuple (``G_ema`` means ``Gs``)."""
    if not is_tf_network_tuple(data):
        raise CheckpointFormatError(f"{source}: expected a TF StyleGAN2 pickle holding (G, D, Gs)")
    if network not in ("G", "Gs", "G_ema"):
        raise ValueError(f"network must be 'G_ema' (= 'Gs') or 'G' for {source}, got {network!r}")
    record = data[_NETWORK_INDEX[network]]
    kwargs = record.static_kwargs
    architecture = kwargs.get("architecture", "skip")
    if architecture != "skip":
        raise CheckpointFormatError(f"{source}: unsupported TF generator architecture "
                                    f"{architecture!r} (only 'skip')")
    if int(kwargs.get("label_size", 0) or 0):
        raise CheckpointFormatError(f"{source}: conditional TF generators (label_size="
                                    f"{kwargs['label_size']}) are not supported")
    state = tf_to_native(tf_variables(record, source), source)
    config = infer_native_config(state, source, float(kwargs.get("mapping_lrmul", 0.01)))
    return generator_from_state_dict(config, state, source)


def load_tf_generator(path: str | os.PathLike[str], *, network: str = "G_ema"
                      ) -> StyleGAN2Generator:
    """Import ``Gs`` (or ``G``) of an NVIDIA TensorFlow StyleGAN2 ``.pkl``."""
    return tf_generator(read_nvidia_pickle(path), str(path), network=network)
