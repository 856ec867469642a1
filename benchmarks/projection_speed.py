"""Projection speed: steps per second projecting one 64-px image of the procedural 3DShapes world
into ``shapes3d-oracle`` and ``shapes3d`` with ``bench edit``'s settings for them (the
``shapes3d-disc`` sensor plus pixel MSE, W), on 1 and 2 torch threads, in one run so the
numbers compare. A step's cost is timed between the ends of the first and the last step (the
start, w statistics of 10,000 mapped z, is left out); wall time is the best of ``--repeat``
runs after a warm-up, CPU time that run's process CPU seconds (on a shared machine wall time
also counts waiting for a core; CPU seconds and the thread ratio say more).

    PYTHONPATH=. python benchmarks/projection_speed.py [--steps 80] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import time

from core.thread_wait import pin_passive_waiting

pin_passive_waiting()  # as `bench` does, before torch loads: idle threads sleep, not spin

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from benchmarks.timing import cap_like_bench  # noqa: E402


class StepClock:
    """A progress bar for ``project`` that notes wall and CPU time at every step's end, so the
    steps' cost is timed without the start (w statistics of 10,000 mapped z)."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float]] = []

    def __call__(self, total: int, desc: str) -> StepClock:
        return self

    def update(self, amount: int = 1) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def close(self) -> None:
        pass

    def per_step(self) -> tuple[float, float]:
        """(wall, CPU) seconds per step, between the first and the last step's end."""
        (wall0, cpu0), (wall1, cpu1) = self.marks[0], self.marks[-1]
        steps = len(self.marks) - 1
        return (wall1 - wall0) / steps, (cpu1 - cpu0) / steps


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
            config = projection_config("quick", num_steps=args.steps,
                                       mse_weight=DEFAULT_MSE["shapes3d-disc"], batch_size=1)
            runs = []
            for _ in range(args.repeat + 1):  # the first warms up
                clock = StepClock()
                project(generator, target, distance, config, seed=0, progress=clock)
                runs.append(clock.per_step())
            wall, cpu = min(runs[1:])
            rows.append([dataset, threads, f"{1 / wall:.1f}", f"{1000 * cpu:.0f}"])
    print(f"one 64-px image, shapes3d-disc + pixel MSE, W; {platform.processor() or 'cpu'}, "
          f"{caps}")
    print(tabulate(rows, headers=["generator", "threads", "steps/s (wall)", "CPU ms/step"]))


if __name__ == "__main__":
    main()
