"""Wall time and scores of the quick-profile VAE baselines on shapes3d-synth.

For each method and seed: train under the ``quick`` profile, then compute all representation
metrics (metrics quick profile) of the trained encoder and of a randomly initialised encoder of
the same architecture (the reference point measured in the same run). Reports wall and process
CPU seconds: on a busy shared machine the CPU time of a ``--threads 1`` run is the
contention-free wall estimate.

    PYTHONPATH=. python benchmarks/vae_quick_profile.py --seeds 0 1 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch

from benchmarks.timing import cap_like_bench
from datasets import load_ground_truth
from methods.base import METHODS, method_spec
from methods.vae_common import fresh_encoder
from metrics.sampling import representation_metrics


def quick_metrics(encoder, ground_truth, seed: int) -> dict[str, float]:
    """All representation scores under the metrics' quick profile (what a bench cell runs)."""
    return representation_metrics(ground_truth, encoder.represent, np.random.default_rng(seed),
                                  "quick")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["beta-vae", "factor-vae"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dataset", default="shapes3d-synth")
    parser.add_argument("--steps", type=int, default=None, help="override the quick steps")
    parser.add_argument("--lr", type=float, default=None, help="override the quick lr")
    args = parser.parse_args()
    print(f"caps: {cap_like_bench()}")
    torch.set_num_threads(args.threads)
    ground_truth = load_ground_truth(args.dataset)
    rows = []
    for name in args.methods:
        spec = method_spec(name)
        overrides = {k: v for k, v in (("steps", args.steps), ("lr", args.lr)) if v is not None}
        config = spec.config("quick", **overrides)
        run = METHODS.get(name).run
        for seed in args.seeds:
            bundle = type("GT", (), {"ground_truth": ground_truth, "name": args.dataset})()
            start, cpu_start = time.perf_counter(), time.process_time()
            encoder = run(bundle, config, seed)
            train_s = time.perf_counter() - start
            train_cpu_s = time.process_time() - cpu_start
            start, cpu_start = time.perf_counter(), time.process_time()
            trained = quick_metrics(encoder, ground_truth, seed=1000 + seed)
            metric_s = time.perf_counter() - start
            metric_cpu_s = time.process_time() - cpu_start
            with warnings.catch_warnings():  # a random encoder's codes are nearly constant
                warnings.simplefilter("ignore")
                random_scores = quick_metrics(fresh_encoder(encoder.arch, seed), ground_truth,
                                              seed=1000 + seed)
            row = {"method": name, "seed": seed, "steps": config.steps, "train_s": train_s,
                   "train_cpu_s": train_cpu_s,
                   "metrics_s": metric_s, "metrics_cpu_s": metric_cpu_s, "trained": trained,
                   "random": random_scores,
                   "last_loss": encoder.meta["loss_history"][-1]}
            rows.append(row)
            print(json.dumps(row, default=float), flush=True)
    total = sum(r["train_s"] + r["metrics_s"] for r in rows)
    print(f"total train+metrics wall time: {total:.0f} s over {len(rows)} runs")


if __name__ == "__main__":
    main()
