"""StyleGAN2 generator speed: checkpoint load time and batch synthesis throughput on CPU.

Compares the default non-fused modulated conv (shared conv, activations scaled by styles) with
the fused reference (per-sample weights, one grouped conv), measured in the same run.

    python benchmarks/bench_generator.py [CHECKPOINT] [--batch 64] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.planning.bundles import SHAPES3D_GENERATOR  # noqa: E402
from benchmarks.timing import best_of  # noqa: E402
from models.stylegan2 import StyleGAN2Generator, get_preset, load_generator, save_generator  # noqa: E402

DEFAULT_ASSET = SHAPES3D_GENERATOR


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", nargs="?", default=None,
                   help=f"native checkpoint (default {DEFAULT_ASSET.name} if present, "
                        "else a random tiny64)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.checkpoint) if args.checkpoint else DEFAULT_ASSET
        source = str(path)
        if args.checkpoint is None and not path.is_file():
            torch.manual_seed(0)
            path = Path(tmp) / "random_tiny64"
            save_generator(StyleGAN2Generator(get_preset("tiny64")), path)
            source = "random tiny64 (no shipped asset found)"
        t0 = time.perf_counter()
        G = load_generator(path)
        load_s = time.perf_counter() - t0

    z = torch.randn(args.batch, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ws = G.mapping_ws(z)
        same = (G.synthesize(ws) - G.synthesize(ws, fused=True)).abs().max().item()
        t_plain = best_of(lambda: G.synthesize(ws), args.repeats)
        t_fused = best_of(lambda: G.synthesize(ws, fused=True), args.repeats)
        t_map = best_of(lambda: G.mapping(z), args.repeats)

    n_params = sum(p.numel() for p in G.parameters())
    print(f"generator      : {source}")
    print(f"config         : {G.resolution}px, z={G.z_dim}, w={G.w_dim}, num_ws={G.num_ws}, "
          f"{n_params / 1e6:.2f} M params, threads={args.threads}, batch={args.batch}")
    print(f"load           : {load_s * 1000:.1f} ms")
    print(f"mapping        : {args.batch / t_map:.0f} img/s")
    print(f"synthesis      : {args.batch / t_plain:.1f} img/s (non-fused, default)")
    print(f"synthesis ref  : {args.batch / t_fused:.1f} img/s (fused grouped conv)")
    print(f"speed-up       : {t_fused / t_plain:.2f}x   max |diff| = {same:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
