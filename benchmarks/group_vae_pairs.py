"""What converting the pairs once saves the group VAE: CPU seconds of ``train_group_vae`` under
the quick profile's config (fewer steps) with the pairs converted once (``PreparedPairs``) and
batch by batch (before), in one run, and whether the two trained the same weights.

CPU seconds (``time.process_time``) are compared, not wall seconds: they hold on a busy machine.

    PYTHONPATH=. python benchmarks/group_vae_pairs.py [--steps 300] [--pairs 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from benchmarks.timing import cap_like_bench
from distill.group_vae import group_vae_config, train_group_vae


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    caps = cap_like_bench()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    shape = (args.pairs, 64, 64, 3)
    pairs = (rng.integers(0, 256, shape, np.uint8), rng.integers(0, 256, shape, np.uint8),
             rng.integers(0, 10, args.pairs))
    config = dataclasses.replace(group_vae_config("quick"), steps=args.steps)
    seconds, weights = {}, {}
    for prepare in (False, True, False, True):  # interleaved: both see the same load
        start = time.process_time()
        encoder = train_group_vae(pairs, 10, config, seed=0, prepare=prepare)
        seconds[prepare] = min(seconds.get(prepare, float("inf")), time.process_time() - start)
        weights[prepare] = encoder.vae.state_dict()
    same = all(torch.equal(weights[True][k], weights[False][k]) for k in weights[True])
    print(f"{caps}; {args.threads} thread(s); {args.steps} steps of {config.batch_size} pairs "
          f"at {config.resolution} px from {args.pairs} pairs; best of 2, CPU seconds")
    print(f"per batch (before): {seconds[False]:.1f} s ({1e3 * seconds[False] / args.steps:.1f} "
          f"ms/step); converted once: {seconds[True]:.1f} s "
          f"({1e3 * seconds[True] / args.steps:.1f} ms/step); "
          f"ratio {seconds[False] / seconds[True]:.2f}x; identical weights: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
