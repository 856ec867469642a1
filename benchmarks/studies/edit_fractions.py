"""R rows of a results folder's scored directions at fractions of their calibrated edit.

The discovery metrics score each direction at one edit size (the calibration's pixel-change
target). This shows how each attribute's change grows with the edit: a change that falls in
proportion to the edit is the generator moving that attribute along the direction; one that
vanishes at small edits is a class boundary crossed only by the full edit. On an entangled
generator every direction moves the object's geometry in proportion, which is why its
geometry columns are large in every row (docs/generator.md, "The default leaderboard on it").

    PYTHONPATH=. python benchmarks/studies/edit_fractions.py results --directions 4

Reads every directions cell of the folder (its calibrated directions from the stage cache),
rebuilds its dataset bundle (which must have the identity the cell recorded) and scores the
first ``--directions`` directions on the cell profile's latent bank.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench.flows.directions import attribute_predict, flow_settings
from bench.planning.bundles import load_bundle
from bench.results.store import ResultStore
from bench.running.finished import CALIBRATE_STAGE, cell_directions, stage_key
from metrics.discovery import score_matrix
from models.directions import Directions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="results folder (runs/ and cache/)")
    parser.add_argument("--directions", type=int, default=4, help="first k scored directions")
    parser.add_argument("--fractions", default="1,0.5,0.25,0.125",
                        help="comma-separated multiples of the calibrated edit")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fractions = [float(f) for f in args.fractions.split(",")]
    root = Path(args.results)
    results = [json.loads(p.read_text()) for p in sorted(root.glob("runs/*/result.json"))]
    cells = [r for r in results if stage_key(r, CALIBRATE_STAGE) is not None]
    if not cells:
        raise SystemExit(f"{root}: no directions cells with a calibrate stage under runs/")
    bundles: dict[str, tuple[object, object, list[str]]] = {}  # name -> bundle, predict, names
    for result in cells:
        name = result["dataset"]
        if name not in bundles:
            bundle = load_bundle(name)
            bundles[name] = (bundle, *attribute_predict(bundle.predictor))
        bundle, predict, names = bundles[name]
        if bundle.identity != result["bundle_identity"]:
            raise SystemExit(f"cell {result['id']}: dataset {name!r} is not the one it ran on "
                             "(bundle identity differs; set the same assets and environment)")
        directions = cell_directions(ResultStore(root), result)  # sha256-checked
        k = min(args.directions, directions.num_directions)
        settings = replace(flow_settings(result["profile"]).discovery, num_directions=k)
        rows = {f: score_matrix(bundle.generator,
                                Directions(directions.vectors[:k], directions.scale[:k] * f,
                                           directions.meta), predict, settings)["absdiff"]
                for f in fractions}
        print(f"{result['method']} seed {result['seed']} ({result['id']}), mean absolute "
              f"change per attribute: {', '.join(names)}")
        for j in range(k):
            for f in fractions:
                print(f"  direction {j}  x{f:<6g} " + " ".join(f"{v:.3f}" for v in rows[f][j]))
        print("  mean over directions, per fraction: " + "; ".join(
            f"x{f:g} " + " ".join(f"{v:.3f}" for v in np.mean(rows[f], 0)) for f in fractions))


if __name__ == "__main__":
    main()
