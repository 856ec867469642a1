"""What DisCo's 3DShapes / MPI3D / Cars3D generators cost on the CPU: load, one image batch, and
the generator stages of one quick directions cell, in CPU seconds (docs/disco.md).

The generator has the layout of DisCo's files (64 px, style_dim 512, 3 mapping layers, 256
channels at every resolution: ``Generator(size=64, style_dim=512, n_mlp=3,
channel_multiplier=4, small=True)``); pass such a file (a DisCo ``0.pt``, or one written by
DisCo's code as tests/golden/make_golden_disco.py does) to time its loading too, else random
weights of that layout are used (the same arithmetic). The stages are the directions flow's at
the quick profile (``bench.flows.directions.FLOW_PROFILES``) on SeFa's directions: edit-scale
calibration of 10 directions, the discovery metrics with a predictor of MPI3D's seven factors
(random weights: the cost, not the scores) and 2,000 pairs; SeFa's and GANSpace's own
discovery make no images (a few CPU seconds; docs/disco.md).
The group VAE and the representation metrics do not run the generator (pairs file, ground
truth) and are not timed here. ``--stages count`` runs them on a 16-channel generator of the
same layout (the images each stage makes do not depend on the width) and prices its images at
the measured CPU seconds per image of the DisCo-size one; ``--stages full`` runs them on the
DisCo-size generator itself. Each stage's last column is its rate of images against the
generator's own rate in one synthesize call of ``--batch`` images (``images x CPU s per image /
the stage's CPU s``: 100 % means nothing but synthesis; the aim is at least 80 %), and the run
ends with the process's peak resident memory (the aim for a cell: under 2 GB).

CPU seconds (``time.process_time``, all threads of this process) measure the work whatever
else the machine runs; the wall seconds and the load average are printed beside them.

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/disco_cost.py [--checkpoint 0.pt]
        [--threads 2] [--batch 64] [--stages count|full]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import cap_like_bench  # noqa: E402

DISCO_CHANNELS = tuple((res, 256) for res in (4, 8, 16, 32, 64))


def disco_layout_generator() -> Any:
    """Random weights in the layout of DisCo's files (as the rosinality importer builds it)."""
    from models.stylegan2 import StyleGAN2Generator
    from models.stylegan2.config import StyleGAN2Config

    torch.manual_seed(0)
    config = StyleGAN2Config(resolution=64, z_dim=512, w_dim=512, mapping_layers=3,
                             img_channels=3, channels=DISCO_CHANNELS, use_noise=True,
                             conv_clamp=None, mapping_lr_mul=0.01)
    return StyleGAN2Generator(config).eval().requires_grad_(False)


def timed(label: str, fn: Callable[[], Any], rows: list[tuple[str, float, float]]) -> Any:
    """Run ``fn`` once; record (label, CPU s, wall s)."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    rows.append((label, time.process_time() - cpu, time.perf_counter() - wall))
    print(f"{label:<48} {rows[-1][1]:8.1f} CPU s {rows[-1][2]:8.1f} wall s  "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    return out


def forward_rows(generator: Any, batch: int, repeats: int,
                 rows: list[tuple[str, float, float]]) -> None:
    z = torch.randn(batch, generator.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ws = generator.mapping_ws(z, 0.5)
        generator.synthesize(ws[:4], "const")  # warm-up
        for i in range(repeats):
            timed(f"synthesize {batch} images (W+, noise const) #{i + 1}",
                  lambda: generator.synthesize(ws, "const"), rows)


class Counted:
    """``generator.synthesize`` wrapped to count the images it makes and its CPU seconds."""

    def __init__(self, generator: Any) -> None:
        self.images, self.cpu = 0, 0.0
        inner = generator.synthesize

        def synthesize(ws: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            start = time.process_time()
            out = inner(ws, *args, **kwargs)
            self.cpu += time.process_time() - start
            self.images += int(ws.shape[0])
            return out

        generator.synthesize = synthesize


def stage_rows(generator: Any, per_image: float, rows: list[tuple[str, float, float]],
               full: bool) -> None:
    """The quick cell's generator stages on ``generator``: images made, CPU seconds, the CPU
    seconds they would take on a DisCo-size generator (``per_image`` CPU s per image in
    synthesize, the rest as measured; ``full``: ``generator`` is that size, so as measured) and
    the stage's image rate as a share of the generator's own."""
    from bench.flows.directions import FLOW_PROFILES
    from distill.pairs import make_pairs
    from methods.base import METHODS, method_spec
    from metrics.discovery import calibrate_scales, score_matrix
    from models.bundle import Bundle
    from models.predictor import PredictorArchitecture, build_predictor
    quick = FLOW_PROFILES["quick"]
    bundle = Bundle("disco-cost", load_generator=lambda: generator)
    found = METHODS.get("sefa").run(bundle, method_spec("sefa").config("quick"), 0)
    directions = found.subset(range(quick["discovery"].num_directions))
    arch = PredictorArchitecture(("c", "s", "z", "h", "b", "x", "y"), (6, 6, 2, 3, 3, 40, 40))
    predictor = build_predictor(arch, 0).eval()

    def predict(images: torch.Tensor) -> list[Any]:
        with torch.no_grad():
            return [p.numpy() for p in predictor.predict_proba(images)]

    counted = Counted(generator)
    state: dict[str, Any] = {}
    tmp = tempfile.TemporaryDirectory()
    stages = {
        "calibrate: 10 directions": lambda: state.setdefault(
            "calibrated", calibrate_scales(generator, directions, quick["calibration"])),
        "discovery-metrics: 10 directions x 64 latents": lambda: score_matrix(
            generator, state["calibrated"], predict, quick["discovery"]),
        f"pairs: {quick['num_pairs']} pairs": lambda: make_pairs(
            generator, state["calibrated"], Path(tmp.name) / "pairs.h5",
            num_pairs=quick["num_pairs"], seed=0, batch=quick["pair_batch"],
            edit_multiplier=quick["pair_edit_multiplier"]),
    }
    print(f"{'stage (quick)':<48} {'images':>7} {'CPU s':>8} {'in G':>8} {'DisCo-size G':>14} "
          f"{'of G rate':>10}")
    total = 0.0
    with torch.no_grad():
        for label, fn in stages.items():
            images, in_g = counted.images, counted.cpu
            cpu = time.process_time()
            fn()
            cpu = time.process_time() - cpu
            images, in_g = counted.images - images, counted.cpu - in_g
            estimate = cpu if full else images * per_image + (cpu - in_g)
            total += estimate
            rows.append((label, cpu, estimate))
            print(f"{label:<48} {images:>7} {cpu:>8.1f} {in_g:>8.1f} {estimate:>12.0f} s "
                  f"{100 * images * per_image / estimate:>9.0f}%", flush=True)
    tmp.cleanup()
    print(f"{'total':<48} {'':>7} {'':>8} {'':>8} {total:>12.0f} s")


def tiny_layout_generator() -> Any:
    """DisCo's layout with 16 channels: the same stages and image counts, cheap to run."""
    from models.stylegan2 import StyleGAN2Generator
    from models.stylegan2.config import StyleGAN2Config

    torch.manual_seed(0)
    config = StyleGAN2Config(resolution=64, z_dim=512, w_dim=512, mapping_layers=3,
                             img_channels=3, channels=tuple((r, 16) for r, _ in DISCO_CHANNELS),
                             use_noise=True, conv_clamp=None, mapping_lr_mul=0.01)
    return StyleGAN2Generator(config).eval().requires_grad_(False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="a DisCo-layout .pt to time loading")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages", choices=["count", "full"],
                        help="also the generator stages of one quick directions cell: count "
                        "(run on a 16-channel generator of the same layout, images counted, "
                        "the DisCo-size cost from the measured CPU s per image) or full (run "
                        "on the DisCo-size generator itself)")
    args = parser.parse_args(argv)
    caps = cap_like_bench()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {caps}, {os.cpu_count()} "
          f"CPUs, load average {os.getloadavg()}")
    rows: list[tuple[str, float, float]] = []
    if args.checkpoint is not None:
        from models.stylegan2.loader import describe_generator, load_any_generator

        generator = timed(f"load {args.checkpoint.name} (w_avg from 10,000 z)",
                          lambda: load_any_generator(args.checkpoint), rows)
        print(describe_generator(generator, "rosinality"))
    else:
        generator = disco_layout_generator()
    params = sum(p.numel() for p in generator.parameters())
    print(f"{params:,} parameters ({4 * params / 2**20:.1f} MiB float32)")
    forward_rows(generator, args.batch, args.repeats, rows)
    per_image = min(cpu for label, cpu, _ in rows if label.startswith("synthesize")) / args.batch
    print(f"{per_image:.3f} CPU s per image (best batch)")
    if args.stages:
        full = args.stages == "full"
        stage_rows(generator if full else tiny_layout_generator(), per_image, rows, full)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak:,.0f} MiB; load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
