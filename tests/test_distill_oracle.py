"""Known answer of the whole distillation path: on ``shapes3d-oracle`` the exact factor
directions, distilled through pairs and the group VAE, give an encoder that the ground-truth
metrics score high; random directions, through the same cells, score far lower.

The cells are those of ``bench run --methods oracle,random --datasets shapes3d-oracle --seeds 0,1
--jobs 2 --threads 1`` under the quick profile. A short-trained group VAE is chaotic: the last
bits of a CPU model's kernels change its weights as a seed does, and some runs end with the
geometry unlearnt (the seed-0 oracle cell on a Xeon: MIG 0.19, where other seeds and hosts give
about 0.5-0.66), so one cell cannot carry a margin. The claim tested is the one that holds run
by run: exact directions reach the target on at least one of two seeds, random directions on
none (docs/distillation.md).

Four real cells cost about 14 minutes on 2 cores, so the module is marked ``long``: the default
``python -m pytest`` skips it and ``python -m pytest -m long`` (part of .ci/run) runs it.
"""

from __future__ import annotations

import pytest

from bench.grid import GridSpec
from bench.planning.plan import plan_grid
from bench.results.store import ResultStore
from bench.running.runner import run_grid

pytestmark = pytest.mark.long

SEEDS = [0, 1]


@pytest.fixture(scope="module")
def distilled(tmp_path_factory) -> dict[str, list[dict]]:
    """Each method's metrics on every seed of ``SEEDS``."""
    store = ResultStore(tmp_path_factory.mktemp("results"))
    plans = plan_grid(GridSpec(methods=["oracle", "random"], datasets=["shapes3d-oracle"],
                               seeds=SEEDS), threads=1)
    outcomes = run_grid(plans, store, jobs=2)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    results = sorted(store.results(), key=lambda r: r["seed"])
    return {method: [r["metrics"] for r in results if r["method"] == method]
            for method in ("oracle", "random")}


def best(runs: list[dict], metric: str) -> float:
    return max(run[metric] for run in runs)


def test_exact_directions_reach_the_target_on_some_seed(distilled) -> None:
    oracle = distilled["oracle"]
    assert len(oracle) == len(SEEDS)
    assert best(oracle, "mig") >= 0.4, oracle
    assert best(oracle, "dci_disentanglement") >= 0.42, oracle
    assert best(oracle, "fvm_eval_accuracy") >= 0.75, oracle


def test_random_directions_stay_far_below_on_every_seed(distilled) -> None:
    oracle, random = distilled["oracle"], distilled["random"]
    assert len(random) == len(SEEDS)
    assert best(random, "mig") <= 0.2, random
    assert best(random, "mig") <= best(oracle, "mig") - 0.25, (random, oracle)
    assert best(random, "dci_disentanglement") <= best(oracle, "dci_disentanglement") - 0.1, (
        random, oracle)
