"""Projection speed: steps per second projecting one 64-px image of the procedural 3DShapes world
into ``shapes3d-oracle`` and ``shapes3d`` with ``bench edit``'s settings for them (the
``shapes3d-disc`` sensor plus pixel MSE, W), on 1 and 2 torch threads, in one run so the
numbers compare. One step's cost is the difference between a run of ``--steps`` and one of
``--steps // 4`` steps divided by the step difference, so the start (w statistics of 10,000
mapped z) is left out; wall time is the best of ``--repeat`` runs, CPU time that run's process
CPU seconds (on a shared machine wall time also counts waiting for a core; CPU seconds and the
thread ratio say more).

    PYTHONPATH=. python benchmarks/projection_speed.py [--steps 80] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from core.thread_wait import pin_passive_waiting

pin_passive_waiting()  # as `bench` does, before torch loads: idle threads sleep, not spin

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from benchmarks.timing import cap_like_bench  # noqa: E402


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call of ``fn``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    caps = cap_like_bench()
    from bench.edit import DEFAULT_MSE, dataset_photos, projection_config
    from bench.planning.bundles import load_bundle
    from models.perceptual import perceptual_distance
    from models.projection import project

    distance = perceptual_distance("shapes3d-disc")
    rows = []
    for dataset in ("shapes3d-oracle", "shapes3d"):
        bundle = load_bundle(dataset)
        generator = bundle.generator
        photos = dataset_photos(bundle, 1, int(generator.resolution))
        target = torch.as_tensor(photos.pixels).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        for threads in (1, 2):
            torch.set_num_threads(threads)
            cost = {}
            for steps in (args.steps // 4, args.steps):
                config = projection_config("quick", num_steps=steps,
                                           mse_weight=DEFAULT_MSE["shapes3d-disc"], batch_size=1)
                call = partial(project, generator, target, distance, config, seed=0)
                runs = [timed(call) for _ in range(args.repeat + 1)][1:]  # the first warms up
                cost[steps] = min(runs)
            span = args.steps - args.steps // 4
            wall = (cost[args.steps][0] - cost[args.steps // 4][0]) / span
            cpu = (cost[args.steps][1] - cost[args.steps // 4][1]) / span
            rows.append([dataset, threads, f"{1 / wall:.1f}", f"{1000 * cpu:.0f}"])
    print(f"one 64-px image, shapes3d-disc + pixel MSE, W; {platform.processor() or 'cpu'}, "
          f"{caps}")
    print(tabulate(rows, headers=["generator", "threads", "steps/s (wall)", "CPU ms/step"]))


if __name__ == "__main__":
    main()
