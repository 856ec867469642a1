"""What the README's first command costs without its install: ``python -m bench run`` (the
default grid, default layout) in each source tree of ``--trees``, one after the other, each into
a fresh temporary results folder.

Per tree: CPU seconds of the whole process tree (user + system, ``os.wait4``: the run and the
worker processes it waited for), wall seconds, the peak of the tree's summed resident memory
(sampled from /proc every half second, so a lower bound: cells side by side each hold their
own), the largest single process, the cells' thread counts, and the CPU seconds the cells
recorded per stage. A ratio against the first tree comes from the same host under the same load;
compare CPU seconds where the machine is shared (docs/performance.md holds the table).

    PYTHONPATH=. python benchmarks/main_job.py [--trees /path/before,.] [-- extra run args]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tabulate import tabulate

from bench.results.store import ResultStore
from benchmarks.busy_machine import run_failed
from core.cpu_isa import cpu_model

STAGE_GROUPS = {"train": "train", "group-vae": "group VAE",
                "representation-metrics": "representation metrics"}


def tree_rss_mib(root: int) -> float:
    """Summed resident memory (MiB) of process ``root`` and its descendants; 0 where /proc
    cannot tell (another OS, or the processes ended while read)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children.setdefault(int(fields.get("PPid", "0").strip() or 0), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 1024


def run_job(tree: Path, extra: list[str], results: Path) -> dict[str, float]:
    """Run ``python -m bench run EXTRA`` in ``tree`` into ``results``; its costs. A failed run
    stops the benchmark with the end of its output."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    log_path = results.parent / f"{results.name}.log"
    peak = [0.0]
    done = threading.Event()
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench", "run", *extra, "--results", str(results),
             "--no-leaderboard"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)

    def sample() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], tree_rss_mib(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise run_failed(log_path, f"bench run in {tree}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "tree_mib": peak[0],
            "process_mib": usage.ru_maxrss / 1024}


def stage_cpu(results: Path) -> tuple[dict[str, str], set[int]]:
    """CPU seconds the cells recorded per stage group (the rest under "other"; "–" for a group
    no cell ran, "?" where results predate stages' CPU seconds), and the cells' thread counts."""
    groups: dict[str, float | None] = {}
    threads: set[int] = set()
    for result in ResultStore(results).results():
        threads.add(int(result.get("torch_threads", 0)))
        for stage in result.get("stages", []):
            group = STAGE_GROUPS.get(stage["name"], "other")
            seconds, before = stage.get("cpu_seconds"), groups.get(group, 0.0)
            groups[group] = None if seconds is None or before is None else before + seconds
    shown = {g: "?" if v is None else f"{v:.0f}" for g, v in groups.items()}
    return {g: shown.get(g, "–") for g in (*STAGE_GROUPS.values(), "other")}, threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default=".", help="comma-separated source trees")
    parser.add_argument("extra", nargs="*", help="arguments for every `bench run` (after --)")
    args = parser.parse_args(argv)
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    rows = []
    first_cpu = None
    with tempfile.TemporaryDirectory() as tmp:
        for i, tree in enumerate(trees):
            results = Path(tmp) / f"results{i}"
            cost = run_job(tree, args.extra, results)
            groups, threads = stage_cpu(results)
            first_cpu = cost["cpu"] if first_cpu is None else first_cpu
            rows.append([tree.name, ",".join(str(t) for t in sorted(threads)),
                         f"{cost['cpu']:.0f}", f"{cost['wall']:.0f}",
                         f"{cost['tree_mib']:.0f}", f"{cost['process_mib']:.0f}",
                         *groups.values(),
                         f"{cost['cpu'] / first_cpu:.2f}x"])
    print(f"host: {cpu_model()}, {len(os.sched_getaffinity(0))} usable core(s), load average "
          f"at the end {os.getloadavg()[0]:.1f}; `bench run {' '.join(args.extra)}`")
    print(tabulate(rows, headers=["tree", "threads a cell", "CPU s", "wall s", "peak MiB (all)",
                                  "peak MiB (one process)",
                                  *(f"{g} CPU s" for g in STAGE_GROUPS.values()), "other CPU s",
                                  f"CPU / {trees[0].name}"],
                   tablefmt="github", disable_numparse=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
