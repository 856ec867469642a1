"""Where a shapes3d generator's factor marginals go wrong, and what its discriminator sees of it.

From a training state (full or compact, with its EMA generator): the predicted class histogram
of every factor for the EMA generator and for the raw (trained, not averaged) generator, against
the rendered images' histogram, and the discriminator's mean logit per class on rendered images
(true class) and on generated ones (predicted class). A discriminator that drives the generator
towards the data's marginal would score the classes the generator under-produces higher, by up
to log(p_data / p_generated); a flat row means it hardly sees the marginal. The shipped
generator's compact state is in the history (docs/generator.md, "Continue training").

    PYTHONPATH=. python benchmarks/studies/generator_marginals.py \\
        --state models/weights/training/shapes3d_generator_state.pt \\
        --generator models/weights/shapes3d_generator.safetensors [--n 2000] [--factors scale shape]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np
import torch
from tabulate import tabulate

from datasets import load_ground_truth
from models.predictor import RESOLUTION, SHAPES3D_PREDICTOR, load_predictor
from models.stylegan2 import (
    StyleGAN2Config,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    load_generator,
)
from training.quality import (
    at_resolution,
    class_histogram,
    generated_batches,
    predicted_outputs,
    total_variation,
)
from training.train_gan import images_to_tensor, load_training_state


def rendered(n: int, batch: int, resolution: int) -> tuple[np.ndarray, list[torch.Tensor]]:
    """Factor indices and images (as training feeds them to D) of ``n`` uniform draws."""
    ground_truth = load_ground_truth("shapes3d-synth")
    rng = np.random.default_rng(1)
    factors, images = [], []
    for start in range(0, n, batch):
        f, x = ground_truth.sample(min(batch, n - start), rng)
        factors.append(np.asarray(f))
        images.append(images_to_tensor(x, resolution, 3))
    return np.concatenate(factors), images


def seen_by_predictor(batches: list[torch.Tensor], resolution: int) -> Iterator[torch.Tensor]:
    return (at_resolution(x, resolution, RESOLUTION) for x in batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, help="training state (full or compact)")
    parser.add_argument("--generator", required=True, help="its EMA generator (.safetensors)")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200, help="a multiple of the mbstd group")
    parser.add_argument("--factors", nargs="+", default=["scale", "shape", "orientation"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    state = load_training_state(args.state)
    config = StyleGAN2Config.from_dict(state["config"])
    raw = StyleGAN2Generator(config).eval().requires_grad_(False)
    raw.load_state_dict({k: v.float() for k, v in state["G"].items()})
    disc = StyleGAN2Discriminator(config).eval().requires_grad_(False)
    disc.load_state_dict({k: v.float() for k, v in state["D"].items()})
    ema = load_generator(args.generator)
    predictor = load_predictor(SHAPES3D_PREDICTOR)
    names = list(predictor.factor_names)
    unknown = sorted(set(args.factors) - set(names))
    if unknown:
        raise SystemExit(f"--factors: unknown {unknown}; the predictor has {names}")
    res = config.resolution

    real_factors, real_images = rendered(args.n, args.batch, res)
    real_probs, _ = predicted_outputs(predictor, seen_by_predictor(real_images, res))
    with torch.no_grad():
        real_logits = torch.cat([disc(x).flatten() for x in real_images]).numpy()
    views = {}
    for label, generator in (("EMA", ema), ("raw", raw)):
        images = list(generated_batches(generator, args.n, 0, args.batch))
        probs, _ = predicted_outputs(predictor, seen_by_predictor(images, res))
        with torch.no_grad():
            logits = torch.cat([disc(x).flatten() for x in images]).numpy()
        views[label] = (probs, logits)

    print(f"{config.resolution}-px generator, kimg {state.get('cur_nimg', 0) / 1000:g}, "
          f"n = {args.n}; mean D logit: rendered {real_logits.mean():.2f}, "
          f"EMA {views['EMA'][1].mean():.2f}, raw {views['raw'][1].mean():.2f}")
    for factor in args.factors:
        i = names.index(factor)
        classes = range(real_probs[i].shape[1])
        rows = [["rendered %", *(100 * class_histogram(real_probs[i])), ""]]
        for label, (probs, _) in views.items():
            hist = class_histogram(probs[i])
            tv = total_variation(hist, class_histogram(real_probs[i]))
            rows.append([f"{label} %", *(100 * hist), f"{tv:.3f}"])
        truth = real_factors[:, i]
        rows.append(["D logit, rendered", *(real_logits[truth == c].mean() if (truth == c).any()
                                             else float("nan") for c in classes), ""])
        predicted = views["EMA"][0][i].argmax(dim=1).numpy()
        fake_logits = views["EMA"][1]
        rows.append(["D logit, EMA", *(fake_logits[predicted == c].mean()
                                       if (predicted == c).any() else float("nan")
                                       for c in classes), ""])
        print(f"\n{factor}")
        print(tabulate(rows, headers=["", *map(str, classes), "TV"], floatfmt=".2f"))


if __name__ == "__main__":
    main()
