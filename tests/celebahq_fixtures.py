"""CelebA-HQ attribute classifier pickles in the variable layout of NVIDIA's real files.

The layout is re-derived here from NVlabs/stylegan (commit 1e0d5c78), independently of
``models.celebahq``:

* ``training/networks_progan.py`` ``D_paper``: ``lod`` (a non-trainable scalar, created first),
  then the linear structure that ``dnnlib.tflib.network.Network._init_graph`` builds for its
  template graph (``is_template_graph=True``): ``FromRGB_lod0``; per resolution r = R ... 8 the
  block ``<r>x<r>`` (``Conv0``; ``Conv1_down`` with ``fused_scale``, else ``Conv1``) followed by
  ``FromRGB_lod<j>`` for the next lower resolution; then ``4x4`` (``Conv``, ``Dense0``,
  ``Dense1``). Each layer scope holds ``weight`` (conv ``[k, k, in, out]``, dense ``[in, out]``)
  and then ``bias``; nf(s) = min(int(fmap_base / 2^s), fmap_max); ``mbstd`` adds one input
  channel to ``4x4/Conv`` (the minibatch-stddev layer, which the classifiers lack).
* ``Network.own_vars`` keeps graph-creation order and ``__getstate__`` pickles
  ``variables = list(zip(names, values))``; the classifiers are plain networks (no components)
  loaded by ``metrics/linear_separability.py`` with ``misc.load_pkl``.

Weights are standard normal (they are scaled at run time), biases N(0, 0.2^2), from
``np.random.RandomState(seed)`` (a frozen stream), so the golden script and the tests draw the
same numbers.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
from tf_network_pickle import fake_tf_network_class

Layout = list[tuple[str, tuple[int, ...]]]


def d_paper_layout(resolution: int = 256, fmap_base: int = 8192, fmap_max: int = 512,
                   fused: bool = True, mbstd: bool = False, channels: int = 3,
                   labels: int = 0) -> Layout:
    """(name, shape) of every variable of ``D_paper`` in creation order."""
    log2 = int(np.log2(resolution))

    def nf(stage: int) -> int:
        return min(int(fmap_base / (2.0 ** stage)), fmap_max)

    out: Layout = [("lod", ())]

    def layer(scope: str, shape: tuple[int, ...]) -> None:
        out.extend([(f"{scope}/weight", shape), (f"{scope}/bias", (shape[-1],))])

    layer("FromRGB_lod0", (1, 1, channels, nf(log2 - 1)))
    for res in range(log2, 2, -1):
        r = 2 ** res
        layer(f"{r}x{r}/Conv0", (3, 3, nf(res - 1), nf(res - 1)))
        layer(f"{r}x{r}/{'Conv1_down' if fused else 'Conv1'}", (3, 3, nf(res - 1), nf(res - 2)))
        layer(f"FromRGB_lod{log2 - res + 1}", (1, 1, channels, nf(res - 2)))
    layer("4x4/Conv", (3, 3, nf(1) + int(mbstd), nf(1)))
    layer("4x4/Dense0", (nf(1) * 16, nf(0)))
    layer("4x4/Dense1", (nf(0), 1 + labels))
    return out


def random_variables(layout: Layout, seed: int) -> list[tuple[str, Any]]:
    """Seeded float32 values for a layout (``lod`` = 0 as a numpy scalar, as TF returns it)."""
    rng = np.random.RandomState(seed)
    values: list[tuple[str, Any]] = []
    for name, shape in layout:
        if name == "lod":
            values.append((name, np.float32(0.0)))
        elif name.endswith("/bias"):
            values.append((name, (0.2 * rng.standard_normal(shape)).astype(np.float32)))
        else:
            values.append((name, rng.standard_normal(shape).astype(np.float32)))
    return values


def write_classifier_pickle(path: Path, variables: list[tuple[str, Any]],
                            static_kwargs: dict[str, Any] | None = None,
                            module_src: str = "", protocol: int = 4) -> Path:
    """One TF network pickle as ``misc.save_pkl`` writes it (the network itself at the top)."""
    kwargs = {"num_channels": 3, "resolution": 256, "label_size": 0} \
        if static_kwargs is None else static_kwargs
    with fake_tf_network_class() as Network:
        state = {"version": 3, "name": "D", "static_kwargs": kwargs, "components": {},
                 "build_module_src": module_src,
                 "build_func_name": "training.networks_progan.D_paper",
                 "variables": list(variables)}
        path.write_bytes(pickle.dumps(Network(state), protocol=protocol))
    return path


def random_images(n: int, size: int, seed: int, channels: int = 3) -> np.ndarray:
    """Seeded float32 NCHW images, uniform in [-1, 1]."""
    rng = np.random.RandomState(seed)
    return rng.uniform(-1.0, 1.0, (n, channels, size, size)).astype(np.float32)
