"""A stand-in for TensorFlow-era ``dnnlib.tflib.network.Network`` to write TF pickle fixtures.

Pickling an instance writes the global ``dnnlib.tflib.network.Network`` and the given state dict
(``version``, ``name``, ``static_kwargs``, ``components``, ``build_module_src``,
``build_func_name``, ``variables``), the layout of ``Network.__getstate__`` in NVlabs/stylegan's
``dnnlib/tflib/network.py``.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def fake_tf_network_class() -> Iterator[type]:
    """A stand-in ``dnnlib.tflib.network.Network`` registered in ``sys.modules`` while dumping."""
    names = ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")
    assert not any(n in sys.modules for n in names)
    modules = [types.ModuleType(n) for n in names]

    class Network:
        def __init__(self, state: dict[str, Any]) -> None:
            self.state = state

        def __getstate__(self) -> dict[str, Any]:
            return self.state

    Network.__module__ = "dnnlib.tflib.network"
    Network.__qualname__ = "Network"
    modules[2].Network = Network
    modules[1].network = modules[2]
    modules[0].tflib = modules[1]
    sys.modules.update(zip(names, modules, strict=True))
    try:
        yield Network
    finally:
        for name in names:
            del sys.modules[name]
