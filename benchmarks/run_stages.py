"""Where the time of a finished run went: seconds per stage of every cell, and peak memory.

Reads the result files of a results folder (what ``python -m bench run`` wrote) and prints one
row per cell (wall seconds of each stage, the cell's wall time and peak resident memory) and a
total row, as a Markdown table (the one in docs/performance.md).

    PYTHONPATH=. python benchmarks/run_stages.py [results]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.results.store import ResultStore

STAGE_ORDER = ("train", "discover", "calibrate", "discovery-metrics", "pairs", "group-vae",
               "representation-metrics", "figures")


def stage_table(results: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows (one per cell, then the total) of stage wall seconds."""
    seen = {s["name"] for r in results for s in r.get("stages", [])}
    names = [n for n in STAGE_ORDER if n in seen] + sorted(seen - set(STAGE_ORDER))
    rows: list[list[Any]] = []
    totals = [0.0] * (len(names) + 1)
    for result in sorted(results, key=lambda r: (r["method"], r["dataset"], r["seed"])):
        seconds = {s["name"]: float(s["seconds"]) for s in result.get("stages", [])}
        cells = [seconds.get(n) for n in names] + [float(result.get("wall_seconds", 0.0))]
        for i, value in enumerate(cells):
            totals[i] += value or 0.0
        rows.append([f"{result['method']} / {result['dataset']} / seed {result['seed']}",
                     *("–" if v is None else f"{v:.0f}" for v in cells),
                     f"{result.get('peak_rss_mib', float('nan')):.0f}"])
    peak = max((float(r.get("peak_rss_mib", 0.0)) for r in results), default=0.0)
    rows.append(["total", *(f"{v:.0f}" for v in totals), f"{peak:.0f} (max)"])
    return ["cell", *(f"{n} s" for n in names), "cell wall s", "peak RSS MiB"], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results")
    args = parser.parse_args()
    results = ResultStore(Path(args.results)).results()
    if not results:
        raise SystemExit(f"no result files under {args.results}/runs")
    headers, rows = stage_table(results)
    print(tabulate(rows, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main()
