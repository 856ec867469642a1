"""What planning a grid costs per cell: ``plan_grid`` on grids of growing seed ranges, beside the
same planner hashing each cell's whole identity (the reference: the planner before
``seed_ids``), in one run.

The grids use the embedded ``shapes3d-synth`` and the two VAEs (the bundle loads in
milliseconds), so the rows are the planner's own cost: resolving configs once per method, then
one id per seed. The ids of both ways are compared on the largest grid.

    PYTHONPATH=. python benchmarks/plan_cost.py [--cells 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Iterator

from tabulate import tabulate

import bench.planning.plan
from bench.grid import GridSpec, parse_seeds
from bench.planning.plan import CellPlan
from benchmarks.timing import best_of


def plan(cells: int) -> list:
    seeds = parse_seeds(f"0-{cells // 2 - 1}")
    grid = GridSpec(methods=["beta-vae", "factor-vae"], datasets=["shapes3d-synth"], seeds=seeds)
    return bench.planning.plan.plan_grid(grid, max_cells=cells)


def whole_identity_ids(template: CellPlan, seeds: Iterable[int]) -> Iterator[str]:
    """The reference ``seed_ids``: each id hashed from its cell's whole identity."""
    for seed in seeds:
        yield dataclasses.replace(template, cell=dataclasses.replace(template.cell, seed=seed)).id


def plan_by_reference(cells: int) -> list:
    original = bench.planning.plan.seed_ids
    bench.planning.plan.seed_ids = whole_identity_ids
    try:
        return plan(cells)
    finally:
        bench.planning.plan.seed_ids = original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for cells in (int(c) for c in args.cells.split(",")):
        planned = plan(cells)
        seconds = best_of(lambda cells=cells: plan(cells), args.repeat)
        reference = best_of(lambda cells=cells: plan_by_reference(cells), args.repeat)
        rows.append([f"{len(planned):,}", f"{seconds:.3f}", f"{1e6 * seconds / len(planned):.1f}",
                     f"{reference:.3f}", f"{reference / seconds:.1f}x"])
    assert [p.id for p in planned] == [p.id for p in plan_by_reference(len(planned))], \
        "the ids of the two ways differ"
    print(tabulate(rows, headers=["cells", "plan_grid s", "us / cell",
                                  "whole-identity hashing s (reference)", "reference / plan_grid"],
                   tablefmt="github", disable_numparse=True))
    print("the ids of both ways are equal on the largest grid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
