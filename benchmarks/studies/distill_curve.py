"""Distillation sensitivity on ``shapes3d-oracle``: exact vs random directions through pairs ->
group VAE -> representation metrics, over pair edit size, group-VAE steps and pair count.

Every row runs the directions flow's own pieces (calibration of the quick profile, ``make_pairs``,
``train_group_vae``, the metrics' quick profile) and is appended to a JSON-lines file as soon as
it is measured, so a long sweep can be read while it runs; ``--plot`` draws the file.

    PYTHONPATH=. python benchmarks/studies/distill_curve.py --multipliers 1 4 8 --steps 800 \\
        --out docs/data/distill_curve.jsonl
    PYTHONPATH=. python benchmarks/studies/distill_curve.py --plot docs/data/distill_curve.jsonl \\
        --png docs/distillation-curve.png
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from bench.flows.directions import flow_settings
from datasets import load_ground_truth
from distill.group_vae import group_vae_config, train_group_vae
from distill.pairs import make_pairs
from methods.random_dirs import random_unit_vectors
from metrics.discovery import calibrate_scales
from metrics.sampling import representation_metrics
from models.directions import Directions
from models.oracle import load_oracle_generator

HEADLINE = ("mig", "fvm_eval_accuracy", "dci_disentanglement")
# the quick metric profile, less the BetaVAE score (not plotted; 2/3 of the images drawn)
SWEEP_METRIC_OVERRIDES = {"betavae": {"num_train": 8, "num_eval": 8, "batch_size": 4}}


def directions_for(source: str, generator, seed: int) -> Directions:
    if source == "oracle":
        return Directions.from_w(generator.true_directions().float(), generator.num_ws)
    if source == "random":
        vectors = random_unit_vectors(10, generator.w_dim, torch.Generator().manual_seed(seed))
        return Directions.from_w(vectors, generator.num_ws)
    raise SystemExit(f"unknown source {source!r} (oracle, random)")


def sweep(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    ground_truth = load_ground_truth("shapes3d-synth")
    generator = load_oracle_generator(seed=0, ground_truth=ground_truth).requires_grad_(False)
    calibration = flow_settings("quick").calibration
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seed:
        for lr in args.lr:
            sweep_seed(args, generator, ground_truth, calibration, out, seed, lr)


def sweep_seed(args: argparse.Namespace, generator, ground_truth, calibration, out: Path,
               seed: int, lr: float) -> None:
    calibrated = {source: calibrate_scales(generator, directions_for(source, generator, seed),
                                           calibration)
                  for source in args.sources}
    for num_pairs in args.num_pairs:
        for sampling in args.sampling:
            for multiplier in args.multipliers:
                for source, directions in calibrated.items():
                    with tempfile.TemporaryDirectory() as tmp:
                        start = time.perf_counter()
                        make_pairs(generator, directions, Path(tmp) / "pairs.h5",
                                   num_pairs=num_pairs, seed=seed + 17, batch=250,
                                   edit_multiplier=multiplier, edit_sampling=sampling)
                        pair_s = time.perf_counter() - start
                        for steps in args.steps:
                            config = group_vae_config("quick", steps=steps, lr=lr,
                                                      batch_size=args.batch, beta=args.beta,
                                                      resolution=args.resolution)
                            start = time.perf_counter()
                            encoder = train_group_vae(Path(tmp) / "pairs.h5",
                                                      directions.num_directions, config,
                                                      seed)
                            vae_s = time.perf_counter() - start
                            scores = representation_metrics(
                                ground_truth, encoder.represent,
                                np.random.default_rng(seed), "quick",
                                overrides=SWEEP_METRIC_OVERRIDES)
                            row = {"source": source, "num_pairs": num_pairs,
                                   "sampling": sampling, "multiplier": multiplier,
                                   "steps": steps, "lr": lr, "batch": args.batch,
                                   "beta": args.beta, "seed": seed,
                                   "resolution": args.resolution,
                                   "pairs_s": round(pair_s, 1), "group_vae_s": round(vae_s, 1),
                                   **{k: round(float(scores[k]), 4) for k in HEADLINE}}
                            print(json.dumps(row), flush=True)
                            with open(out, "a", encoding="utf-8") as handle:
                                handle.write(json.dumps(row) + "\n")


def plot(path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    axes_spec = [("multiplier", "pair edit size (x calibrated scale)"),
                 ("steps", "group-VAE steps"), ("num_pairs", "pairs")]
    fig, axes = plt.subplots(len(HEADLINE), len(axes_spec), figsize=(12, 8), squeeze=False)
    for col, (key, label) in enumerate(axes_spec):
        values = sorted({r[key] for r in rows})
        if len(values) < 2:
            for row in range(len(HEADLINE)):
                axes[row][col].set_visible(False)
            continue
        # the other sweep keys at their most common value
        others = [k for k, _ in axes_spec if k != key]
        fixed = {k: max({r[k] for r in rows}, key=lambda v, k=k: sum(r[k] == v for r in rows))
                 for k in others}
        for row, metric in enumerate(HEADLINE):
            ax = axes[row][col]
            for source, style in (("oracle", "o-"), ("random", "s--")):
                pts = sorted((r[key], r[metric]) for r in rows if r["source"] == source
                             and r["sampling"] == "fixed"
                             and all(r[k] == v for k, v in fixed.items()))
                if pts:
                    ax.plot(*zip(*pts, strict=True), style, label=source)
            ax.set_xlabel(label)
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(", ".join(f"{k}={v}" for k, v in fixed.items()), fontsize=8)
                ax.legend()
    fig.suptitle("Distilled encoder on shapes3d-oracle: exact vs random directions")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(f"wrote {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+", default=["oracle", "random"])
    parser.add_argument("--multipliers", nargs="+", type=float, default=[1.0])
    parser.add_argument("--sampling", nargs="+", default=["fixed"])
    parser.add_argument("--steps", nargs="+", type=int, default=[800])
    parser.add_argument("--num-pairs", nargs="+", type=int, default=[2000])
    parser.add_argument("--lr", nargs="+", type=float, default=[5e-4])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--resolution", type=int, default=64, help="group-VAE working size")
    parser.add_argument("--seed", nargs="+", type=int, default=[0],
                        help="seeds of pairs, VAE and metrics (random directions too)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="distill_curve.jsonl")
    parser.add_argument("--plot", help="draw this JSON-lines file instead of sweeping")
    parser.add_argument("--png", default="docs/distillation-curve.png")
    args = parser.parse_args()
    if args.plot:
        plot(Path(args.plot), Path(args.png))
    else:
        sweep(args)


if __name__ == "__main__":
    main()
