"""Throughput of the ground-truth data: geometry-map build, 3DShapes composition (batched vs a
plain per-image reference), reads from an h5 file, dSprites rasterising.

Usage: ``python benchmarks/datasets_throughput.py [--full]`` (``--full`` composes all 480,000
images instead of extrapolating from 48,000).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _timed(fn: Callable[[], object], repeat: int = 1) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="compose all 480,000 images")
    args = parser.parse_args()

    from datasets import render3d
    from datasets.dsprites_synth import DSpritesSynth
    from datasets.prepare import write_shapes3d_h5
    from datasets.shapes3d_real import Shapes3D
    from datasets.shapes3d_synth import HUE_VALUES, Shapes3DSynth

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        synth = Shapes3DSynth(cache_dir=tmp)
        maps = synth.coefficient_maps()
        print(f"build 480 geometry maps: {time.perf_counter() - start:.1f} s "
              f"({maps.nbytes / 1e6:.0f} MB)")

        rows = 480000 if args.full else 48000
        factors = synth.index_to_factors(np.arange(rows))
        start = time.perf_counter()
        for lo in range(0, rows, 4800):
            synth.observations(factors[lo:lo + 4800])
        batched = time.perf_counter() - start
        rgb = render3d.hue_to_rgb(HUE_VALUES)

        def per_image(f: np.ndarray) -> np.ndarray:  # the plain reference: one image at a time
            m = maps[f[3], f[4], f[5]].astype(np.float64)
            img = (m[..., 0:1] * rgb[f[0]] + m[..., 1:2] * rgb[f[1]] + m[..., 2:3] * rgb[f[2]]
                   + m[..., 3:6])
            return np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)

        sample = factors[:: max(1, rows // 2000)]
        start = time.perf_counter()
        for f in sample:
            per_image(f)
        reference = (time.perf_counter() - start) / len(sample) * rows
        print(f"compose {rows} images: {batched:.1f} s batched; per-image reference "
              f"{reference:.1f} s (extrapolated); ratio {reference / batched:.1f}x; "
              f"480k estimate {batched * 480000 / rows:.0f} s")
        rng = np.random.default_rng(0)
        batch = synth.sample_factors(64, rng)
        t_obs = _timed(lambda: synth.observations(batch), repeat=20)
        print(f"shapes3d-synth observations(64): {t_obs * 1e3:.2f} ms")

        path = Path(tmp) / "3dshapes.h5"
        small = (2, 10, 10, 8, 4, 15)
        start = time.perf_counter()
        write_shapes3d_h5(synth, path, factor_sizes=small)
        write = time.perf_counter() - start
        print(f"write {int(np.prod(small))} images to h5: {write:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB); 480k estimate {write * 5:.0f} s")
        real = Shapes3D(path, factor_sizes=small)
        batch = real.sample_factors(64, rng)
        t_read = _timed(lambda: real.observations(batch), repeat=20)
        print(f"shapes3d (h5) observations(64): {t_read * 1e3:.2f} ms; "
              f"{t_read / t_obs:.1f}x the synthetic composition")

    sprites = DSpritesSynth()
    batch = sprites.sample_factors(4096, rng)
    t_sprites = _timed(lambda: sprites.observations(batch), repeat=3)
    print(f"dsprites-synth observations(4096): {t_sprites:.2f} s; 737,280 estimate "
          f"{t_sprites * 180:.0f} s")


if __name__ == "__main__":
    main()
