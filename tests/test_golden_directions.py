"""SeFa and GANSpace against directions computed by the REFERENCE code on the golden generator.

``tests/golden/directions_g32.npz`` holds what SeFa's own ``factorize_weight`` and GANSpace's own
``PCAEstimator`` / ``IPCAEstimator`` return for the golden NVIDIA generator ``nvidia_g32.pkl``
(see ``tests/golden/make_golden_directions.py``, run by hand; these tests never need the reference
code). The pickle goes through the project's loader and the project's methods must reproduce them.

Conventions bridged here (not in the code):

* SeFa's ``layer_idx`` i is W+ row i: genforce's ``layer{i}`` reads ``wp[:, i]`` and the last
  index is the final ToRGB. 'all' is every row, as the project's ``layers=None``. SeFa returns
  ``np.linalg.eig``'s order (float32, unsorted): sorted here by eigenvalue, descending.
* 'all' cannot tell a wrong row -> layer assignment (A Aᵀ does not depend on the column order),
  only a wrong set of layers. Besides the first rows '0-2', the subsets '1,3,5,7', '2-3,6-7'
  and '4-7' hold the rows whose index has bit 0, 1 or 2 set: every row has its own pattern of
  membership, so matching all of them pins the whole row -> layer assignment (ToRGB included).
* Eigenvectors and components are compared up to sign, as ``|cos|`` of the normalised rows.
  Near-degenerate eigenpairs (neighbouring eigenvalues closer than ``GAP`` times the largest)
  have no individual direction to compare: they are grouped and their spanned subspaces are
  compared instead (every principal-angle cosine >= the same bound). In this fixture that is one
  pair of GANSpace components (29 and 30, gap 8.8e-5); no SeFa pair is that close.
* GANSpace 'pca' stdev is ``np.std`` of the projections, ddof 0; 'ipca' stdev is sklearn's
  ``sqrt(explained_variance_)``, ddof 1; the project's ``StreamingCovariance`` uses ddof 1. The
  'pca' stdev is compared after the factor ``sqrt((n - 1) / n)``; the tolerance (1e-5 relative)
  is below that factor's effect (1.25e-4 at n = 4000), so a ddof mix-up fails.
* GANSpace's IPCA keeps ``n_components = w_dim``, so it is exact, not approximate: it is held
  to the same bounds as PCA.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from methods.ganspace import StreamingCovariance, principal_components
from methods.sefa import SeFaConfig, run_sefa, sefa_eigenpairs
from models.stylegan2 import StyleGAN2Generator
from models.stylegan2.loader import load_any_generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GOLDEN = Path(__file__).resolve().parent / "golden"
SEFA_LAYER_IDX = ("all", "0-2", "1,3,5,7", "2-3,6-7", "4-7")
SEFA_ROWS = {"all": list(range(8)), "0-2": [0, 1, 2], "1,3,5,7": [1, 3, 5, 7],
             "2-3,6-7": [2, 3, 6, 7], "4-7": [4, 5, 6, 7]}
GAP = 1e-4  # neighbouring eigenvalues closer than GAP * largest: compared as a subspace

SEFA_EIG_RTOL = 1e-4
SEFA_COS = 1 - 1e-5
GANSPACE_COS = 1 - 1e-4
GANSPACE_STD_RTOL = 1e-5
GANSPACE_MEAN_ATOL = 2e-5


@pytest.fixture(scope="module")
def generator() -> StyleGAN2Generator:
    return load_any_generator(GOLDEN / "nvidia_g32.pkl")


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "directions_g32.npz") as data:
        return {k: data[k] for k in data.files}


def sorted_reference(values: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference eigenpairs (rows) in float64, eigenvalue descending."""
    order = np.argsort(values)[::-1]
    return values[order].astype(np.float64), vectors[order].astype(np.float64)


def clusters(values: np.ndarray) -> list[list[int]]:
    """Runs of consecutive (descending) eigenvalues whose neighbour gaps are < GAP * largest."""
    groups = [[0]]
    for i in range(1, len(values)):
        if values[i - 1] - values[i] < GAP * values[0]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def assert_same_directions(ours: np.ndarray, ref_values: np.ndarray, ref: np.ndarray,
                           min_cos: float) -> int:
    """``ours`` [k, d] equals ``ref`` [k, d] (sorted by ``ref_values``) up to sign, clusters of
    near-degenerate ones as subspaces; returns how many were compared one by one."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    singles = 0
    for group in clusters(ref_values):
        if len(group) == 1:
            cos = abs(float(ours[group[0]] @ ref[group[0]]))
            assert cos >= min_cos, f"direction {group[0]}: |cos| = {cos!r}"
            singles += 1
        else:  # principal-angle cosines between the two spans
            cosines = np.linalg.svd(ours[group] @ ref[group].T, compute_uv=False)
            assert cosines.min() >= min_cos, f"near-degenerate {group}: cosines {cosines}"
    return singles


# ---------------------------------------------------------------------------------------------
# SeFa


def sefa_reference(golden: dict[str, np.ndarray], layer_idx: str
                   ) -> tuple[list[int], np.ndarray, np.ndarray]:
    values, vectors = sorted_reference(golden[f"sefa/{layer_idx}/eigenvalues"],
                                       golden[f"sefa/{layer_idx}/eigenvectors"])
    return golden[f"sefa/{layer_idx}/layers"].tolist(), values, vectors


def test_sefa_reference_layers(generator: StyleGAN2Generator,
                               golden: dict[str, np.ndarray]) -> None:
    """SeFa's 'all' is every W+ row; in the bit subsets every row has its own membership."""
    assert generator.num_ws == 8
    for layer_idx, rows in SEFA_ROWS.items():
        assert golden[f"sefa/{layer_idx}/layers"].tolist() == rows, layer_idx
    patterns = {tuple(i in SEFA_ROWS[s] for s in ("1,3,5,7", "2-3,6-7", "4-7"))
                for i in range(generator.num_ws)}
    assert len(patterns) == generator.num_ws


@pytest.mark.parametrize("layer_idx", SEFA_LAYER_IDX)
def test_sefa_eigenpairs_match_reference(generator: StyleGAN2Generator,
                                         golden: dict[str, np.ndarray], layer_idx: str) -> None:
    layers, ref_values, ref_vectors = sefa_reference(golden, layer_idx)
    affines = generator.style_affines()
    values, vectors = sefa_eigenpairs([affines[i].double().numpy() for i in layers])
    np.testing.assert_allclose(values, ref_values, rtol=SEFA_EIG_RTOL, atol=0)
    singles = assert_same_directions(vectors, ref_values, ref_vectors, SEFA_COS)
    assert singles == generator.w_dim  # no near-degenerate SeFa pair in this fixture


@pytest.mark.parametrize("layer_idx", SEFA_LAYER_IDX)
def test_run_sefa_matches_reference(generator: StyleGAN2Generator,
                                    golden: dict[str, np.ndarray], layer_idx: str) -> None:
    """The method's entry point, with SeFa's layer selection as its ``layers`` config."""
    layers, ref_values, ref_vectors = sefa_reference(golden, layer_idx)
    config = SeFaConfig(num_directions=generator.w_dim,
                        layers=None if layer_idx == "all" else tuple(layers))
    dirs = run_sefa(SimpleNamespace(generator=generator), config, seed=0)
    assert dirs.meta["layers"] == layers
    np.testing.assert_allclose(dirs.meta["eigenvalues"], ref_values, rtol=SEFA_EIG_RTOL, atol=0)
    others = [i for i in range(generator.num_ws) if i not in layers]
    assert torch.count_nonzero(dirs.vectors[:, others]) == 0
    rows = dirs.vectors[:, layers].double()
    assert torch.equal(rows, rows[:, :1].expand_as(rows))  # the same W vector on every row
    assert_same_directions(rows[:, 0].numpy(), ref_values, ref_vectors, SEFA_COS)


# ---------------------------------------------------------------------------------------------
# GANSpace


@pytest.fixture(scope="module")
def project_pca(generator: StyleGAN2Generator, golden: dict[str, np.ndarray]
                ) -> tuple[StreamingCovariance, np.ndarray, np.ndarray]:
    """The project's PCA of W for the stored z (mapped by the project, no truncation), streamed
    in two batches."""
    z = torch.from_numpy(golden["z"].astype(np.float32))
    stats = StreamingCovariance(generator.w_dim)
    with torch.no_grad():
        for batch in z.split(z.shape[0] // 2):
            stats.update(generator.mapping(batch, truncation_psi=1.0).numpy())
    values, components = principal_components(stats.covariance())
    return stats, values, components


# the stdev's ddof in each GANSpace estimator ('pca': np.std; 'ipca': sklearn, n - 1)
GANSPACE_DDOF = {"pca": 0, "ipca": 1}


@pytest.mark.parametrize("estimator", list(GANSPACE_DDOF))
def test_ganspace_matches_reference(project_pca: tuple[StreamingCovariance, np.ndarray,
                                                       np.ndarray],
                                    golden: dict[str, np.ndarray], estimator: str) -> None:
    stats, values, components = project_pca
    n = stats.count
    assert n == golden["z"].shape[0] == 4000
    ref_std = golden[f"ganspace/{estimator}/stdev"].astype(np.float64)
    ref_components = golden[f"ganspace/{estimator}/components"].astype(np.float64)
    assert np.all(np.diff(ref_std) <= 0)  # GANSpace sorts by stdev, descending
    # the sample mean each reference fit removed
    np.testing.assert_allclose(stats.mean, golden[f"ganspace/{estimator}/mean"], rtol=0,
                               atol=GANSPACE_MEAN_ATOL)
    # stdev: the project's is ddof 1; convert to the estimator's ddof
    std = np.sqrt(values * (n - 1) / (n - GANSPACE_DDOF[estimator]))
    np.testing.assert_allclose(std, ref_std, rtol=GANSPACE_STD_RTOL, atol=0)
    np.testing.assert_allclose(values / values.sum(), golden[f"ganspace/{estimator}/var_ratio"],
                               rtol=GANSPACE_STD_RTOL, atol=0)
    singles = assert_same_directions(components, ref_std**2, ref_components, GANSPACE_COS)
    assert singles >= components.shape[0] - 2  # one near-degenerate pair at most
