"""What a busy machine costs one cell: the same cheap cell (``beta-vae / shapes3d-synth``, a
short training) alone, beside ``--busy`` processes that each keep a core busy (started here), and
as two ``bench run``s side by side, under each thread layout of ``--threads``. Reports every
run's wall and CPU seconds (``os.wait4``: the process and its threads) and its ratio to the cell
alone (docs/performance.md holds the table, against the aims of at most 1.5x beside one busy
core and 2.5x for each of two runs side by side). Each run writes to a fresh temporary results
folder.

    PYTHONPATH=. python benchmarks/busy_machine.py [--threads 2,1] [--steps 50] [--busy 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from benchmarks.thread_wait import spin
from core.cpu_isa import cpu_model


def start_cell(threads: int, steps: int, results: Path) -> subprocess.Popen[bytes]:
    """One ``bench run`` of the benchmark's cell into ``results``, started, not waited for."""
    command = [sys.executable, "-m", "bench", "run", "--methods", "beta-vae", "--datasets",
               "shapes3d-synth", "--set", f"steps={steps}", "--threads", str(threads),
               "--results", str(results), "-q", "--no-leaderboard"]
    with open(results / "bench.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def run_failed(log: Path, what: str = "bench run") -> SystemExit:
    """The exit that stops a benchmark whose ``bench run`` failed: the end of its output (the
    temporary folder that holds ``log`` goes with the benchmark)."""
    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
    return SystemExit(f"{what} failed; the end of its output:\n" + "\n".join(tail))


def wait_cells(processes: list[subprocess.Popen[bytes]], folders: list[Path], start: float
               ) -> list[tuple[float, float]]:
    """Wall and CPU seconds (user + system) of each process, in order; a failed run stops the
    benchmark with the end of its output (the temporary folder goes with the benchmark)."""
    waiting = {p.pid: (p, folder) for p, folder in zip(processes, folders, strict=True)}
    found: dict[int, tuple[float, float]] = {}
    while waiting:
        pid, status, usage = os.wait4(-1, 0)
        if pid not in waiting:
            continue
        process, folder = waiting.pop(pid)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if process.returncode != 0:
            raise run_failed(folder / "bench.log")
        found[pid] = (time.perf_counter() - start, usage.ru_utime + usage.ru_stime)
    return [found[p.pid] for p in processes]


def measure(threads: int, steps: int, side_by_side: int, tmp: Path) -> list[tuple[float, float]]:
    """Run ``side_by_side`` copies of the cell at once, each into its own results folder."""
    folders = [Path(tempfile.mkdtemp(dir=tmp)) for _ in range(side_by_side)]
    start = time.perf_counter()
    processes = [start_cell(threads, steps, folder) for folder in folders]
    return wait_cells(processes, folders, start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="2,1",
                        help="comma-separated thread counts per cell (default 2,1)")
    parser.add_argument("--steps", type=int, default=50, help="β-VAE training steps")
    parser.add_argument("--busy", type=int, default=1, help="busy processes beside one cell")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (int(t) for t in args.threads.split(",")):
            alone_wall, alone_cpu = measure(threads, args.steps, 1, Path(tmp))[0]
            rows.append([threads, "alone", f"{alone_wall:.1f}", f"{alone_cpu:.1f}", "1.00x"])
            spinners = [multiprocessing.Process(target=spin, daemon=True)
                        for _ in range(args.busy)]
            for process in spinners:
                process.start()
            try:
                wall, cpu = measure(threads, args.steps, 1, Path(tmp))[0]
            finally:
                for process in spinners:
                    process.terminate()
                    process.join()
            rows.append([threads, f"beside {args.busy} busy core(s)", f"{wall:.1f}",
                         f"{cpu:.1f}", f"{wall / alone_wall:.2f}x"])
            for i, (wall, cpu) in enumerate(measure(threads, args.steps, 2, Path(tmp))):
                rows.append([threads, f"two runs side by side ({i + 1})", f"{wall:.1f}",
                             f"{cpu:.1f}", f"{wall / alone_wall:.2f}x"])
    print(f"host: {cpu_model()}, {len(os.sched_getaffinity(0))} usable core(s), load average "
          f"at the end {os.getloadavg()[0]:.1f}; cell: beta-vae / shapes3d-synth / "
          f"steps {args.steps}, OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}")
    print(tabulate(rows, headers=["threads", "situation", "wall s", "CPU s", "wall / alone"],
                   tablefmt="github", disable_numparse=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
