"""Wall time and scores of the quick-profile VAE baselines on shapes3d-synth.

For each method and seed: train under the ``quick`` profile, then score MIG and the FactorVAE
score (FVM) of the trained encoder and of a randomly initialised encoder of the same architecture
(the reference point measured in the same run). Reports wall and process CPU seconds: on a
busy shared machine the CPU time of a ``--threads 1`` run is the contention-free wall estimate.

    PYTHONPATH=. python benchmarks/vae_quick_profile.py --seeds 0 1 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from datasets import load_ground_truth
from methods.base import METHODS, method_spec
from methods.vae_common import fresh_encoder
from metrics.factor_vae import factor_vae_from_votes
from metrics.mig import mig


def mig_and_fvm(encoder, ground_truth, seed: int, num_mig: int = 10_000, num_votes: int = 800,
                num_variance: int = 5_000, vote_batch: int = 64) -> dict[str, float]:
    """MIG on ``num_mig`` uniform samples; FVM with ``num_votes`` training and half as many
    evaluation votes (smaller than dlib's 10000/5000 to keep the run short)."""
    rng = np.random.default_rng(seed)
    factors, images = ground_truth.sample(num_mig, rng)
    scores = dict(mig(encoder.represent(images), factors))
    variance_codes = encoder.represent(ground_truth.sample(num_variance, rng)[1])

    def votes(n: int) -> tuple[np.ndarray, np.ndarray]:
        fixed = rng.integers(0, ground_truth.num_factors, size=n)
        groups = []
        for k in fixed:
            f = ground_truth.sample_factors(vote_batch, rng)
            f[:, k] = f[0, k]
            groups.append(encoder.represent(ground_truth.observations(f)))
        return np.stack(groups), fixed

    train, train_k = votes(num_votes)
    test, test_k = votes(num_votes // 2)
    scores.update(factor_vae_from_votes(train, train_k, test, test_k, variance_codes,
                                        ground_truth.num_factors))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["beta-vae", "factor-vae"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dataset", default="shapes3d-synth")
    parser.add_argument("--steps", type=int, default=None, help="override the quick steps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ground_truth = load_ground_truth(args.dataset)
    rows = []
    for name in args.methods:
        spec = method_spec(name)
        overrides = {} if args.steps is None else {"steps": args.steps}
        config = spec.config("quick", **overrides)
        run = METHODS.get(name)
        for seed in args.seeds:
            bundle = type("GT", (), {"ground_truth": ground_truth, "name": args.dataset})()
            start, cpu_start = time.perf_counter(), time.process_time()
            encoder = run(bundle, config, seed)
            train_s = time.perf_counter() - start
            train_cpu_s = time.process_time() - cpu_start
            start = time.perf_counter()
            trained = mig_and_fvm(encoder, ground_truth, seed=1000 + seed)
            metric_s = time.perf_counter() - start
            random_scores = mig_and_fvm(fresh_encoder(encoder.arch, seed), ground_truth,
                                        seed=1000 + seed)
            row = {"method": name, "seed": seed, "steps": config.steps, "train_s": train_s,
                   "train_cpu_s": train_cpu_s,
                   "metrics_s": metric_s, "trained": trained, "random": random_scores,
                   "last_loss": encoder.meta["loss_history"][-1]}
            rows.append(row)
            print(json.dumps(row, default=float), flush=True)
    total = sum(r["train_s"] + r["metrics_s"] for r in rows)
    print(f"total train+metrics wall time: {total:.0f} s over {len(rows)} runs")


if __name__ == "__main__":
    main()
