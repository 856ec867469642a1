"""What idle OpenMP threads that spin cost on a busy machine: a small conv training loop on 2 torch
threads, run with ``OMP_WAIT_POLICY=ACTIVE`` (spinning waiters, the runtime's habit) and
``PASSIVE`` (sleeping waiters, what ``bench`` sets: ``core.thread_wait``), alternately, each in
its own process, beside ``--busy`` processes that keep a core busy (0: as the machine is).
Reports wall and CPU seconds of the fastest of ``--repeat`` runs per policy and checks that both
policies train the same weights to the last bit.

    PYTHONPATH=. python benchmarks/thread_wait.py [--busy 1] [--repeat 3] [--steps 40]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys

from tabulate import tabulate

LOOP = """
import hashlib, sys, time
import torch
torch.set_num_threads(2)
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 4, 2, 1), torch.nn.ReLU(),
                          torch.nn.Conv2d(32, 64, 4, 2, 1), torch.nn.ReLU(), torch.nn.Flatten(),
                          torch.nn.Linear(64 * 16 * 16, 10))
opt = torch.optim.Adam(net.parameters())
x = torch.randn(64, 3, 64, 64)
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(int(sys.argv[1])):
    loss = net(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters()))
print(wall, cpu, digest.hexdigest()[:16])
"""


def spin() -> None:
    while True:
        pass


def run(policy: str, steps: int) -> tuple[float, float, str]:
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "ATEN_CPU_CAPABILITY": "avx2",
           "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
           "MKL_CBWR": "AVX2,STRICT"}
    out = subprocess.run([sys.executable, "-c", LOOP, str(steps)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), out[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args(argv)
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    try:
        runs: dict[str, list[tuple[float, float, str]]] = {"ACTIVE": [], "PASSIVE": []}
        for _ in range(args.repeat):
            for policy in runs:
                runs[policy].append(run(policy, args.steps))
    finally:
        for process in spinners:
            process.terminate()
    best = {policy: min(found) for policy, found in runs.items()}
    rows = [[policy, f"{wall:.2f}", f"{cpu:.2f}", digest]
            for policy, (wall, cpu, digest) in best.items()]
    print(f"{args.busy} busy process(es), load average {os.getloadavg()[0]:.1f}, "
          f"{args.steps} steps, fastest of {args.repeat}")
    print(tabulate(rows, headers=["OMP_WAIT_POLICY", "wall s", "CPU s", "weights sha256"],
                   tablefmt="github", disable_numparse=True))
    active, passive = best["ACTIVE"], best["PASSIVE"]
    print(f"ACTIVE / PASSIVE: wall {active[0] / passive[0]:.2f}x, "
          f"CPU {active[1] / passive[1]:.2f}x")
    digests = {d for found in runs.values() for _, _, d in found}
    print("same weights under both policies" if len(digests) == 1 else
          f"WEIGHTS DIFFER: {sorted(digests)}")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
