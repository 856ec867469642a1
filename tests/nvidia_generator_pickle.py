"""NVIDIA-format StyleGAN2 generator pickles for tests, written from native generators.

``write_nvidia_pickle`` dumps a generator the way stylegan2-ada-pytorch's ``legacy`` pickles
hold one (``G``, ``D``, ``G_ema``, ``augment_pipe``, ``training_set_kwargs``; each network a
``torch_utils.persistence`` object whose state is the module ``__dict__``), with stand-in
``torch_utils`` / ``dnnlib`` modules registered only while dumping, so the suite's restricted
reader (``models.stylegan2.nvidia_pickle``) sees the real file's globals.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.stylegan2 import StyleGAN2Config, StyleGAN2Generator


def random_generator(config: StyleGAN2Config, seed: int = 0) -> StyleGAN2Generator:
    """A generator whose every tensor (incl. zero-initialised ones) holds distinct random values."""
    torch.manual_seed(seed)
    G = StyleGAN2Generator(config).eval()
    rng = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for tensor in G.state_dict().values():
            tensor.add_(0.1 * torch.randn(tensor.shape, generator=rng))
    return G.requires_grad_(False)


@contextlib.contextmanager
def fake_nvidia_modules() -> Iterator[types.SimpleNamespace]:
    """Register ``torch_utils.persistence`` and ``dnnlib.util`` stand-ins in ``sys.modules``."""
    names = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
    assert not any(n in sys.modules for n in names)
    torch_utils = types.ModuleType("torch_utils")
    persistence = types.ModuleType("torch_utils.persistence")
    dnnlib = types.ModuleType("dnnlib")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta: Any) -> Any:
        raise AssertionError("the stand-in hook is only for dumping")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"

    class EasyDict(dict):
        pass

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"

    class Persistent:
        """Pickles the way NVIDIA's persistent classes do."""

        def __init__(self, meta: dict[str, Any]) -> None:
            self.meta = meta

        def __reduce__(self) -> tuple[Any, ...]:
            return (_reconstruct_persistent_obj, (self.meta,))

    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    torch_utils.persistence = persistence
    util.EasyDict = EasyDict
    dnnlib.util = util
    modules = dict(zip(names, (torch_utils, persistence, dnnlib, util), strict=True))
    sys.modules.update(modules)
    try:
        yield types.SimpleNamespace(EasyDict=EasyDict, Persistent=Persistent)
    finally:
        for name in names:
            sys.modules.pop(name, None)


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """NVIDIA stores fp16-block conv weights channels-last: pickled tensors with odd strides."""
    t = t.detach().clone()
    return t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t


def nvidia_records(G: StyleGAN2Generator, fake: types.SimpleNamespace, module_src: str) -> Any:
    """Mirror ``G``'s module tree as NVIDIA persistent objects (state = the module __dict__)."""
    class_names = {"StyleGAN2Generator": "Generator", "FullyConnectedLayer": "FullyConnectedLayer"}

    def convert(module: torch.nn.Module) -> Any:
        resample = getattr(module, "resample_filter", None)
        buffers = {k: v for k, v in module._buffers.items() if k != "resample_filter"}
        if resample is not None:  # NVIDIA keeps its FIR filters as persistent buffers
            buffers["resample_filter"] = resample.clone()
        state = {
            "training": False,
            "_parameters": {k: torch.nn.Parameter(channels_last(v), requires_grad=v.requires_grad)
                            for k, v in module._parameters.items()},
            "_buffers": buffers,
            "_non_persistent_buffers_set": set(),
            "_modules": {k: convert(m) for k, m in module._modules.items()},
            "_forward_hooks": {}, "_forward_pre_hooks": {}, "_backward_hooks": {},
            "_init_args": (), "_init_kwargs": fake.EasyDict(),
            "some_numpy_attribute": np.float32(0.5),
        }
        name = class_names.get(type(module).__name__, type(module).__name__)
        return fake.Persistent({"type": "class", "version": 6, "module_src": module_src,
                                "class_name": f"training.networks.{name}", "state": state})

    top = convert(G)
    cfg = G.config
    top.meta["state"]["_init_kwargs"] = fake.EasyDict(
        z_dim=cfg.z_dim, w_dim=cfg.w_dim, c_dim=0,
        img_resolution=np.int64(cfg.resolution), img_channels=3,
        mapping_kwargs=fake.EasyDict(num_layers=cfg.mapping_layers),
        synthesis_kwargs=fake.EasyDict(channel_base=cfg.channel_base,
                                       channel_max=cfg.channel_max, num_fp16_res=4,
                                       conv_clamp=cfg.conv_clamp, architecture="skip"),
    )
    return top


def write_nvidia_pickle(G: StyleGAN2Generator, path: Path, protocol: int = 4,
                        module_src: str = "", extra: dict[str, Any] | None = None) -> bytes:
    with fake_nvidia_modules() as fake:
        data = {"G": nvidia_records(G, fake, module_src), "D": None,
                "G_ema": nvidia_records(G, fake, module_src), "augment_pipe": None,
                "training_set_kwargs": fake.EasyDict(resolution=G.resolution), **(extra or {})}
        payload = pickle.dumps(data, protocol=protocol)
    path.write_bytes(payload)
    return payload
