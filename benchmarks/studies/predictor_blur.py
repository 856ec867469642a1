"""Whether blur alone bends the attribute predictor's factor histograms of rendered images.

A generator's images are softer than the renderer's, so a generated marginal that the predictor
reads as bell-shaped could be the predictor regressing blurred objects towards middle classes
rather than the generator's own. This renders uniform factor draws, shows them at the
generator's resolution, blurs them with a Gaussian of each given σ (pixels at that resolution)
and prints, per factor, the predictor's accuracy, mean max-probability and the TV distance of
its predicted class histogram from the true one.

    PYTHONPATH=. python benchmarks/studies/predictor_blur.py [--resolution 32] \\
        [--sigmas 0 0.5 0.75 1]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F
from tabulate import tabulate

from benchmarks.studies.generator_marginals import rendered
from models.predictor import RESOLUTION, SHAPES3D_PREDICTOR, load_predictor
from training.quality import at_resolution, class_histogram, predicted_outputs, total_variation


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """NCHW images blurred by a separable Gaussian of std ``sigma`` px (edges replicated)."""
    if sigma <= 0:
        return images
    radius = math.ceil(3 * sigma)
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-taps**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius,) * 4, mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=32, help="the generator's resolution")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.5, 0.75, 1.0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--factors", nargs="+", default=["scale", "shape", "orientation"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    predictor = load_predictor(SHAPES3D_PREDICTOR)
    names = list(predictor.factor_names)
    unknown = sorted(set(args.factors) - set(names))
    if unknown:
        raise SystemExit(f"--factors: unknown {unknown}; the predictor has {names}")
    truth, images = rendered(args.n, args.batch, args.resolution)

    rows = []
    for sigma in args.sigmas:
        blurred = (at_resolution(gaussian_blur(x, sigma), args.resolution, RESOLUTION)
                   for x in images)
        probs, _ = predicted_outputs(predictor, blurred)
        row: list[object] = [sigma]
        for factor in args.factors:
            i = names.index(factor)
            classes = probs[i].shape[1]
            true_hist = np.bincount(truth[:, i], minlength=classes) / len(truth)
            accuracy = float((probs[i].argmax(dim=1).numpy() == truth[:, i]).mean())
            row += [accuracy, float(probs[i].max(dim=1).values.mean()),
                    total_variation(class_histogram(probs[i]), true_hist)]
        rows.append(row)
    headers = ["σ (px)"] + [f"{f} {what}" for f in args.factors
                            for what in ("accuracy", "max-prob.", "TV")]
    print(f"{args.n} rendered images at {args.resolution} px, blurred, read at {RESOLUTION} px")
    print(tabulate(rows, headers=headers, floatfmt=".3f"))


if __name__ == "__main__":
    main()
