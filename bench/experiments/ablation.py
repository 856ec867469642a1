"""Loss ablations: ``python -m bench ablation l2mask`` (ContraFeat's Table 8 on 3DShapes).

The decoder is the ``shapes3d-oracle`` generator: an exactly disentangled renderer in which factor
``j`` moves along one known W direction ``e_j = σ_j q_j`` (one unit = one standard deviation of
the factor's latent). For every pair of factors a < b (15 pairs), ``samples`` pairs of originals
``w_q, w_x`` from the oracle's mapping (one bank per seed, shared by all pairs) and offsets
``v1, v2 ~ U(-var_scale, var_scale)`` drawn per pair:

- pure: ``q = w_q + v1 e_a``, ``pos = w_x + v1 e_a``, ``neg = w_x + v2 e_b``;
- mixed: the same with ``(e_a + e_b)/√2`` for q and pos and ``(e_a - e_b)/√2`` for neg.

Each image is compared with its original through the sensor's feature maps; per stage the loss is
``-sim(q, pos) + sim(q, neg)`` with ``|cos|`` (the analysis script's similarity) under Pooled,
No-Foc and L2-Mask (``methods.contrast``), summed over stages, averaged over samples and pairs.
Seeds give a 95 % t-interval. Output: ``<results>/ablations/l2mask.{md,csv,tex,json,png}``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tabulate import tabulate
from torch import nn

from bench.grid import parse_seeds
from bench.reports.leaderboard import Summary, summarize
from core.errors import BenchError
from core.io import atomic_write_json, atomic_write_text
from core.plots import pyplot, save_figure
from methods.contrast import SPATIAL_MODES, pair_similarity
from models.generator import Generator
from models.oracle import FACTOR_NAMES, load_oracle_generator
from models.sensors import SENSORS, load_sensor, sensor_identity

MODE_LABELS = {"pooled": "Pooled", "nofoc": "No-Foc", "l2mask": "L2-Mask"}
SETTINGS = ("pure", "mixed")


def factor_edits(generator: Generator, a: int, b: int, setting: str) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    """(edit for q and pos, edit for neg) in W for factors a, b, in factor-std units."""
    e = generator.true_directions() * generator.factor_stds[:, None]  # [6, w_dim]
    if setting == "pure":
        return e[a], e[b]
    if setting == "mixed":
        return (e[a] + e[b]) / math.sqrt(2), (e[a] - e[b]) / math.sqrt(2)
    raise ValueError(f"setting must be pure or mixed, got {setting!r}")


@torch.no_grad()
def _features(generator: Generator, sensor: nn.Module, codes: torch.Tensor, batch: int
              ) -> list[torch.Tensor]:
    chunks = [sensor(generator.synthesize(codes[i:i + batch, None, :]))
              for i in range(0, len(codes), batch)]
    return [torch.cat(stage) for stage in zip(*chunks, strict=True)]


def pair_losses(
    generator: Generator, sensor: nn.Module, a: int, b: int, setting: str, originals: dict[str,
    Any],
    var_scale: float, rng: torch.Generator, batch: int = 250,
) -> dict[str, float]:
    """Mean loss per spatial mode for factor pair (a, b) in ``setting``; ``originals`` holds
    codes ``w_q``, ``w_x`` [n, w_dim] and their sensor features ``f_q``, ``f_x`` (shared by every
    pair of one seed, see ``draw_originals``)."""
    along, against = factor_edits(generator, a, b, setting)
    w_q, w_x = originals["w_q"], originals["w_x"]
    n = len(w_q)
    v1 = (torch.rand(n, 1, generator=rng) * 2 - 1) * var_scale
    v2 = (torch.rand(n, 1, generator=rng) * 2 - 1) * var_scale
    feats = _features(generator, sensor, torch.cat([w_q + v1 * along, w_x + v1 * along,
                                                    w_x + v2 * against]), batch)
    out = {}
    for mode in SPATIAL_MODES:
        total = torch.zeros(n)
        for f, f_q, f_x in zip(feats, originals["f_q"], originals["f_x"], strict=True):
            q, pos, neg = f.split(n)
            d_q, d_pos, d_neg = q - f_q, pos - f_x, neg - f_x
            total -= pair_similarity(d_q, d_pos, mode, power=1)
            total += pair_similarity(d_q, d_neg, mode, power=1)
        out[mode] = float(total.mean())
    return out


def draw_originals(generator: Generator, sensor: nn.Module, samples: int, rng: torch.Generator,
                   batch: int = 250) -> dict[str, Any]:
    """``samples`` pairs of originals from the oracle's mapping and their sensor features."""
    z = torch.randn(2 * samples, generator.z_dim, generator=rng)
    with torch.no_grad():
        w = generator.mapping(z)
    feats = _features(generator, sensor, w, batch)
    return {"w_q": w[:samples], "w_x": w[samples:],
            "f_q": [f[:samples] for f in feats], "f_x": [f[samples:] for f in feats]}


def run_l2mask_ablation(
    seeds: Sequence[int], samples: int, var_scale: float, sensor_name: str,
    sensor_weights: str | None = None, progress: bool = False,
) -> dict[str, Any]:
    """Per seed, setting and mode the loss averaged over all factor pairs (a < b)."""
    generator = load_oracle_generator(seed=0)
    sensor = load_sensor(sensor_name, sensor_weights)
    pairs = list(itertools.combinations(range(len(FACTOR_NAMES)), 2))
    per_seed: dict[str, dict[str, list[float]]] = {
        s: {m: [] for m in SPATIAL_MODES} for s in SETTINGS}
    per_pair: list[dict[str, Any]] = []
    start = time.perf_counter()
    for seed in seeds:
        rng = torch.Generator().manual_seed(int(seed))
        originals = draw_originals(generator, sensor, samples, rng)
        for setting in SETTINGS:
            means: dict[str, list[float]] = {m: [] for m in SPATIAL_MODES}
            for a, b in pairs:
                losses = pair_losses(generator, sensor, a, b, setting, originals, var_scale,
                                     rng)
                per_pair.append({"seed": int(seed), "setting": setting,
                                 "a": FACTOR_NAMES[a], "b": FACTOR_NAMES[b], **losses})
                for m in SPATIAL_MODES:
                    means[m].append(losses[m])
            for m in SPATIAL_MODES:
                per_seed[setting][m].append(float(np.mean(means[m])))
            if progress:
                print(f"seed {seed} {setting}: " + ", ".join(
                    f"{MODE_LABELS[m]} {per_seed[setting][m][-1]:.4f}" for m in SPATIAL_MODES),
                    flush=True)
    return {
        "ablation": "l2mask", "decoder": "shapes3d-oracle (seed 0)",
        "sensor": sensor_identity(sensor_name, sensor_weights), "seeds": [int(s) for s in seeds],
        "samples_per_pair": samples, "var_scale": var_scale, "similarity": "|cos|",
        "pairs": [[FACTOR_NAMES[a], FACTOR_NAMES[b]] for a, b in pairs],
        "per_seed": per_seed, "per_pair": per_pair,
        "seconds": round(time.perf_counter() - start, 1),
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }


def summaries(result: dict[str, Any]) -> dict[str, dict[str, Summary]]:
    return {s: {m: summarize(result["per_seed"][s][m]) for m in SPATIAL_MODES}
            for s in SETTINGS}


def finding(result: dict[str, Any]) -> str:
    """Whether the paper's finding holds: L2-Mask lowest in the pure setting; the three modes
    within each other's intervals in the mixed setting."""
    table = summaries(result)
    pure = table["pure"]
    lowest = min(SPATIAL_MODES, key=lambda m: pure[m].mean)
    parts = [f"pure: lowest loss {MODE_LABELS[lowest]} "
             f"({'as in the paper' if lowest == 'l2mask' else 'the paper has L2-Mask'})"]
    mixed = [table["mixed"][m].mean for m in SPATIAL_MODES]
    spread_mixed = max(mixed) - min(mixed)
    spread_pure = max(pure[m].mean for m in SPATIAL_MODES) - min(pure[m].mean
                                                                  for m in SPATIAL_MODES)
    verdict = ("smaller, the modes are closer as in the paper" if spread_mixed < spread_pure
               else "not smaller than in pure")
    parts.append(f"mixed: spread {spread_mixed:.3f} vs {spread_pure:.3f} in pure ({verdict})")
    return "; ".join(parts)


def _cell(summary: Summary) -> str:
    if summary.n < 2:
        return f"{summary.mean:.4f}"
    return f"{summary.mean:.4f} ± {(summary.ci_high - summary.ci_low) / 2:.4f}"


def render_tables(result: dict[str, Any]) -> dict[str, str]:
    table = summaries(result)
    headers = ["setting", *(MODE_LABELS[m] for m in SPATIAL_MODES)]
    rows = [[s, *(_cell(table[s][m]) for m in SPATIAL_MODES)] for s in SETTINGS]
    md = ["# L2-mask ablation (shapes3d-oracle)", "",
          f"Loss (lower is better), mean over {len(result['pairs'])} factor pairs (a < b) and "
          f"{result['samples_per_pair']} samples each; ± half-width of the 95 % t-interval over "
          f"seeds {result['seeds']}. Sensor: {result['sensor']['name']}; offsets "
          f"U(-{result['var_scale']}, {result['var_scale']}) factor stds; similarity |cos|.", "",
          tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), "",
          f"Finding: {finding(result)}.", ""]
    csv = ["setting,mode,mean,ci_low,ci_high,n"]
    for s in SETTINGS:
        for m in SPATIAL_MODES:
            sm = table[s][m]
            csv.append(f"{s},{MODE_LABELS[m]},{sm.mean:.6f},{sm.ci_low:.6f},{sm.ci_high:.6f},"
                       f"{sm.n}")
    tex = ["\\begin{tabular}{lrrr}", "\\toprule",
           " & ".join(["setting", *(MODE_LABELS[m] for m in SPATIAL_MODES)]) + " \\\\",
           "\\midrule"]
    for s in SETTINGS:
        cells = [_cell(table[s][m]).replace("±", "$\\pm$") for m in SPATIAL_MODES]
        tex.append(" & ".join([s, *cells]) + " \\\\")
    tex += ["\\bottomrule", "\\end{tabular}", ""]
    return {"md": "\n".join(md), "csv": "\n".join(csv) + "\n", "tex": "\n".join(tex)}


def save_bar_plot(result: dict[str, Any], path: Path) -> Path:
    table = summaries(result)
    fig, ax = pyplot().subplots(figsize=(5, 3.2), dpi=120)
    width = 0.25
    for i, m in enumerate(SPATIAL_MODES):
        means = [table[s][m].mean for s in SETTINGS]
        errs = [0.0 if table[s][m].n < 2 else (table[s][m].ci_high - table[s][m].ci_low) / 2
                for s in SETTINGS]
        ax.bar(np.arange(len(SETTINGS)) + (i - 1) * width, means, width, yerr=errs, capsize=3,
               label=MODE_LABELS[m])
    ax.set_xticks(np.arange(len(SETTINGS)), SETTINGS)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("loss (lower is better)")
    ax.set_title("L2-mask ablation on shapes3d-oracle")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_outputs(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"l2mask.{ext}" for ext in ("md", "csv", "tex", "json", "png")}
    for ext, text in render_tables(result).items():
        atomic_write_text(paths[ext], text)
    atomic_write_json(paths["json"], result)
    save_bar_plot(result, paths["png"])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ablation",
                                     description="Loss ablations (results in <results>/ablations).")
    sub = parser.add_subparsers(dest="which", required=True)
    l2 = sub.add_parser("l2mask", help="Pooled / No-Foc / L2-Mask under pure and mixed changes "
                        "(ContraFeat Table 8) on the shapes3d-oracle renderer")
    l2.add_argument("--samples", type=int, default=1000, help="samples per factor pair")
    l2.add_argument("--seeds", default="0-2", help="seeds, e.g. 0-2 or 0,1")
    l2.add_argument("--var-scale", type=float, default=1.0,
                    help="offsets U(-v, v) in factor standard deviations")
    l2.add_argument("--sensor", default="shapes3d-disc", help="a registered sensor")
    l2.add_argument("--sensor-weights", default=None, help="weights file of the sensor")
    l2.add_argument("--results", default="results", help="results folder")
    l2.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        if args.samples < 1:
            raise BenchError(f"--samples must be a positive integer, got {args.samples}")
        if not (math.isfinite(args.var_scale) and args.var_scale > 0):
            raise BenchError(f"--var-scale must be a positive number, got {args.var_scale}")
        if args.sensor not in SENSORS:
            raise BenchError(SENSORS.unknown_message(args.sensor))
        result = run_l2mask_ablation(seeds, args.samples, args.var_scale, args.sensor,
                                     args.sensor_weights, progress=not args.quiet)
    # a bad sensor file is a DataError (a BenchError); a missing one stays a FileNotFoundError
    except (BenchError, FileNotFoundError) as err:
        print(f"error: {err}", flush=True)
        return 2
    paths = write_outputs(result, Path(args.results).absolute() / "ablations")
    print(render_tables(result)["md"])
    print(f"written: {', '.join(str(p) for p in paths.values())}")
    return 0
