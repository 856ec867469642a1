"""Seconds per navigator training step (ContraFeat quick profile), split into generator
forward+backward, sensor forward+backward and everything else, all measured in the same run.

The split is measured by replaying the step's generator and sensor work on their own (same batch
sizes, gradients w.r.t. their inputs as in training) and subtracting from the full step; the
target is "everything else" under 20 % of the step.

    python benchmarks/navigator_step.py [--dataset shapes3d] [--method contrafeat-bi]
                                        [--steps 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.planning.bundles import load_bundle  # noqa: E402
from benchmarks.timing import best_of  # noqa: E402
from methods.base import method_spec  # noqa: E402
from methods.contrafeat import (  # noqa: E402
    NavigatorTrainer,
    bundle_sensor,
    mixed_ws,
    pca_basis,
)
from methods.navigator import Navigator  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="shapes3d")
    p.add_argument("--method", default="contrafeat-bi", choices=["contrafeat-bi",
                                                                 "contrafeat-pt"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    bundle = load_bundle(args.dataset)
    generator = bundle.generator.requires_grad_(False)
    config = method_spec(args.method).config("quick")
    sensor, sensor_name = bundle_sensor(bundle, config)
    basis = pca_basis(generator, config.num_eigen, 5000, seed=0)
    navigator = Navigator(config.num_directions, generator.num_ws, generator.w_dim, basis=basis,
                          generator=torch.Generator().manual_seed(0))
    trainer = NavigatorTrainer(generator, sensor, navigator, config, seed=0)

    step = best_of(trainer.step, args.steps)
    b = config.batch_size
    edited = b + b // 2 if config.loss == "bi" else 2 * b  # images with a graph per step
    ws = mixed_ws(generator, edited, config.num_colors, torch.Generator().manual_seed(1))

    def generator_work() -> None:
        with torch.no_grad():
            if config.loss == "bi":
                generator.synthesize(ws[:b])  # the originals, no graph
        x = ws.clone().requires_grad_(True)
        generator.synthesize(x).square().mean().backward()

    images = generator.synthesize(ws).detach()

    def sensor_work() -> None:
        with torch.no_grad():
            if config.loss == "bi":
                sensor(images[:b])
        x = images.clone().requires_grad_(True)
        loss = sum(f.square().mean() for f in sensor(x))
        if config.loss == "pt":
            size = config.pattern_size or generator.resolution
            pat = torch.zeros(config.num_directions, generator.img_channels, size, size,
                              requires_grad=True)
            loss = loss + sum(f.square().mean() for f in sensor(torch.tanh(pat)))
        loss.backward()

    gen = best_of(generator_work, args.steps)
    sen = best_of(sensor_work, args.steps)
    other = max(step - gen - sen, 0.0)
    print(f"{args.method} on {args.dataset} (sensor {sensor_name}), quick profile: batch {b}, "
          f"{config.num_directions} directions, {args.threads} threads")
    print(f"{'part':<28}{'s/step':>10}{'share':>9}")
    for name, value in (("generator fwd+bwd", gen), ("sensor fwd+bwd", sen),
                        ("everything else", other), ("full step", step)):
        print(f"{name:<28}{value:>10.3f}{value / step:>9.1%}")
    print(f"target: everything else < 20 % -> {'met' if other / step < 0.2 else 'missed'}")
    print(f"quick profile: {config.steps} steps -> about {config.steps * step / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
