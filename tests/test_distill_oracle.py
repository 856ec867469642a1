"""Known answer of the whole distillation path under the quick profile: on ``shapes3d-oracle``
the exact factor directions, distilled through pairs and the group VAE, give an encoder that the
ground-truth metrics score high; random directions, through the same cells, score far lower."""

from __future__ import annotations

import pytest

from bench.grid import GridSpec
from bench.plan import plan_grid
from bench.runner import run_grid
from bench.store import ResultStore
from metrics.registry import METRICS, import_builtin_metrics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    import_builtin_metrics()
    betavae = METRICS.get("betavae").profiles
    saved = dict(betavae["quick"])
    betavae["quick"] = {"num_train": 50, "num_eval": 30}  # not asserted here; 2/3 of the images
    try:
        store = ResultStore(tmp_path_factory.mktemp("results"))
        plans = plan_grid(GridSpec(methods=["oracle", "random"], datasets=["shapes3d-oracle"],
                                   seeds=[0]))
        outcomes = run_grid(plans, store)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        return {r["method"]: r["metrics"] for r in store.results()}
    finally:
        betavae["quick"] = saved


def test_exact_directions_reach_the_target_scores(distilled) -> None:
    oracle = distilled["oracle"]
    assert oracle["mig"] >= 0.3, oracle
    assert oracle["fvm_eval_accuracy"] >= 0.85, oracle
    assert oracle["dci_disentanglement"] >= 0.5, oracle


def test_random_directions_stay_far_below(distilled) -> None:
    oracle, random = distilled["oracle"], distilled["random"]
    assert random["mig"] <= oracle["mig"] - 0.2, (random, oracle)
    assert random["dci_disentanglement"] <= oracle["dci_disentanglement"] - 0.2, (random, oracle)
