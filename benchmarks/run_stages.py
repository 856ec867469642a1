"""Where the time of a finished run went: seconds per stage of every cell, and peak memory.

Reads the result files of a results folder (what ``python -m bench run`` wrote) and prints one
row per cell (wall seconds of each stage, the cell's wall time and peak resident memory) and a
total row, as a Markdown table (the one in docs/performance.md). ``--cpu`` prints the stages'
CPU seconds instead (recorded since results carry ``cpu_seconds``; "?" for older results): the
figure to compare on a machine that runs other jobs too.

    PYTHONPATH=. python benchmarks/run_stages.py [results] [--cpu]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.results.store import ResultStore

STAGE_ORDER = ("train", "discover", "calibrate", "discovery-metrics", "pairs", "group-vae",
               "representation-metrics", "figures")


def stage_table(results: list[dict[str, Any]], field: str = "seconds"
                ) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows (one per cell, then the total) of stage wall seconds (``field``
    "seconds") or CPU seconds ("cpu_seconds"; the cell column stays wall time)."""
    seen = {s["name"] for r in results for s in r.get("stages", [])}
    names = [n for n in STAGE_ORDER if n in seen] + sorted(seen - set(STAGE_ORDER))
    rows: list[list[Any]] = []
    totals = [0.0] * (len(names) + 1)
    for result in sorted(results, key=lambda r: (r["method"], r["dataset"], r["seed"])):
        seconds = {s["name"]: s.get(field) for s in result.get("stages", [])}
        cells = [seconds.get(n, "–") for n in names] + [float(result.get("wall_seconds", 0.0))]
        for i, value in enumerate(cells):
            totals[i] += value if isinstance(value, (int, float)) else 0.0
        rows.append([f"{result['method']} / {result['dataset']} / seed {result['seed']}",
                     *(f"{v:.0f}" if isinstance(v, (int, float)) else v or "?" for v in cells),
                     f"{result.get('peak_rss_mib', float('nan')):.0f}"])
    peak = max((float(r.get("peak_rss_mib", 0.0)) for r in results), default=0.0)
    rows.append(["total", *(f"{v:.0f}" for v in totals), f"{peak:.0f} (max)"])
    unit = "CPU s" if field == "cpu_seconds" else "s"
    return ["cell", *(f"{n} {unit}" for n in names), "cell wall s", "peak RSS MiB"], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results")
    parser.add_argument("--cpu", action="store_true", help="CPU seconds per stage")
    args = parser.parse_args()
    results = ResultStore(Path(args.results)).results()
    if not results:
        raise SystemExit(f"no result files under {args.results}/runs")
    headers, rows = stage_table(results, "cpu_seconds" if args.cpu else "seconds")
    print(tabulate(rows, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main()
