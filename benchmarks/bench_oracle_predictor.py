"""Wall time of the oracle generator and the shipped attribute predictor on CPU.

Plain references measured in the same run: the renderer's own numpy composition of the same
number of grid images (``GroundTruthData.observations``) for the oracle's ``synthesize``, and a
bare ``safetensors`` read of the weight file for ``load_predictor``.

    PYTHONPATH=. python benchmarks/bench_oracle_predictor.py [--n 64] [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from safetensors.torch import load_file
from tabulate import tabulate

from benchmarks.timing import best_of, cap_like_bench
from models.oracle import load_oracle_generator
from models.predictor import SHAPES3D_PREDICTOR, load_predictor, uint8_to_input


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"caps: {cap_like_bench()}")
    torch.set_num_threads(args.threads)

    oracle = load_oracle_generator(seed=0)
    gt = oracle.ground_truth
    z = torch.randn(args.n, oracle.z_dim, generator=torch.Generator().manual_seed(0))
    w = oracle.mapping(z)
    factors = gt.sample_factors(args.n, np.random.default_rng(0))
    predictor = load_predictor(SHAPES3D_PREDICTOR)
    images = uint8_to_input(gt.observations(factors))

    def synth_with_grad() -> None:
        ws = w.clone().requires_grad_(True)
        oracle.synthesize(ws).sum().backward()

    with torch.no_grad():
        rows = [
            ("oracle synthesize", best_of(lambda: oracle.synthesize(w), args.repeats),
             "renderer observations", best_of(lambda: gt.observations(factors), args.repeats)),
            ("load_predictor", best_of(lambda: load_predictor(SHAPES3D_PREDICTOR), args.repeats),
             "safetensors load_file",
             best_of(lambda: load_file(str(SHAPES3D_PREDICTOR)), args.repeats)),
            ("predictor predict_proba",
             best_of(lambda: predictor.predict_proba(images), args.repeats),
             "predictor features", best_of(lambda: predictor.features(images), args.repeats)),
        ]
    rows.append(("oracle synthesize + backward", best_of(synth_with_grad, args.repeats),
                 "oracle synthesize", rows[0][1]))
    table = [(name, f"{t * 1e3:.1f}", ref, f"{r * 1e3:.1f}", f"{t / r:.2f}")
             for name, t, ref, r in rows]
    print(f"n={args.n} images, {args.threads} thread(s), best of {args.repeats}")
    print(tabulate(table, headers=("operation", "ms", "reference", "ref ms", "ratio")))


if __name__ == "__main__":
    main()
