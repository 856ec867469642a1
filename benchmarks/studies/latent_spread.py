"""How a StyleGAN2 generator's factor marginals depend on the spread of its latents around w_avg.

A generator whose predicted scale histogram is bell-shaped either cannot draw the rarer sizes or
draws them but samples them rarely. Sampling with ψ > 1 (w = w_avg + ψ (w - w_avg), the
truncation trick run outwards) tells the two apart: if the histograms flatten at the same
predictor confidence, the images are there and the learnt latent density is too narrow. With
``--cutoffs`` the spread is applied to the first k W+ entries only (NVIDIA's truncation cutoff),
which shows in which layers' styles the narrow factors are decided.

    PYTHONPATH=. python benchmarks/studies/latent_spread.py \\
        --generator models/weights/shapes3d_generator.safetensors \\
        [--psis 1 1.15 1.3 1.45 1.6] [--cutoffs 2 4] [--n 2000]
"""

from __future__ import annotations

import argparse

import torch
from tabulate import tabulate

from datasets import load_ground_truth
from models.predictor import SHAPES3D_PREDICTOR, load_predictor
from models.stylegan2 import load_generator
from training.quality import (
    at_resolution,
    compare_outputs,
    generated_batches,
    image_resolution,
    predicted_outputs,
    rendered_batches,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", required=True, help="a native StyleGAN2 .safetensors")
    parser.add_argument("--psis", type=float, nargs="+", default=[1.0, 1.15, 1.3, 1.45, 1.6])
    parser.add_argument("--cutoffs", type=int, nargs="*", default=[],
                        help="also apply the largest ψ to the first k W+ entries only")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    generator = load_generator(args.generator)
    bad = [k for k in args.cutoffs if not 1 <= k <= generator.num_ws]
    if bad:
        raise SystemExit(f"--cutoffs: {bad} outside 1..{generator.num_ws} (the W+ entries)")
    predictor = load_predictor(SHAPES3D_PREDICTOR)
    names = list(predictor.factor_names)
    size = predictor.arch.resolution
    resolution = min(image_resolution(generator), size)
    rendered = predicted_outputs(predictor, (
        at_resolution(x, resolution, size)
        for x in rendered_batches(load_ground_truth("shapes3d-synth"), args.n, 1, args.batch)))

    settings = [(psi, None) for psi in args.psis]
    settings += [(max(args.psis), k) for k in args.cutoffs]
    rows = []
    for psi, cutoff in settings:
        generated = predicted_outputs(predictor, (
            at_resolution(x, resolution, size)
            for x in generated_batches(generator, args.n, 0, args.batch, psi, cutoff)))
        figures = compare_outputs(names, generated, rendered)
        rows.append([psi, "all" if cutoff is None else f"first {cutoff}",
                     figures["frechet_distance"],
                     *(f"{f['tv_distance']:.3f} / {f['mean_max_prob']:.2f}"
                       for f in figures["factors"].values())])
    print(f"n = {args.n}, compared at {resolution} px; per factor: TV distance / mean "
          f"max-probability")
    print(tabulate(rows, headers=["ψ", "W+ entries", "Fréchet", *names],
                   floatfmt=(".2f", "", ".0f")))


if __name__ == "__main__":
    main()
