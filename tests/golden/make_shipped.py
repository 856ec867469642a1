"""Writes ``shipped_assets.json``: fixed outputs of the shipped shapes3d generator, predictor and
sensor, so that a test notices an asset replaced or changed by accident.

    python tests/golden/make_shipped.py     # after shipping a new asset on purpose
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.io import atomic_write_json  # noqa: E402

OUT = Path(__file__).resolve().parent / "shipped_assets.json"
NUM_IMAGES = 4


@torch.no_grad()
def shipped_outputs() -> dict[str, list]:
    """Generator images (at the predictor's size, as the bundle shows them; area-pooled to
    8x8) for z from seed 0, predictor probabilities and per-stage mean absolute activations
    of the sensor on those images."""
    from bench.planning.bundles import SHAPES3D_GENERATOR
    from models.generator import seen_at
    from models.predictor import RESOLUTION, SHAPES3D_PREDICTOR, load_predictor
    from models.sensors import load_sensor
    from models.stylegan2 import load_generator

    torch.set_num_threads(1)
    generator = seen_at(load_generator(SHAPES3D_GENERATOR), RESOLUTION)  # as the bundle does
    z = torch.randn(NUM_IMAGES, generator.z_dim, generator=torch.Generator().manual_seed(0))
    images = generator.synthesize(generator.mapping(z))
    probs = load_predictor(SHAPES3D_PREDICTOR).predict_proba(images)
    stages = load_sensor("shapes3d-disc")(images)
    return {"images_8x8": F.adaptive_avg_pool2d(images, 8).tolist(),
            "predictor": [p.tolist() for p in probs],
            "sensor_mean_abs": [float(s.abs().mean()) for s in stages]}


if __name__ == "__main__":
    atomic_write_json(OUT, shipped_outputs())
    print(OUT)
