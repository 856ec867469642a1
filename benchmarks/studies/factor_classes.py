"""Generated images by predicted class next to rendered images of that class, for one factor.

A generator whose predicted class histogram matches the data's could still match it with
images that only the predictor reads as, say, the smallest size. This figure lets a person
check: for each class of the factor, one row of rendered images of that class (left) and one
row of generated images that the attribute predictor puts in it (right, most confident first;
blank where the generator drew fewer). Both at the generator's resolution, shown at the
predictor's 64 px as the pipeline sees them.

    PYTHONPATH=. python benchmarks/studies/factor_classes.py \\
        --generator models/weights/shapes3d_generator.safetensors --factor scale \\
        --png docs/generator/shapes3d-generator-scale-classes.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from datasets import load_ground_truth
from models.predictor import RESOLUTION, SHAPES3D_PREDICTOR, load_predictor
from models.stylegan2 import load_generator
from training.quality import at_resolution, generated_batches, image_resolution, predicted_outputs
from training.train_gan import images_to_tensor, save_image_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", required=True, help="generator checkpoint")
    parser.add_argument("--factor", default="scale")
    parser.add_argument("--per-class", type=int, default=6, help="images per side and class")
    parser.add_argument("--n", type=int, default=1000, help="generated images to classify")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    predictor = load_predictor(SHAPES3D_PREDICTOR)
    names = list(predictor.factor_names)
    if args.factor not in names:
        raise SystemExit(f"--factor: unknown {args.factor!r}; the predictor has {names}")
    k = names.index(args.factor)
    generator = load_generator(args.generator)
    resolution = image_resolution(generator)
    generated = torch.cat(list(generated_batches(generator, args.n, args.seed, 100)))
    probs, _ = predicted_outputs(
        predictor, (at_resolution(x, resolution, RESOLUTION) for x in generated.split(100)))
    confidence, predicted = probs[k].max(dim=1)

    ground_truth = load_ground_truth("shapes3d-synth")
    rng = np.random.default_rng(args.seed)
    classes, m = predictor.factor_sizes[k], args.per_class
    tiles = []
    for c in range(classes):
        factors = ground_truth.sample_factors(m, rng)
        factors[:, k] = c
        rendered = images_to_tensor(ground_truth.observations(factors), resolution, 3)
        chosen = torch.nonzero(predicted == c).flatten()
        chosen = chosen[confidence[chosen].argsort(descending=True)][:m]
        row = torch.full((m, 3, resolution, resolution), 1.0)  # white where none was drawn
        row[:len(chosen)] = generated[chosen]
        tiles += [rendered, row]
    grid = at_resolution(torch.cat(tiles), resolution, RESOLUTION)
    save_image_grid(grid, Path(args.png), cols=2 * m)
    counts = torch.bincount(predicted, minlength=classes).tolist()
    print(f"{args.factor}: rendered (left {m}) | generated, predicted class (right {m}); "
          f"generated count per class of {args.n}: {counts}")


if __name__ == "__main__":
    main()
