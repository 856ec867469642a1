"""How close a generator's images are to the ground-truth renderer's, seen by the predictor.

On ``n`` generated images (z ~ N(0, I) from a seeded ``torch.Generator``) and ``n`` rendered
images (uniform factor indices from a seeded ``np.random.Generator``), per factor:

* ``mean_max_prob``: the predictor's mean top-class probability on generated images (how clearly
  each image shows *some* value of the factor; ``mean_max_prob_rendered`` is the reference);
* ``tv_distance``: total-variation distance between the histograms of predicted classes on
  generated vs rendered images (0: the generator covers the factor's values like the data).

Plus ``frechet_distance`` between Gaussian fits of the predictor's penultimate features (an FID
analogue in a space that knows the factors). ``floor`` holds the same figures for an untrained
generator of the same architecture (random initialisation), the value a trained one must beat;
``reference`` holds them for a second, independent set of ``n`` rendered images, the best value
reachable at this ``n``: two samples of one distribution still give TV about sqrt(K / (π n))
for K classes (≈ 0.02 for 15 classes at n = 10,000) and a Fréchet distance that shrinks like 1/n.

A generator whose images are smaller than the predictor's input (a 32-px model under the 64-px
predictor) is compared at its own resolution: its images are upsampled (nearest) to the
predictor's size, and the rendered images are first area-downsampled to the generator's size and
then upsampled the same way, so that both sides lose the same detail (``compared_at_resolution``
in the figures).

Caveat: the shipped predictor is trained on renders only and is over-confident on images unlike
them (mean max-probability ≈ 0.97 on an untrained generator's colour blobs), so
``mean_max_prob`` is a weak signal; ``tv_distance`` and ``frechet_distance`` separate trained
from untrained generators clearly.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.hashing import file_sha256
from datasets import load_ground_truth
from datasets.base import GroundTruthData
from models.generator import Generator, nearest_upsample
from models.oracle import load_oracle_generator
from models.predictor import (
    SHAPES3D_PREDICTOR,
    AttributePredictor,
    load_predictor,
    uint8_to_input,
    write_json_atomic,
)
from models.stylegan2.loader import load_any_generator
from models.stylegan2.native import checkpoint_paths

ORACLE_NAME = "shapes3d-oracle"


# ---------------------------------------------------------------------- figures


def predicted_outputs(
    predictor: AttributePredictor, batches: Iterator[torch.Tensor]
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(class probabilities per factor, penultimate features) over image batches (NCHW)."""
    probs: list[list[torch.Tensor]] = [[] for _ in predictor.factor_sizes]
    feats: list[torch.Tensor] = []
    with torch.no_grad():
        for images in batches:
            hidden = predictor.features(images)
            for k, head in enumerate(predictor.heads):
                probs[k].append(torch.softmax(head(hidden), dim=1).double())
            feats.append(hidden.double())
    return [torch.cat(p) for p in probs], torch.cat(feats)


def class_histogram(probs: torch.Tensor) -> np.ndarray:
    """Fraction of images whose top class is c, for every class c."""
    counts = torch.bincount(probs.argmax(dim=1), minlength=probs.shape[1])
    return (counts.double() / max(len(probs), 1)).numpy()


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """TV distance 0.5·Σ|p − q| between two histograms over the same classes."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def frechet_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (rows are samples).

    ||μa − μb||² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½), via symmetric eigen-decompositions (stable;
    0 up to rounding for identical sets).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"feature sets must be (n >= 2, d) with equal d, got {a.shape}, "
                         f"{b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("feature sets contain NaN or inf")
    # torch (float64) rather than numpy LAPACK: it honours torch.set_num_threads
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    mean_a, mean_b = ta.mean(dim=0), tb.mean(dim=0)
    cov_a, cov_b = torch.cov(ta.T), torch.cov(tb.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    sqrt_a = (vecs * vals.clamp(min=0.0).sqrt()) @ vecs.T
    middle = sqrt_a @ cov_b @ sqrt_a
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0.0).sqrt().sum()
    value = float(((mean_a - mean_b) ** 2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)
    return max(value, 0.0)


def compare_outputs(
    names: Sequence[str],
    generated: tuple[list[torch.Tensor], torch.Tensor],
    rendered: tuple[list[torch.Tensor], torch.Tensor],
) -> dict[str, Any]:
    """The figures for one generated set against the rendered reference set."""
    gen_probs, gen_feats = generated
    ren_probs, ren_feats = rendered
    per_factor: dict[str, dict[str, float]] = {}
    for name, pg, pr in zip(names, gen_probs, ren_probs, strict=True):
        per_factor[name] = {
            "mean_max_prob": float(pg.max(dim=1).values.mean()),
            "mean_max_prob_rendered": float(pr.max(dim=1).values.mean()),
            "tv_distance": total_variation(class_histogram(pg), class_histogram(pr)),
        }
    return {
        "factors": per_factor,
        "mean_max_prob": float(np.mean([f["mean_max_prob"] for f in per_factor.values()])),
        "tv_distance": float(np.mean([f["tv_distance"] for f in per_factor.values()])),
        "frechet_distance": frechet_distance(gen_feats.numpy(), ren_feats.numpy()),
    }


# ---------------------------------------------------------------------- image streams


def generated_batches(generator: Generator, n: int, seed: int, batch: int,
                      truncation_psi: float = 1.0, truncation_cutoff: int | None = None
                      ) -> Iterator[torch.Tensor]:
    """NCHW images in [-1, 1] of ``n`` latents z ~ N(0, I) drawn from ``torch.Generator(seed)``;
    with ``truncation_cutoff`` ψ applies to the first that many W+ entries only (StyleGAN2)."""
    if truncation_cutoff is not None and not hasattr(generator, "mapping_ws"):
        raise ValueError(f"truncation_cutoff needs a StyleGAN2 generator with W+ entries, got "
                         f"{type(generator).__name__}")
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for start in range(0, n, batch):
            z = torch.randn(min(batch, n - start), generator.z_dim, generator=gen)
            if truncation_cutoff is None:
                w = generator.mapping(z, truncation_psi=truncation_psi)
            else:
                w = generator.mapping_ws(z, truncation_psi, truncation_cutoff)
            images = generator.synthesize(w)
            if not torch.isfinite(images).all():
                raise ValueError("generator produced NaN or inf pixels")
            yield images.float()


def rendered_batches(ground_truth: GroundTruthData, n: int, seed: int,
                     batch: int) -> Iterator[torch.Tensor]:
    """NCHW images in [-1, 1] of ``n`` uniform factor draws from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch):
        _, images = ground_truth.sample(min(batch, n - start), rng)
        yield uint8_to_input(images)


def at_resolution(images: torch.Tensor, resolution: int, size: int) -> torch.Tensor:
    """NCHW images as a ``resolution``-px source shows them at ``size`` px: area-downsampled to
    ``resolution`` if larger, then nearest-upsampled to ``size``."""
    height = images.shape[-1]
    if height > resolution:
        if height % resolution:
            raise ValueError(f"cannot area-downsample {height}-px images to {resolution} px")
        images = torch.nn.functional.avg_pool2d(images, height // resolution)
    if size % images.shape[-1]:
        raise ValueError(f"cannot upsample {images.shape[-1]}-px images to {size} px")
    return nearest_upsample(images, size // images.shape[-1])


def image_resolution(generator: Generator) -> int:
    """Side length of the generator's own images: ``native_resolution`` for a generator seen
    upsampled (``models.generator.UpsampledGenerator``), else one synthesised image's size."""
    native = getattr(generator, "native_resolution", None)
    if native is not None:
        return int(native)
    with torch.no_grad():
        z = torch.zeros(1, generator.z_dim)
        return int(generator.synthesize(generator.mapping(z)).shape[-1])


def untrained_like(generator: Generator, seed: int = 0) -> Any:
    """A randomly initialised generator of the same architecture (seeded), in eval mode."""
    config = getattr(generator, "config", None)
    if config is None or not isinstance(generator, torch.nn.Module):
        raise ValueError(f"cannot build an untrained copy of {type(generator).__name__}: "
                         "pass floor_generator= or floor=False")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(generator)(copy.deepcopy(config))
    return fresh.eval().requires_grad_(False)


def generator_quality(
    generator: Generator,
    predictor: AttributePredictor,
    ground_truth: GroundTruthData,
    n: int = 10000,
    seed: int = 0,
    batch: int = 250,
    truncation_psi: float = 1.0,
    floor: bool = True,
    floor_generator: Generator | None = None,
    reference: bool = True,
) -> dict[str, Any]:
    """Quality figures of ``generator`` against ``ground_truth`` (see the module docstring).

    The rendered reference uses seed ``seed + 1`` so it is independent of the latents. With
    ``floor`` the same figures for ``floor_generator`` (default: an untrained copy) are added;
    with ``reference`` those of a second rendered set (seed ``seed + 2``).
    """
    if n < 2 or batch < 1:
        raise ValueError(f"n must be >= 2 and batch >= 1, got n={n}, batch={batch}")
    names = tuple(predictor.factor_names)
    if tuple(ground_truth.factor_names) != names:
        raise ValueError(f"predictor factors {names} differ from the ground truth's "
                         f"{tuple(ground_truth.factor_names)}")
    if floor and floor_generator is None:
        floor_generator = untrained_like(generator, seed)
    start = time.perf_counter()
    size = predictor.arch.resolution
    resolution = min(image_resolution(generator), size)

    def seen(batches: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
        return (at_resolution(images, resolution, size) for images in batches)

    rendered = predicted_outputs(
        predictor, seen(rendered_batches(ground_truth, n, seed + 1, batch)))
    generated = predicted_outputs(
        predictor, seen(generated_batches(generator, n, seed, batch, truncation_psi)))
    result: dict[str, Any] = {
        "n": n, "seed": seed, "truncation_psi": truncation_psi,
        **compare_outputs(names, generated, rendered),
    }
    if resolution < size:
        result["compared_at_resolution"] = resolution
    if floor:
        floor_out = predicted_outputs(
            predictor, seen(generated_batches(floor_generator, n, seed, batch, truncation_psi)))
        result["floor"] = compare_outputs(names, floor_out, rendered)
    if reference:
        second = predicted_outputs(
            predictor, seen(rendered_batches(ground_truth, n, seed + 2, batch)))
        result["reference"] = compare_outputs(names, second, rendered)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


# ---------------------------------------------------------------------- targets

# What a generator asset should reach before its leaderboard measures the methods rather than
# the generator's defects (docs/generator.md): per factor a confident predictor and a TV distance
# near the sampling noise, and a Fréchet distance 15x below the first shipped generator's.
QUALITY_TARGETS = {"mean_max_prob_min": 0.9, "tv_distance_max": 0.12,
                   "frechet_distance_max": 2000.0}


def targets_met(figures: dict[str, Any], targets: dict[str, float] = QUALITY_TARGETS
                ) -> dict[str, Any]:
    """Which of ``targets`` the ``generator_quality`` figures meet, per factor and overall."""
    factors = {name: f["mean_max_prob"] >= targets["mean_max_prob_min"]
               and f["tv_distance"] <= targets["tv_distance_max"]
               for name, f in figures["factors"].items()}
    frechet = figures["frechet_distance"] <= targets["frechet_distance_max"]
    return {**targets, "met": {"factors": factors, "frechet_distance": frechet,
                               "all": frechet and all(factors.values())}}


# ---------------------------------------------------------------------- command line


def load_generator_spec(spec: str) -> Any:
    """``shapes3d-oracle`` (or ``shapes3d-oracle:SEED``) or a StyleGAN2 checkpoint path (any
    format ``models.stylegan2.loader.load_any_generator`` reads)."""
    if spec.split(":")[0] == ORACLE_NAME:
        seed = int(spec.split(":")[1]) if ":" in spec else 0
        return load_oracle_generator(seed)
    return load_any_generator(spec)


def generator_json_path(spec: str) -> Path:
    """The asset JSON beside a native generator checkpoint."""
    return checkpoint_paths(spec)[1]


def portable_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies under it (as the recorded
    command's paths are), else as given: a recorded figure names no machine's folders."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="quality", description="Generator-quality figures seen by the attribute predictor.")
    parser.add_argument("--generator", required=True,
                        help="StyleGAN2 checkpoint (native .safetensors + .json, ...) or "
                             f"'{ORACLE_NAME}[:SEED]'")
    parser.add_argument("--predictor", default=str(SHAPES3D_PREDICTOR),
                        help="attribute predictor .safetensors (default: the shipped one)")
    parser.add_argument("--ground-truth", default="shapes3d-synth")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--truncation-psi", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the untrained-generator floor")
    parser.add_argument("--write-json", nargs="?", const="", default=None, metavar="PATH",
                        help="store the figures under 'quality' in this JSON (default when given "
                             "without PATH: the generator's own asset JSON), atomically")
    args = parser.parse_args(argv)
    if args.n < 2 or args.batch < 1 or args.threads < 1:
        parser.error("--n must be >= 2, --batch and --threads >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    is_oracle = args.generator.split(":")[0] == ORACLE_NAME
    target = None
    if args.write_json is not None:
        if args.write_json == "" and is_oracle:
            raise SystemExit("--write-json needs a PATH for the oracle generator")
        target = Path(args.write_json) if args.write_json else generator_json_path(args.generator)
        if not target.is_file():
            raise FileNotFoundError(f"JSON to update not found: {target}")
    generator = load_generator_spec(args.generator)
    predictor = load_predictor(args.predictor)
    ground_truth = load_ground_truth(args.ground_truth, args.data_dir)
    figures = generator_quality(generator, predictor, ground_truth, n=args.n, seed=args.seed,
                                batch=args.batch, truncation_psi=args.truncation_psi,
                                floor=not (args.no_floor or is_oracle))
    figures["predictor"] = portable_path(args.predictor)
    figures["predictor_sha256"] = file_sha256(Path(args.predictor))
    figures["ground_truth"] = args.ground_truth
    print(json.dumps(figures, indent=2, sort_keys=True))
    if target is not None:
        doc = json.loads(target.read_text())
        if not isinstance(doc, dict):
            raise ValueError(f"{target}: expected a JSON object")
        doc["quality"] = {**figures, "targets": targets_met(figures),
                          "command": shlex.join(["python", "-m", "bench", "quality", *argv])}
        write_json_atomic(target, doc)
        print(f"wrote quality figures into {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
