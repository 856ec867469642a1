"""What a user waits for before ``bench`` answers: CPU seconds, wall seconds and peak memory of
the dry run of the default grid and of one-line input errors, each run as its own process.

CPU seconds (user + system, from the process's own rusage) are the figure to compare: they do
not grow when other jobs share the machine, as wall seconds do. ``--trees`` names source trees
(git worktrees of two commits) to time side by side in one run, so a before/after ratio comes
from the same host under the same load.

    PYTHONPATH=. python benchmarks/startup_cost.py [--trees /path/before,.] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from core.cpu_isa import cpu_model

COMMANDS: dict[str, list[str]] = {
    "run --dry-run (default grid)": ["run", "--dry-run"],
    "run --methods nosuch": ["run", "--methods", "nosuch"],
    "run --seeds x": ["run", "--seeds", "x"],
    "run --data-dir missing": ["run", "--data-dir", "no/such/folder"],
    "run --threads 0": ["run", "--threads", "0"],
}


def measure(tree: Path, args: list[str], results: Path) -> tuple[float, float, float, int]:
    """CPU seconds, wall seconds, peak resident MiB and exit code of ``python -m bench ARGS``
    run in ``tree`` (its own code first on the path) with an empty results folder."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bench", *args, "--results", str(results)],
                               cwd=tree, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return (usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024,
            process.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default=".", help="comma-separated source trees")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (the fastest "
                        "CPU time is kept)")
    args = parser.parse_args(argv)
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, command in COMMANDS.items():
            row = [label]
            first_cpu = None
            for tree in trees:
                runs = [measure(tree, command, Path(tmp) / "results")
                        for _ in range(max(1, args.repeat))]
                cpu, wall, rss, code = min(runs)
                row += [f"{cpu:.2f}", f"{wall:.2f}", f"{rss:.0f}", str(code)]
                first_cpu = cpu if first_cpu is None else first_cpu
            if len(trees) > 1:
                row.append(f"{first_cpu / cpu:.1f}x")
            rows.append(row)
    headers = ["command"]
    for tree in trees:
        name = tree.name
        headers += [f"{name} CPU s", f"{name} wall s", f"{name} peak MiB", f"{name} exit"]
    if len(trees) > 1:
        headers.append(f"CPU {trees[0].name} / {trees[-1].name}")
    print(f"host: {cpu_model()}, {len(os.sched_getaffinity(0))} usable core(s), "
          f"load average {os.getloadavg()[0]:.1f}; the fastest of {args.repeat} runs")
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
