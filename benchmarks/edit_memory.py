"""Peak memory (max RSS) of ``bench edit`` over the number of photos, for this tree and for an
earlier commit (default ``main``), each run in its own process on the same inputs: an oracle
cell on ``shapes3d-oracle`` (its calibrate stage only, as tests/edit_cells.py writes it) and
photos of the procedural 3DShapes world (``bench prepare --write-images``). Projection steps are
few: memory does not grow with them; it grows with photos x directions x edit columns where a
run holds every photo's edited images at once, and not where it streams per batch.

    PYTHONPATH=. python benchmarks/edit_memory.py --photos 8,32 --before main
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
RUN = """
import resource, sys
from bench.cli import main
code = main(sys.argv[1:])
print("maxrss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)
"""


def setup(root: Path, photos: list[int]) -> None:
    """The oracle cell under ``root/results`` and a folder of N photos per N in ``photos``."""
    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO))
    from edit_cells import make_cell, oracle_directions

    from bench.planning.bundles import load_bundle
    from datasets.prepare import write_images

    bundle = load_bundle("shapes3d-oracle")
    make_cell(root / "results", "shapes3d-oracle", oracle_directions(bundle.generator),
              bundle=bundle)
    for count in photos:
        write_images("shapes3d-synth", root / f"photos{count}", count)


def peak_kb(tree: Path, root: Path, count: int, args: argparse.Namespace) -> int:
    """max RSS in KiB of one ``bench edit`` of ``count`` photos with the code of ``tree``."""
    command = [sys.executable, "-c", RUN, "edit", "--method", "oracle", "--dataset",
               "shapes3d-oracle", "--images", f"photos{count}", "--steps", str(args.steps),
               "--columns", str(args.columns), "--threads", "1", "--quiet",
               "--name", f"n{count}"]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1",
           "OMP_NUM_THREADS": "1"}
    out = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("maxrss_kb")][-1]
    return int(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="8,32", help="comma-separated numbers of photos")
    parser.add_argument("--before", default="main", help="git commit to compare with")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--columns", type=int, default=9, help="edit amounts per row")
    args = parser.parse_args()
    counts = [int(c) for c in args.photos.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        before = root / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        setup(root, counts)
        rows = []
        for count in counts:
            old = peak_kb(before, root, count, args)
            new = peak_kb(REPO, root, count, args)
            rows.append([count, f"{old / 1024:.0f}", f"{new / 1024:.0f}", f"{new / old:.2f}"])
    print(f"bench edit, oracle cell (6 directions x {args.columns} amounts), "
          f"{args.steps} projection steps, 1 thread: peak RSS in MiB")
    print(tabulate(rows, headers=["photos", args.before, "this tree", "ratio"]))


if __name__ == "__main__":
    main()
