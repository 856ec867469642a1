"""The known answers of ``bench edit`` over projection steps: images of the procedural 3DShapes
world (the ones ``bench edit --dataset-images N`` and ``bench prepare --write-images`` draw; no
generator saw them) projected into ``shapes3d-oracle`` or ``shapes3d`` as the command projects
them (its settings, seed 0, batches of 8), for each number of steps:

- mean PSNR of the projections, and the share of images whose projection the attribute
  predictor classifies with the true value of every factor (and of each factor);
- ``shapes3d-oracle`` only: each projection moved along the oracle's true direction of each
  factor by the cell profile's largest edit (the quick profile's +-2 calibrated steps), the
  share of images in which the predicted class of that factor changes, and in which any other
  factor's does (counted as ``bench edit`` counts them, at either end of the edit).

The thresholds of tests/test_edit_known_answers.py and the numbers in docs/editing.md come from
this script's output (one thread; deterministic, so any machine prints the same numbers).

    PYTHONPATH=. python benchmarks/edit_known_answers.py --dataset shapes3d-oracle \
        --images 32 --steps 50,100,200,300
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench.edit import (
    DEFAULT_MSE,
    any_other_fraction,
    change_fractions,
    dataset_photos,
    edit_amounts,
    predicted,
    projection_config,
)
from bench.flows.directions import attribute_predict, flow_settings
from bench.planning.bundles import load_bundle
from models.directions import Directions
from models.perceptual import perceptual_distance, psnr
from models.projection import project, render

LOSS = "shapes3d-disc"


def oracle_directions(bundle: object) -> Directions:
    """The oracle's true factor directions, calibrated as an ``oracle`` cell's calibrate stage
    calibrates them (the quick profile)."""
    from methods.oracle_dirs import OracleDirectionsConfig, run_oracle
    from metrics.discovery import calibrate_scales

    found = run_oracle(bundle, OracleDirectionsConfig(), seed=0)
    return calibrate_scales(bundle.generator, found, flow_settings("quick").calibration)


def measure(dataset: str, images: int, steps: list[int], batch: int) -> list[dict[str, object]]:
    bundle = load_bundle(dataset)
    generator = bundle.generator
    generator.requires_grad_(False)
    predict, names = attribute_predict(bundle.predictor)
    photos = dataset_photos(bundle, images, int(generator.resolution))
    targets = torch.as_tensor(photos.pixels).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    truth = photos.factors
    directions = oracle_directions(bundle) if dataset == "shapes3d-oracle" else None
    settings = flow_settings("quick")
    amounts = torch.tensor(edit_amounts(settings.traversal_span, settings.traversal_steps))
    distance = perceptual_distance(LOSS)
    rows = []
    for num_steps in steps:
        config = projection_config("quick", num_steps=num_steps, mse_weight=DEFAULT_MSE[LOSS],
                                   batch_size=batch)
        start = time.process_time()
        projection = project(generator, targets, distance, config, seed=0)
        cpu = time.process_time() - start
        recon = render(generator, projection.ws, projection.noise)
        classes = np.asarray(predicted(predict(recon)))
        row: dict[str, object] = {
            "dataset": dataset, "images": images, "steps": num_steps,
            "mean_psnr": round(float(psnr(recon, targets).mean()), 3),
            "true_factors_fraction": float((classes == truth).all(axis=1).mean()),
            "true_per_factor": dict(zip(names, (float(v) for v in (classes == truth).mean(0)),
                                        strict=True)),
            "photo_true_factors_fraction": float((np.asarray(predicted(predict(targets)))
                                                  == truth).all(axis=1).mean()),
            "projection_cpu_s": round(cpu, 1)}
        if directions is not None:
            k, m = directions.num_directions, len(amounts)
            delta = directions.scale[:, None, None] * directions.vectors
            ws = (projection.ws[:, None, None] + amounts[None, None, :, None, None]
                  * delta[None, :, None])  # [n, k, m, L, D]
            edited = render(generator, ws.reshape(-1, *ws.shape[3:]))
            edited_classes = np.asarray(predicted(predict(edited))).reshape(images, k, m, -1)
            fractions = change_fractions(classes, edited_classes)
            targets_index = [names.index(n) for n in directions.meta["names"]]
            others = any_other_fraction(classes, edited_classes, targets_index)
            row["edits"] = {n: {"changed": float(fractions[j, t]), "any_other": others[j]}
                            for j, (n, t) in enumerate(zip(directions.meta["names"],
                                                           targets_index, strict=True))}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes3d-oracle",
                        choices=["shapes3d-oracle", "shapes3d"])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--steps", default="50,100,200,300",
                        help="comma-separated numbers of projection steps (one run each)")
    parser.add_argument("--batch", type=int, default=8, help="images projected together")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    measure(args.dataset, args.images, [int(s) for s in args.steps.split(",")], args.batch)


if __name__ == "__main__":
    main()
