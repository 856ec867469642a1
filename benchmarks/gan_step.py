"""Cost of one StyleGAN2 training iteration on CPU, and what each speed-up option buys.

Builds the trainer exactly as ``bench train-generator`` does (shapes3d-synth, non-saturating
loss, lazy R1, style mixing, EMA) and times ``GanTrainer.step`` for variants measured in the same
run: the plain reference (float32, contiguous NCHW, non-fused modulated conv), the trainer's
default channels-last memory format, and on top of it the fused (grouped-conv) modulated conv,
``torch.compile`` of the synthesis network and the discriminator, bf16 autocast, and a smaller
batch; ratios are against the first row. FLOPs per iteration are counted with
``torch.utils.flop_counter`` (forward and backward convolutions and matmuls), so each row also
gives GFLOP/s and the fraction of the machine's plain conv throughput (a 3x3 conv forward and
backward at the generator's busiest shape, timed here). R1 runs every 16th iteration, so the
timed window is a multiple of 16 iterations.

    PYTHONPATH=. python benchmarks/gan_step.py [--config tiny64] [--batch 16] [--threads 1]
        [--iters 16] [--balance 0] [--gamma 10]
        [--variants contiguous channels-last fused compile bf16 batch/2]

``--balance 1 --gamma 3`` times the shipped recipe (the factor-balance classifier included).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from tabulate import tabulate
from torch.utils.flop_counter import FlopCounterMode

import datasets
from benchmarks.timing import best_of, cap_like_bench
from models.stylegan2.config import get_preset
from training.train_gan import DEFAULT_GAMMA, R1_INTERVAL, GanTrainer, TrainOptions

VARIANTS = ("contiguous", "channels-last", "fused", "compile", "bf16", "batch/2")


def make_trainer(config: str, batch: int, data: Any, memory_format: str, *,
                 balance: float = 0.0, gamma: float = DEFAULT_GAMMA) -> GanTrainer:
    options = TrainOptions(data="shapes3d-synth", config=config, kimg=1.0, batch=batch, seed=0,
                           gamma=gamma, lr=0.002, mixing=0.9, ema_kimg=batch * 10 / 32,
                           snapshot_kimg=4.0, tick_kimg=1.0, balance=balance)
    return GanTrainer(get_preset(config), options, data, memory_format)


def apply_variant(trainer: GanTrainer, variant: str) -> Callable[[], Any]:
    """Change the trainer in place for ``variant``; returns the step function to time."""
    G, D = trainer.G, trainer.D
    if variant == "fused":
        synthesize = G.synthesize
        G.synthesize = lambda ws, *a, **k: synthesize(ws, *a, fused=True, **k)
    elif variant == "compile":
        G.synthesis = torch.compile(G.synthesis)
        trainer.D = torch.compile(D)
    elif variant == "bf16":
        def step() -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return GanTrainer.step(trainer)
        return step
    return trainer.step


def conv_throughput(batch: int, channels: int, size: int, repeats: int = 5) -> float:
    """GFLOP/s of a plain 3x3 conv forward + backward (input and weight gradients)."""
    x = torch.randn(batch, channels, size, size, requires_grad=True)
    w = torch.randn(channels, channels, 3, 3, requires_grad=True)

    def once() -> None:
        y = torch.nn.functional.conv2d(x, w, padding=1)
        y.backward(torch.ones_like(y))

    seconds = best_of(once, repeats)
    flops = 3 * 2 * batch * channels * channels * 9 * size * size  # fwd + 2 bwd convs
    return flops / seconds / 1e9


def measure(config: str, batch: int, variant: str, iters: int, data: Any,
            **options: float) -> dict[str, Any]:
    run_batch = max(4, batch // 2) if variant == "batch/2" else batch
    layout = "contiguous" if variant == "contiguous" else "channels-last"
    trainer = make_trainer(config, run_batch, data, layout, **options)
    step = apply_variant(trainer, variant)
    for _ in range(2 if variant != "compile" else 3):  # warm-up (compilation excluded)
        step()
    with FlopCounterMode(display=False) as counter:
        trainer.iteration = 1  # a step without R1
        step()
    flops_plain = counter.get_total_flops()
    trainer.iteration = 0
    start = time.perf_counter()
    for _ in range(iters):
        step()
    seconds = (time.perf_counter() - start) / iters
    return {"variant": variant, "batch": run_batch, "s_per_iter": seconds,
            "img_per_s": run_batch / seconds, "gflop_per_iter": flops_plain / 1e9}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="tiny64")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=R1_INTERVAL,
                   help=f"timed iterations (a multiple of {R1_INTERVAL} includes R1 fairly)")
    p.add_argument("--balance", type=float, default=0.0, help="factor-balance weight (recipe: 1)")
    p.add_argument("--gamma", type=float, default=DEFAULT_GAMMA, help="R1 weight (recipe: 3)")
    p.add_argument("--variants", nargs="+", default=[v for v in VARIANTS if v != "bf16"],
                   choices=VARIANTS, help="bf16 is opt-in: without native bf16 it is 10x slower")
    args = p.parse_args(argv)
    caps = cap_like_bench()
    torch.set_num_threads(args.threads)
    data = datasets.load_ground_truth("shapes3d-synth")
    config = get_preset(args.config)
    busiest = max(config.block_resolutions, key=lambda r: config.channels_at(r) ** 2 * r * r)
    plain = conv_throughput(args.batch, config.channels_at(busiest), busiest)
    rows, base = [], None
    for variant in args.variants:
        try:
            out = measure(args.config, args.batch, variant, args.iters, data,
                          balance=args.balance, gamma=args.gamma)
        except Exception as exc:  # a variant the platform lacks (e.g. no compiler) is reported
            reason = (str(exc).strip().splitlines() or [""])[0][:90]
            rows.append([variant, "-", "-", "-", "-", "-",
                         f"failed: {type(exc).__name__}: {reason}"])
            continue
        base = base or out
        gflops = out["gflop_per_iter"] / out["s_per_iter"]
        rows.append([variant, out["batch"], f"{out['s_per_iter']:.3f}",
                     f"{out['img_per_s']:.1f}",
                     f"{out['img_per_s'] / base['img_per_s']:.2f}x", f"{gflops:.1f}",
                     f"{gflops / plain:.0%}"])
    print(f"{args.config}, batch {args.batch}, balance {args.balance:g}, gamma {args.gamma:g}, "
          f"{args.threads} thread(s), {args.iters} timed "
          f"iterations per row; plain 3x3 conv fwd+bwd at {busiest}px x "
          f"{config.channels_at(busiest)} ch: {plain:.1f} GFLOP/s; caps: {caps}")
    print(tabulate(rows, headers=["variant", "batch", "s/iter", "img/s", "vs first",
                                  "GFLOP/s", "of plain conv"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
