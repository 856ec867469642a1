"""NVIDIA stylegan2-ada-pytorch ``.pkl`` import through a restricted unpickler that runs no code.

NVIDIA's pickles rebuild every network by ``exec``-ing Python source stored in the file
(``torch_utils.persistence``). Here ``find_class`` is the gate: every global the pickle names
must be on a short allowlist (tensor and numpy rebuilders, plain containers, and a stand-in for
the persistence hook that returns an inert record and discards the source text). Records are
then walked like ``nn.Module.state_dict`` to recover NVIDIA's parameter names, and the config
comes from ``G_ema``'s stored constructor arguments.
"""

from __future__ import annotations

import codecs
import collections
import io
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.stylegan2.config import StyleGAN2Config
from models.stylegan2.foreign import (
    CheckpointFormatError,
    UnsafePickleError,
    first_line,
    generator_from_state_dict,
    infer_native_config,
    refused_global,
)
from models.stylegan2.generator import StyleGAN2Generator


@dataclass
class PersistentRecord:
    """What a ``torch_utils.persistence`` object becomes here: its class name and ``__dict__``.

    The stored module source is never kept, let alone executed."""

    class_name: str
    version: int | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("unexpected BUILD state on a persistent-object record")


class TFNetworkRecord:
    """What a TensorFlow-era ``dnnlib.tflib.network.Network`` becomes: its name, static kwargs,
    sub-networks and variables (name -> numpy array). The stored build source is dropped."""

    name: str
    static_kwargs: dict[str, Any]
    components: dict[str, Any]
    variables: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, Mapping):
            raise pickle.UnpicklingError(f"TF network state is a {type(state).__name__}")
        self.name = str(state.get("name"))
        self.static_kwargs = dict(state.get("static_kwargs") or {})
        self.components = dict(state.get("components") or {})
        try:
            self.variables = {str(k): v for k, v in state.get("variables") or ()}
        except (TypeError, ValueError):
            raise pickle.UnpicklingError("TF network variables are not (name, array) pairs") \
                from None


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict with attribute access."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # never let stored keys pose as protocol methods
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    """Replacement for NVIDIA's hook: keep class name and state, drop ``module_src`` unread."""
    if not isinstance(meta, Mapping) or meta.get("type") != "class":
        kind = meta.get("type") if isinstance(meta, Mapping) else type(meta).__name__
        raise pickle.UnpicklingError(f"unsupported persistent object (type {kind!r})")
    state = meta.get("state")
    if state is None:
        state = {}
    if not isinstance(state, Mapping):
        raise pickle.UnpicklingError(f"persistent object {meta.get('class_name')!r} has a "
                                     f"{type(state).__name__} state; expected a dict")
    version = meta.get("version")
    return PersistentRecord(str(meta.get("class_name")),
                            int(version) if version is not None else None, dict(state))


def _load_storage_from_bytes(data: bytes) -> Any:
    """Nested legacy-format ``torch.save`` of one storage, read with ``weights_only=True``."""
    if not isinstance(data, bytes | bytearray):
        raise pickle.UnpicklingError("storage payload is not bytes")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = refused_global(exc)
        detail = f"global '{refused}'" if refused else first_line(exc)
        raise UnsafePickleError(f"refusing a nested storage payload ({detail})") from None


def _rebuild_tensor(storage: Any, storage_offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], requires_grad: bool, backward_hooks: Any,
                    metadata: Any = None) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` without its stored requires_grad, hooks and
    metadata: the plain tensor view of the storage."""
    if not isinstance(storage, torch.TypedStorage | torch.UntypedStorage):
        raise pickle.UnpicklingError(f"tensor storage is a {type(storage).__name__}")
    return torch._utils._rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: bool, backward_hooks: Any,
                       state: Any = None) -> torch.Tensor:
    """A parameter becomes its plain data tensor (only the values are needed)."""
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError(f"parameter data is a {type(data).__name__}")
    return data


def _rebuild_from_type(func: Callable[..., Any], new_type: Any, args: tuple[Any, ...],
                       state: Any = None) -> Any:
    """Tensor-subclass rebuild: call the (allowlisted) rebuild function, keep a plain tensor."""
    if func not in _TENSOR_REBUILDERS:
        raise pickle.UnpicklingError("tensor-subclass rebuild through a non-tensor function")
    return func(*args)


def _codecs_encode(text: Any, encoding: str) -> bytes:
    """Protocol-2 pickles spell bytes as ``_codecs.encode(str, 'latin1')`` (always with the
    encoding; a one-argument call, utf-8, is not something they write)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return codecs.encode(text, encoding)


_TENSOR_REBUILDERS: set[Callable[..., Any]] = {_rebuild_tensor, _rebuild_parameter}


def _numpy_multiarray() -> Any:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


_MULTIARRAY = _numpy_multiarray()

ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetworkRecord,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,  # protocol-2 spelling
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"{mod}.multiarray", name): getattr(_MULTIARRAY, name)
       for mod in ("numpy.core", "numpy._core") for name in ("_reconstruct", "scalar")},
}
_TENSOR_REBUILDERS.add(_rebuild_from_type)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` resolves only ``ALLOWED_GLOBALS``; anything else raises
    ``UnsafePickleError`` naming the global and the file. Persistent ids are refused too."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        raise UnsafePickleError(
            f"{self.source}: refusing to load global '{module}.{name}' (only tensors, numpy "
            "arrays and NVIDIA StyleGAN2 network records are allowed in an NVIDIA .pkl)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: unexpected persistent id in pickle")


def read_nvidia_pickle(path: str | os.PathLike[str],
                       kind: str = "an NVIDIA stylegan2-ada-pytorch pickle") -> Any:
    """Unpickle an NVIDIA ``.pkl`` with the restricted unpickler; networks become records
    (``PersistentRecord`` for PyTorch pickles, ``TFNetworkRecord`` for TensorFlow ones).

    ``kind`` names what the file was expected to be in the error for an unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NVIDIA pickle file")
    with open(path, "rb") as fh:
        try:
            return RestrictedUnpickler(fh, str(path)).load()
        except CheckpointFormatError as exc:
            if str(exc).startswith(f"{path}:"):
                raise
            raise type(exc)(f"{path}: {exc}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                KeyError, IndexError, RuntimeError, MemoryError) as exc:
            raise CheckpointFormatError(
                f"{path}: cannot be read as {kind} ({first_line(exc)})"
            ) from None


def record_state_dict(record: PersistentRecord, source: str = "record") -> dict[str, torch.Tensor]:
    """``nn.Module.state_dict()`` of a record: parameters, persistent buffers, sub-modules."""
    out: dict[str, torch.Tensor] = {}

    def walk(rec: Any, prefix: str) -> None:
        if not isinstance(rec, PersistentRecord):
            raise CheckpointFormatError(f"{source}: sub-module '{prefix.rstrip('.')}' is a "
                                        f"{type(rec).__name__}, not a persistent network object")
        state = rec.state
        skip = set(state.get("_non_persistent_buffers_set") or ())
        for group in ("_parameters", "_buffers"):
            for name, tensor in (state.get(group) or {}).items():
                if tensor is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(tensor, torch.Tensor):
                    raise CheckpointFormatError(f"{source}: '{prefix}{name}' is a "
                                                f"{type(tensor).__name__}, not a tensor")
                out[prefix + name] = tensor.detach()
        for name, child in (state.get("_modules") or {}).items():
            if child is not None:
                walk(child, f"{prefix}{name}.")

    walk(record, "")
    return out


_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
                   "mapping_kwargs", "synthesis_kwargs")


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars; dicts recursively to plain dicts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def nvidia_init_kwargs(record: PersistentRecord) -> dict[str, Any]:
    """``G_ema``'s constructor arguments (``_init_kwargs`` plus named ``_init_args``)."""
    kwargs = _plain(record.state.get("_init_kwargs") or {})
    for name, value in zip(_GENERATOR_ARGS, record.state.get("_init_args") or (), strict=False):
        kwargs.setdefault(name, _plain(value))
    return kwargs


def nvidia_config(kwargs: Mapping[str, Any], source: str) -> StyleGAN2Config:
    """Map NVIDIA Generator kwargs to our config; refuse what the native generator lacks."""
    mapping = dict(kwargs.get("mapping_kwargs") or {})
    synthesis = dict(kwargs.get("synthesis_kwargs") or {})
    try:
        z_dim, w_dim = int(kwargs["z_dim"]), int(kwargs["w_dim"])
        resolution = int(kwargs["img_resolution"])
        img_channels = int(kwargs["img_channels"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointFormatError(f"{source}: G_ema constructor arguments lack z_dim, w_dim, "
                                    f"img_resolution or img_channels ({first_line(exc)})") from None
    problems = []
    if int(kwargs.get("c_dim") or 0) != 0:
        problems.append(f"conditional generator (c_dim={kwargs['c_dim']})")
    if synthesis.get("architecture", "skip") != "skip":
        problems.append(f"architecture {synthesis['architecture']!r} (only 'skip')")
    if mapping.get("activation", "lrelu") != "lrelu":
        problems.append(f"mapping activation {mapping['activation']!r}")
    layer_features = mapping.get("layer_features")
    if layer_features is not None and int(layer_features) != w_dim:
        problems.append(f"mapping layer_features={layer_features} != w_dim")
    taps = synthesis.get("resample_filter", [1, 3, 3, 1])
    if list(taps) != [1, 3, 3, 1]:
        problems.append(f"resample_filter {list(taps)}")
    if problems:
        raise CheckpointFormatError(f"{source}: unsupported NVIDIA generator: "
                                    + "; ".join(problems))
    conv_clamp = synthesis.get("conv_clamp")
    try:
        return StyleGAN2Config(
            resolution=resolution,
            z_dim=z_dim,
            w_dim=w_dim,
            mapping_layers=int(mapping.get("num_layers", 8)),
            img_channels=img_channels,
            channel_base=int(synthesis.get("channel_base", 32768)),
            channel_max=int(synthesis.get("channel_max", 512)),
            use_noise=bool(synthesis.get("use_noise", True)),
            conv_clamp=float(conv_clamp) if conv_clamp is not None else None,
            mapping_lr_mul=float(mapping.get("lr_multiplier", 0.01)),
            w_avg_beta=float(mapping.get("w_avg_beta", 0.995)),
        )
    except ValueError as exc:
        raise CheckpointFormatError(f"{source}: {first_line(exc)}") from None


def load_nvidia_generator(path: str | os.PathLike[str], *, network: str = "G_ema"
                          ) -> StyleGAN2Generator:
    """Import ``network`` (default ``G_ema``) of an NVIDIA stylegan2-ada-pytorch ``.pkl``."""
    return nvidia_generator(read_nvidia_pickle(path), str(path), network=network)


def nvidia_generator(data: Any, source: str, *, network: str = "G_ema") -> StyleGAN2Generator:
    """Native generator from an unpickled stylegan2-ada-pytorch network dict."""
    if not isinstance(data, Mapping) or network not in data:
        found = sorted(map(str, data))[:8] if isinstance(data, Mapping) else type(data).__name__
        raise CheckpointFormatError(f"{source}: expected an NVIDIA network pickle dict with key "
                                    f"'{network}'; found {found}")
    record = data[network]
    if not isinstance(record, PersistentRecord):
        raise CheckpointFormatError(f"{source}: '{network}' is a {type(record).__name__}, not a "
                                    "persistent network object")
    state = record_state_dict(record, source)
    ignored = [k for k in state if k.endswith("resample_filter")]
    state = {k: v for k, v in state.items() if k not in ignored}
    kwargs = nvidia_init_kwargs(record)
    if kwargs:
        config = nvidia_config(kwargs, source)
    else:  # no stored constructor arguments: read the architecture off the shapes
        config = infer_native_config(state, source)
    return generator_from_state_dict(config, state, source)


__all__ = [
    "ALLOWED_GLOBALS",
    "EasyDict",
    "PersistentRecord",
    "RestrictedUnpickler",
    "TFNetworkRecord",
    "load_nvidia_generator",
    "nvidia_generator",
    "nvidia_config",
    "nvidia_init_kwargs",
    "read_nvidia_pickle",
    "record_state_dict",
]
