"""Wall time of every representation metric on 10,000 x 10 codes with 3DShapes-sized factors.

Plain references measured in the same run: the slow loop MIG (np.histogram edges +
sklearn ``mutual_info_score`` per pair) and the loop FactorVAE vote (one ``np.var`` per vote);
DCI ``exact`` against ``fast`` (time and score differences). ``--sampled`` also times
``representation_metrics`` end to end (quick profile, serial) on ``shapes3d-synth`` with a fixed
random linear encoder or an untrained VAE encoder, splitting the CPU time into rendering,
encoding and metric arithmetic. Under a loaded machine compare the CPU column.

    PYTHONPATH=. python benchmarks/bench_metrics.py [--n 10000] [--jobs 2] [--skip-exact]
        [--sampled | --only-sampled] [--encoder linear|vae]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import mutual_info_score
from tabulate import tabulate

from metrics.beta_vae import beta_vae_from_pairs
from metrics.dci import dci
from metrics.factor_vae import factor_vae_from_votes
from metrics.mig import mig
from metrics.modularity import modularity_explicitness
from metrics.sap import sap

SIZES = (10, 10, 10, 8, 4, 15)  # 3DShapes


def make_codes(rng: np.random.Generator, factors: np.ndarray) -> np.ndarray:
    """10 dims: the six factors (scaled to [0, 1], lightly mixed and noisy) plus 4 noise dims."""
    base = factors / (np.array(SIZES) - 1)
    mix = np.eye(6) + 0.15 * rng.normal(size=(6, 6))
    signal = base @ mix + 0.05 * rng.normal(size=base.shape)
    return np.concatenate([signal, rng.normal(size=(len(factors), 4))], axis=1)


def sample_factors(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)


def slow_mig(codes: np.ndarray, factors: np.ndarray) -> float:
    """The plain loop definition (reference layout and tools)."""
    mus, ys = codes.T, factors.T
    binned = np.zeros_like(mus, dtype=np.int64)
    for i in range(mus.shape[0]):
        binned[i] = np.digitize(mus[i], np.histogram(mus[i], 20)[1][:-1])
    m = np.array(
        [
            [mutual_info_score(ys[j], binned[i]) for j in range(ys.shape[0])]
            for i in range(mus.shape[0])
        ]
    )
    h = np.array([mutual_info_score(y, y) for y in ys])
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / h))


def slow_fvm_votes(groups: np.ndarray, variance: np.ndarray) -> np.ndarray:
    return np.array([np.argmin(np.var(g, axis=0, ddof=1) / variance) for g in groups])


CPU: dict[str, float] = {}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Result and wall seconds; the CPU seconds of this process go to ``CPU["last"]`` (worker
    processes are not counted, so parallel rows show wall time only)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    CPU["last"] = time.process_time() - cpu
    return out, time.perf_counter() - start


def cpu(parallel: bool = False) -> str:
    return "-" if parallel else f"{CPU['last']:.2f}"


def vote_groups(rng: np.random.Generator, n: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    fixed = rng.integers(0, len(SIZES), size=n)
    f = sample_factors(rng, n * batch).reshape(n, batch, len(SIZES))
    f[np.arange(n), :, fixed] = f[np.arange(n), 0, fixed][:, None]
    return f, fixed


def _fmt(scores: dict[str, float]) -> str:
    return " ".join(f"{k.removeprefix('dci_')}={v:.4f}" for k, v in scores.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="train points (test: half)")
    parser.add_argument("--jobs", type=int, default=2, help="n_jobs of the parallel DCI rows")
    parser.add_argument("--skip-exact", action="store_true", help="skip exact DCI (minutes)")
    parser.add_argument("--sampled", action="store_true", help="time representation_metrics")
    parser.add_argument(
        "--encoder",
        choices=("linear", "vae"),
        default="linear",
        help="encoder of the --sampled run",
    )
    parser.add_argument("--only-sampled", action="store_true", help="skip the array rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.only_sampled:
        sampled_profile(args.seed, args.encoder)
        return

    rng = np.random.default_rng(args.seed)
    factors_tr, factors_te = sample_factors(rng, args.n), sample_factors(rng, args.n // 2)
    codes_tr = make_codes(np.random.default_rng(args.seed + 1), factors_tr)
    codes_te = make_codes(np.random.default_rng(args.seed + 1), factors_te)
    split = (codes_tr, factors_tr, codes_te, factors_te)
    rows: list[list[Any]] = []

    def row(name: str, seconds: float, ratio: str, values: str, parallel: bool = False) -> None:
        rows.append([name, f"{seconds:.3f}", cpu(parallel), ratio, values])

    ref, t_ref = timed(lambda: slow_mig(codes_tr, factors_tr))
    row("MIG, slow loop reference", t_ref, "1.0", f"mig={ref:.6f}")
    ours, t = timed(lambda: mig(codes_tr, factors_tr)["mig"])
    row("MIG", t, f"{t_ref / t:.1f}x faster", f"mig={ours:.6f} (|diff| {abs(ours - ref):.1e})")

    out, t = timed(lambda: sap(*split, random_state=rng))
    row("SAP (D*K one-feature LinearSVC)", t, "", f"sap={out['sap']:.4f}")
    out, t = timed(lambda: modularity_explicitness(*split, random_state=rng))
    row("Modularity + Explicitness", t, "", _fmt(out))

    exact: dict[str, float] | None = None
    t_exact = 0.0
    if not args.skip_exact:
        exact, t_exact = timed(lambda: dci(*split, mode="exact", random_state=1))
        row("DCI exact (serial)", t_exact, "1.0", _fmt(exact))
    fast, t_fast = timed(lambda: dci(*split, mode="fast", random_state=1))
    if exact is None:
        row("DCI fast (serial)", t_fast, "", _fmt(fast))
    else:
        diffs = " ".join(f"d_{k.removeprefix('dci_')}={fast[k] - exact[k]:+.4f}" for k in exact)
        row("DCI fast (serial)", t_fast, f"{t_exact / t_fast:.1f}x faster", diffs)
    if args.jobs > 1:
        par, t_par = timed(lambda: dci(*split, mode="fast", random_state=1, n_jobs=args.jobs))
        same = "identical to serial" if par == fast else "DIFFERS from serial"
        row(
            f"DCI fast (n_jobs={args.jobs})",
            t_par,
            f"{t_fast / t_par:.1f}x faster",
            same,
            parallel=True,
        )

    # FactorVAE and BetaVAE cores on pre-grouped codes (reference study sizes, batch 64)
    n_votes, batch = args.n, 64
    f_tr, k_tr = vote_groups(rng, n_votes, batch)
    f_ev, k_ev = vote_groups(rng, n_votes // 2, batch)
    g_tr = make_codes(np.random.default_rng(args.seed + 1), f_tr.reshape(-1, 6))
    g_ev = make_codes(np.random.default_rng(args.seed + 1), f_ev.reshape(-1, 6))
    g_tr, g_ev = g_tr.reshape(n_votes, batch, -1), g_ev.reshape(n_votes // 2, batch, -1)
    var_codes = make_codes(np.random.default_rng(args.seed + 1), sample_factors(rng, args.n))
    variance = np.var(var_codes, axis=0, ddof=1)
    _, t_loop = timed(lambda: (slow_fvm_votes(g_tr, variance), slow_fvm_votes(g_ev, variance)))
    row("FactorVAE votes, loop reference", t_loop, "1.0", "")
    out, t = timed(lambda: factor_vae_from_votes(g_tr, k_tr, g_ev, k_ev, var_codes, len(SIZES)))
    row(
        "FactorVAE (array core)",
        t,
        f"{t_loop / t:.1f}x faster",
        f"eval_acc={out['fvm_eval_accuracy']:.4f}",
    )
    z2_tr, z2_ev = np.roll(g_tr, 1, axis=1), np.roll(g_ev, 1, axis=1)  # stand-in pair codes
    out, t = timed(
        lambda: beta_vae_from_pairs(g_tr, z2_tr, k_tr, g_ev, z2_ev, k_ev, random_state=rng)
    )
    row("BetaVAE (array core)", t, "", f"eval_acc={out['betavae_eval_accuracy']:.4f}")

    print(
        f"codes {args.n} x 10 (test {args.n // 2}), factor sizes {SIZES}; "
        f"votes {n_votes}/{n_votes // 2} x batch {batch}"
    )
    print(tabulate(rows, headers=["metric", "wall s", "cpu s", "vs reference", "values"]))

    if args.sampled:
        sampled_profile(args.seed, args.encoder)


def _encoder(kind: str, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A fixed random linear map of the pixels, or an untrained VAE encoder (conv net, torch)."""
    if kind == "vae":
        import torch

        from methods.vae_common import fresh_encoder
        from models.vae import VAEArchitecture

        torch.set_num_threads(1)
        return fresh_encoder(VAEArchitecture(10, 3), seed).represent
    weights = (np.random.default_rng(seed).normal(size=(64 * 64 * 3, 10)) / 64.0).astype(np.float32)

    def linear(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1).astype(np.float32) / 255.0) @ weights

    return linear


def sampled_profile(seed: int, encoder: str) -> None:
    """End-to-end quick profile on shapes3d-synth (serial, so CPU time is measurable)."""
    import datasets.shapes3d  # noqa: F401  (registers shapes3d-synth)
    from datasets import load_ground_truth
    from metrics.sampling import metric_settings, representation_metrics

    data = load_ground_truth("shapes3d-synth")
    represent = _encoder(encoder, seed)
    count = {"images": 0}

    def counted(images: np.ndarray) -> np.ndarray:
        count["images"] += len(images)
        return represent(images)

    scores, total = timed(
        lambda: representation_metrics(data, counted, np.random.default_rng(seed), "quick")
    )
    cpu_total = CPU["last"]
    probe = data.sample_factors(2560, np.random.default_rng(seed))
    _, t_render = timed(
        lambda: [data.observations(probe[i : i + 256]) for i in range(0, 2560, 256)]
    )
    render_cpu = CPU["last"] / 2560 * count["images"]
    _, t_encode = timed(
        lambda: [represent(data.observations(probe[i : i + 256])) for i in range(0, 2560, 256)]
    )
    encode_cpu = CPU["last"] / 2560 * count["images"] - render_cpu
    settings = metric_settings("quick")
    print(
        f"\nquick profile, shapes3d-synth, {encoder} encoder, serial: wall {total:.1f} s, "
        f"CPU {cpu_total:.1f} s; {count['images']} images rendered and encoded "
        f"(estimated CPU: rendering {render_cpu:.1f} s, encoding {encode_cpu:.1f} s, "
        f"metric arithmetic {cpu_total - render_cpu - encode_cpu:.1f} s)"
    )
    print(settings)
    print(tabulate(sorted(scores.items()), headers=["key", "score"], floatfmt=".4f"))


if __name__ == "__main__":
    main()
