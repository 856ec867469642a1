"""Write ``directions_g32.npz``: SeFa and GANSpace directions computed by the REFERENCE code.

Run by hand, once, when the fixture needs remaking; ``tests/test_golden_directions.py`` only reads
the file written here and never needs the reference code. Everything is computed from the golden
NVIDIA generator ``nvidia_g32.pkl`` (written by ``make_golden.py``), loaded with NVIDIA's own
``legacy.load_network_pkl`` (NVlabs/stylegan2-ada-pytorch at commit
d72cc7d041b42ec8e806021a205ed9349f87c6a4):

* SeFa, genforce/sefa at commit 0d16060208506f5a68df8826bd581a7e0cf0cb4c: its
  ``utils.factorize_weight(generator, layer_idx)``, unchanged, on a view of ``G_ema``'s style
  affines in genforce's StyleGAN2 layout (``SynthesisModule``, architecture 'skip'):
  ``synthesis.layer0`` is the 4x4 conv, ``layer{2b-1}`` / ``layer{2b}`` are conv0 / conv1 of
  block b (8x8 is block 1), ``output{b}`` is block b's ToRGB, and ``num_layers`` is
  ``(log2(resolution) - 1) * 2`` (= NVIDIA's ``num_ws``). Each ``.style.weight`` is the NVIDIA
  layer's ``affine.weight`` ([C_in, w_dim], genforce's [out, in] layout too). The view subclasses
  SeFa's own ``StyleGAN2Generator`` (without running its constructor) so that SeFa's
  ``parse_gan_type`` takes it for 'stylegan2'. ``factorize_weight`` picks
  ``output{(num_layers - 1) // 2}`` (the last block's ToRGB) for the last index. Saved exactly as
  returned (float32, ``np.linalg.eig`` order, unsorted): ``sefa/<layer_idx>/eigenvalues``
  ``[w_dim]``, ``sefa/<layer_idx>/eigenvectors`` (rows) ``[w_dim, w_dim]`` and
  ``sefa/<layer_idx>/layers`` for every ``layer_idx`` in ``SEFA_LAYER_IDX``.
* GANSpace, harskish/ganspace at commit 5a704c488ce9bd36d892c34ff78e4986f2850758: its
  ``estimators.PCAEstimator`` ('pca', sklearn PCA with the full solver) and ``IPCAEstimator``
  ('ipca', GANSpace's default), ``n_components = w_dim``, fitted on W = ``G_ema.mapping(z)``
  (no truncation) of ``NUM_Z`` fixed z (float16-valued, stored as float16 in ``z``). The fits
  follow ``decomposition.compute`` for StyleGAN W (``samples_are_latents``): PCA gets all
  samples as float32, centred by their float32 mean; IPCA gets ``fit_partial`` on consecutive
  uncentred chunks of ``NB = max(2000, 3 * n_components)`` samples (``NUM_Z`` is a multiple of
  NB, so every sample is used once). Saved from ``get_components()``:
  ``ganspace/<name>/components`` ``[w_dim, w_dim]`` (rows), ``ganspace/<name>/stdev``,
  ``ganspace/<name>/var_ratio`` and the mean each fit removed, ``ganspace/<name>/mean``, in
  the dtypes they come in (float32 from 'pca', float64 from sklearn's IncrementalPCA).
  Conventions as GANSpace has them: 'pca' stdev = ``np.std`` (ddof 0) of the projections;
  'ipca' stdev = ``sqrt(explained_variance_)`` (sklearn, ddof 1).

``info`` (a JSON string) records the commits and the numpy / scikit-learn / torch versions.

How to run (seconds on one CPU core; the mirrors are bare git directories)::

    S=/tmp/refs-directions && mkdir -p $S/nvidia $S/sefa $S/ganspace
    git -C <mirror of NVlabs/stylegan2-ada-pytorch> archive d72cc7d0 | tar -x -C $S/nvidia
    git -C <mirror of genforce/sefa> archive 0d160602 utils.py models | tar -x -C $S/sefa
    git -C <mirror of harskish/ganspace> archive 5a704c48 estimators.py | tar -x -C $S/ganspace
    OMP_NUM_THREADS=1 python tests/golden/make_golden_directions.py \\
        --nvidia $S/nvidia --sefa $S/sefa --ganspace $S/ganspace

(the commits are those of ``git -C <mirror> log -1 --format=%H`` when the fixture was made). The
exports stay outside the repository. Imports that the reference modules make at their top but
that the code run here never uses are stubbed when not installed: ``requests`` (NVIDIA's
``dnnlib.util``), ``cv2`` (SeFa's ``utils``, for its image helpers) and ``fbpca`` (GANSpace's
``estimators``, for ``FacebookPCAEstimator`` only). SeFa's ``models`` package shadows nothing of
the project: it is imported under its own name and dropped from ``sys.modules`` afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from make_golden import NVIDIA_COMMIT, inputs, on_path, stub_if_missing

SEFA_COMMIT = "0d16060208506f5a68df8826bd581a7e0cf0cb4c"
GANSPACE_COMMIT = "5a704c488ce9bd36d892c34ff78e4986f2850758"
HERE = Path(__file__).resolve().parent

# SeFa's --layer_idx values: every layer, the first few (the usual coarse choice), and the rows
# whose index has bit 0, 1 or 2 set. 'all' cannot tell which affine reads which W+ row (A Aᵀ does
# not depend on the column order); the three bit subsets give every row its own membership
# pattern, so together they pin down the whole row -> layer assignment. Every subset has at least
# w_dim style channels (no zero eigenvalues).
SEFA_LAYER_IDX = ("all", "0-2", "1,3,5,7", "2-3,6-7", "4-7")
NUM_Z = 4000
Z_SEED = 601


@contextlib.contextmanager
def own_modules(folder: Path, names: tuple[str, ...]) -> Iterator[None]:
    """Import from ``folder`` with the top-level module names ``names`` free of whatever is
    loaded under them now (the project has a ``models`` package too); restored afterwards."""

    def ours(key: str) -> bool:
        return any(key == n or key.startswith(n + ".") for n in names)

    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if ours(k)}
    try:
        with on_path(folder):
            yield
    finally:
        for k in [k for k in sys.modules if ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


def load_nvidia_g_ema(nvidia: Path) -> torch.nn.Module:
    stub_if_missing("requests")  # imported by dnnlib.util, unused here
    import legacy

    with open(HERE / "nvidia_g32.pkl", "rb") as f:
        return legacy.load_network_pkl(f)["G_ema"].eval()


# ---------------------------------------------------------------------------------------------
# SeFa


def import_sefa(sefa: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """SeFa's ``utils`` and ``models`` modules."""
    stub_if_missing("cv2")  # SeFa's image helpers only
    with own_modules(sefa, ("utils", "models")):
        sefa_utils = importlib.import_module("utils")
        sefa_models = importlib.import_module("models")
    return sefa_utils, sefa_models


class StyleHolder(torch.nn.Module):
    """A genforce layer as far as SeFa reads it: ``.style.weight`` [C_in, w_dim]."""

    def __init__(self, affine_weight: torch.Tensor) -> None:
        super().__init__()
        self.style = torch.nn.Module()
        self.style.weight = torch.nn.Parameter(affine_weight.detach().clone().float(),
                                               requires_grad=False)


def genforce_view(G_ema: torch.nn.Module, sefa_models: types.ModuleType) -> torch.nn.Module:
    """``G_ema``'s style affines under genforce's StyleGAN2 names (see the module docstring)."""
    synthesis = torch.nn.Module()
    resolutions = list(G_ema.synthesis.block_resolutions)
    assert resolutions == [4 * 2**b for b in range(len(resolutions))], resolutions
    for b, res in enumerate(resolutions):
        block = getattr(G_ema.synthesis, f"b{res}")
        if b == 0:
            synthesis.add_module("layer0", StyleHolder(block.conv1.affine.weight))
        else:
            synthesis.add_module(f"layer{2 * b - 1}", StyleHolder(block.conv0.affine.weight))
            synthesis.add_module(f"layer{2 * b}", StyleHolder(block.conv1.affine.weight))
        synthesis.add_module(f"output{b}", StyleHolder(block.torgb.affine.weight))

    class GenforceView(sefa_models.StyleGAN2Generator):
        def __init__(self) -> None:
            torch.nn.Module.__init__(self)  # not genforce's constructor: nothing is built
            self.gan_type = "stylegan2"
            self.resolution = G_ema.img_resolution
            self.w_space_dim = G_ema.w_dim
            self.num_layers = int(np.log2(self.resolution // 4 * 2)) * 2  # genforce's formula
            self.synthesis = synthesis

    view = GenforceView()
    assert view.num_layers == G_ema.num_ws, (view.num_layers, G_ema.num_ws)
    assert sefa_models.parse_gan_type(view) == "stylegan2"
    return view


def sefa_arrays(G_ema: torch.nn.Module, sefa: Path) -> dict[str, np.ndarray]:
    sefa_utils, sefa_models = import_sefa(sefa)
    view = genforce_view(G_ema, sefa_models)
    out = {}
    for layer_idx in SEFA_LAYER_IDX:
        layers, vectors, values = sefa_utils.factorize_weight(view, layer_idx)
        assert np.isrealobj(values) and np.isrealobj(vectors), layer_idx
        out[f"sefa/{layer_idx}/layers"] = np.asarray(layers, dtype=np.int64)
        out[f"sefa/{layer_idx}/eigenvalues"] = values
        out[f"sefa/{layer_idx}/eigenvectors"] = vectors
        srt = np.sort(values)[::-1]
        print(f"SeFa {layer_idx}: layers {layers}, {values.dtype}, eigenvalues "
              f"{srt[0]:.4g} .. {srt[-1]:.4g}, smallest relative gap "
              f"{np.min(-np.diff(srt)) / srt[0]:.2e}")
    return out


# ---------------------------------------------------------------------------------------------
# GANSpace


def import_ganspace(ganspace: Path) -> types.ModuleType:
    stub_if_missing("fbpca")  # FacebookPCAEstimator only
    with own_modules(ganspace, ("estimators",)):
        return importlib.import_module("estimators")


def ganspace_arrays(G_ema: torch.nn.Module, ganspace: Path) -> dict[str, np.ndarray]:
    estimators = import_ganspace(ganspace)
    z = inputs(NUM_Z, G_ema.z_dim, seed=Z_SEED)
    with torch.no_grad():
        ws = G_ema.mapping(z, torch.zeros([NUM_Z, 0]), truncation_psi=1)
    samples = ws[:, 0].numpy().astype(np.float32)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))
    n_components = G_ema.w_dim  # decomposition.compute: min(components, sample_dims)
    chunk = max(2000, 3 * n_components)  # decomposition.compute's NB
    assert NUM_Z % chunk == 0

    out: dict[str, np.ndarray] = {"z": z.half().numpy()}
    assert torch.equal(z.half().float(), z)

    # 'pca': all samples at once, centred first (decomposition.compute, no batch support)
    pca = estimators.get_estimator("pca", n_components, None)
    assert not pca.batch_support
    X = samples.copy()
    X_global_mean = X.mean(axis=0, keepdims=True, dtype=np.float32)
    X -= X_global_mean
    pca.fit(X)
    assert np.all(pca.transformer.mean_ < 1e-3), "Mean of normalized data should be zero"
    fits = {"pca": (pca, X_global_mean)}

    # 'ipca': fit_partial on consecutive chunks (decomposition.compute, batch support)
    ipca = estimators.get_estimator("ipca", n_components, None)
    assert ipca.batch_support
    for start in range(0, NUM_Z, chunk):
        assert ipca.fit_partial(samples[start:start + chunk].copy())
    fits["ipca"] = (ipca, ipca.transformer.mean_.reshape(1, -1))

    for name, (est, mean) in fits.items():
        comp, stdev, var_ratio = est.get_components()
        assert comp.shape == (n_components, G_ema.w_dim) and stdev.shape == (n_components,)
        out[f"ganspace/{name}/components"] = np.asarray(comp)
        out[f"ganspace/{name}/stdev"] = np.asarray(stdev)
        out[f"ganspace/{name}/var_ratio"] = np.asarray(var_ratio)
        out[f"ganspace/{name}/mean"] = np.asarray(mean).reshape(-1)
        var = np.asarray(stdev, dtype=np.float64) ** 2
        print(f"GANSpace {name}: {comp.dtype}, stdev {stdev[0]:.4g} .. {stdev[-1]:.4g}, "
              f"smallest relative variance gap {np.min(-np.diff(var)) / var[0]:.2e}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nvidia", type=Path, required=True,
                        help=f"export of NVlabs/stylegan2-ada-pytorch @ {NVIDIA_COMMIT[:8]}")
    parser.add_argument("--sefa", type=Path, required=True,
                        help=f"export of genforce/sefa @ {SEFA_COMMIT[:8]}")
    parser.add_argument("--ganspace", type=Path, required=True,
                        help=f"export of harskish/ganspace @ {GANSPACE_COMMIT[:8]}")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (tests/golden)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with on_path(args.nvidia.resolve()):
        G_ema = load_nvidia_g_ema(args.nvidia.resolve())
        arrays = sefa_arrays(G_ema, args.sefa.resolve())
        arrays.update(ganspace_arrays(G_ema, args.ganspace.resolve()))
    import sklearn

    arrays["info"] = np.asarray(json.dumps({
        "nvidia_commit": NVIDIA_COMMIT, "sefa_commit": SEFA_COMMIT,
        "ganspace_commit": GANSPACE_COMMIT, "numpy": np.__version__,
        "scikit-learn": sklearn.__version__, "torch": torch.__version__.split("+")[0],
    }, sort_keys=True))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "directions_g32.npz"
    np.savez_compressed(path, **arrays)
    size = path.stat().st_size
    print(f"wrote {path} ({size} bytes)")
    assert size < 400_000, f"{path} is {size} bytes"


if __name__ == "__main__":
    main()
