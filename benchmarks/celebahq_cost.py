"""What the ``celebahq40`` predictor costs on the CPU: loading 40 real-size classifier pickles and
scoring a batch of images.

One pickle in the real variable layout (256 px, 23.0 M parameters used + the unused
FromRGB_lod1..6, seeded random weights, ``tests/celebahq_fixtures.py``) is written to a scratch
folder and linked under the 40 file names of NVIDIA's release, so ``load_celebahq40`` reads and
converts 40 files of the real size. Then ``--batch`` images of ``--size`` px (box-downsampled to
256) go through ``--nets`` of the classifiers (all 40 by default), one after another in chunks
of ``--chunk`` images, without gradients. Peak resident memory (``ru_maxrss``) is read after
the load and after scoring.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/celebahq_cost.py [--batch 4] [--nets 40]
        [--chunk 8] [--size 256] [--threads 1] [--scratch /tmp/celebahq-cost]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from celebahq_fixtures import (  # noqa: E402
    d_paper_layout,
    random_images,
    random_variables,
    write_classifier_pickle,
)

from models.celebahq import CELEBAHQ40_FILES, CelebAHQ40Predictor, load_celebahq40  # noqa: E402


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--nets", type=int, default=40)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/celebahq-cost"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.scratch.mkdir(parents=True, exist_ok=True)
    source = args.scratch / "real-layout.pkl"
    if not source.is_file():
        write_classifier_pickle(source, random_variables(d_paper_layout(), 0))
    for name in CELEBAHQ40_FILES:
        link = args.scratch / name
        if not link.exists():
            link.symlink_to(source.name)
    start = time.perf_counter()
    full = load_celebahq40([args.scratch / name for name in CELEBAHQ40_FILES], chunk=args.chunk)
    load_s = time.perf_counter() - start
    load_rss = peak_rss_gib()
    predictor = CelebAHQ40Predictor(list(full.classifiers)[:args.nets],
                                    full.factor_names[:args.nets], chunk=args.chunk)
    images = torch.from_numpy(random_images(args.batch, args.size, 1))
    with torch.no_grad():
        predictor.logits(images[:1])  # warm-up
        start = time.perf_counter()
        predictor.predict_proba(images)
        score_s = time.perf_counter() - start
    print(json.dumps({
        "torch": torch.__version__, "threads": args.threads, "batch": args.batch,
        "size": args.size, "nets": args.nets, "chunk": args.chunk,
        "parameters_per_net": sum(p.numel() for p in full.classifiers[0].parameters()),
        "load_40_s": round(load_s, 1), "peak_rss_after_load_gib": round(load_rss, 2),
        "score_s": round(score_s, 2),
        "s_per_image_per_net": round(score_s / args.batch / args.nets, 3),
        "s_per_image_all_40": round(score_s / args.batch / args.nets * 40, 1),
        "peak_rss_after_scoring_gib": round(peak_rss_gib(), 2)}, indent=2))


if __name__ == "__main__":
    main()
