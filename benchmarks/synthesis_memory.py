"""Peak memory of synthesis on a real-size generator: one 250-image ``synthesize`` call, a pairs
stage in 250-image batches and the discovery metrics' 64-image batches, on DisCo's layout (64
px, 256 channels at every resolution; ``benchmarks/disco_cost.py``'s random-weight generator),
each run as its own process on one thread.

The peak is the process's peak resident set (``ru_maxrss``), the figure a user's machine has to
hold; "at start" is the resident set once the generator is built, before any image is made.
Every stage prints a digest of what it made (images, or the pair file's arrays), so trees run
side by side (``--trees``: git worktrees of two commits, under the same load) show that a
memory change left every bit of the output as it was. The quick profile's pairs stage makes
2,000 pairs; ``--pairs`` (default 250: two 250-image calls) keeps a run to a few minutes.

    PYTHONPATH=. python benchmarks/synthesis_memory.py [--trees /path/before,.] [--pairs 250]
        [--stages synthesize,pairs,discovery]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from core.cpu_isa import cpu_model

BATCH = 250  # the quick profile's pair_batch (bench.flows.directions.FLOW_PROFILES)
STAGES = ("synthesize", "pairs", "discovery")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _digest(*arrays: np.ndarray) -> str:
    """The first 16 hex digits of the SHA-256 of the arrays' bytes, in order."""
    sha = hashlib.sha256()
    for array in arrays:
        sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()[:16]


def child(stage: str, pairs: int) -> dict[str, Any]:
    """Run one stage in this process (the tree on ``PYTHONPATH`` supplies the code)."""
    from core.cpu_isa import pin_cpu_isa

    pin_cpu_isa()
    import h5py
    import torch

    from benchmarks.disco_cost import disco_layout_generator
    from models.directions import Directions

    torch.set_num_threads(1)
    generator = disco_layout_generator()
    vectors = torch.randn(5, generator.num_ws, generator.w_dim,
                          generator=torch.Generator().manual_seed(9))
    directions = Directions(vectors / vectors.flatten(1).norm(dim=1)[:, None, None] * 3,
                            torch.ones(5))
    start_mib = _rss_mib()
    cpu = time.process_time()
    if stage == "synthesize":
        z = torch.randn(BATCH, generator.z_dim, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            images = generator.synthesize(generator.mapping_ws(z, 0.5))
        digest = _digest(images.numpy())
    elif stage == "pairs":
        from distill.pairs import make_pairs

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pairs.h5"
            make_pairs(generator, directions, path, num_pairs=pairs, seed=0, batch=BATCH,
                       edit_multiplier=4.0)
            with h5py.File(path) as f:
                digest = _digest(*(np.asarray(f[k]) for k in
                                   ("images_orig", "images_edit", "labels")))
    else:
        from bench.flows.directions import FLOW_PROFILES
        from metrics.discovery import score_matrix
        from models.predictor import PredictorArchitecture, build_predictor

        config = FLOW_PROFILES["quick"]["discovery"]
        arch = PredictorArchitecture(("c", "s", "z", "h", "b", "x", "y"), (6, 6, 2, 3, 3, 40, 40))
        predictor = build_predictor(arch, 0).eval()

        def predict(images: torch.Tensor) -> list[Any]:
            with torch.no_grad():
                return [p.numpy() for p in predictor.predict_proba(images)]

        matrices = score_matrix(generator, directions, predict, replace(config, num_directions=1))
        digest = _digest(matrices["absdiff"], matrices["meandiff"])
    return {"start_mib": start_mib, "cpu_s": time.process_time() - cpu, "digest": digest}


def measure(tree: Path, stage: str, pairs: int) -> dict[str, Any]:
    """Run ``stage`` in a fresh process on ``tree``'s code; add its peak resident MiB."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", stage, "--pairs",
             str(pairs), "--out", out.name], cwd=tree, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{stage} on {tree} failed (exit {os.waitstatus_to_exitcode(status)})")
        result = json.loads(Path(out.name).read_text())
    result["peak_mib"] = usage.ru_maxrss / 1024
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default=".", help="comma-separated source trees")
    parser.add_argument("--pairs", type=int, default=BATCH,
                        help=f"pairs the pairs stage makes, in batches of {BATCH}")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.out.write_text(json.dumps(child(args.child, args.pairs)))
        return 0
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        print(f"--stages: unknown {', '.join(unknown)} (expected some of {', '.join(STAGES)})",
              file=sys.stderr)
        return 2
    from tabulate import tabulate

    trees = [Path(t).resolve() for t in args.trees.split(",")]
    labels = {"synthesize": f"synthesize {BATCH} images",
              "pairs": f"pairs: {args.pairs} pairs, batch {BATCH}",
              "discovery": "discovery metrics: 1 direction x 64 latents, batch 64"}
    rows = []
    for stage in stages:
        digests = set()
        for tree in trees:
            r = measure(tree, stage, args.pairs)
            digests.add(r["digest"])
            rows.append([labels[stage], tree.name, f"{r['start_mib']:.0f}",
                         f"{r['peak_mib']:.0f}", f"{r['cpu_s']:.1f}", r["digest"]])
            print(f"{rows[-1][0]} on {tree.name}: peak {r['peak_mib']:.0f} MiB", flush=True)
        if len(trees) > 1:
            rows[-1].append("same" if len(digests) == 1 else "DIFFERENT")
    print(f"host: {cpu_model()}, 1 thread, load average {os.getloadavg()[0]:.1f}")
    headers = ["stage", "tree", "MiB at start", "peak MiB", "CPU s", "output digest"]
    if len(trees) > 1:
        headers.append("outputs across trees")
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
