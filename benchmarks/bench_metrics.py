"""Wall time of every representation metric on 10,000 x 10 codes with 3DShapes-sized factors.

Plain references measured in the same run, each written the reference library's way (codes and
factors transposed, Python loops, sklearn tools): the loop MIG and Modularity (np.histogram
edges + ``mutual_info_score`` per pair), the loop SAP (one ``LinearSVC`` fit per (dim, factor)
pair, serial, with the seeds ``sap`` draws), the loop FactorVAE vote (one ``np.var`` per vote)
and the per-vote FactorVAE sampler (one fixed factor and one batch of factor draws per vote);
DCI ``exact`` against ``fast`` and ``hist`` (time and score differences; ``--jobs``: the same
in parallel over factors). Ratio rows show the fastest of
``--repeat`` runs of each side, and the value columns the differences from the reference (SAP:
also the largest difference of one score-matrix accuracy). ``--sampled`` also times
``representation_metrics`` end to end (quick profile, serial) on ``shapes3d-synth`` with a fixed
random linear encoder or an untrained VAE encoder, splitting the CPU time into rendering,
encoding and metric arithmetic per metric and in total (``--compare``: also the previous way,
without code reuse, with the ratio and a check that the scores are identical). Under a loaded
machine compare the CPU column.

    PYTHONPATH=. python benchmarks/bench_metrics.py [--n 10000] [--jobs 2] [--skip-exact]
        [--repeat 3] [--sampled | --only-sampled] [--encoder linear|vae] [--threads 1]
        [--compare]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC
from tabulate import tabulate

from metrics._common import estimator_seeds
from metrics.beta_vae import beta_vae_from_pairs
from metrics.dci import dci
from metrics.factor_vae import _fixed_factor_groups, factor_vae_from_votes
from metrics.mig import mig
from metrics.modularity import modularity, modularity_explicitness
from metrics.sap import SVC_PARAMS, sap_score_matrix

SIZES = (10, 10, 10, 8, 4, 15)  # 3DShapes


def make_codes(rng: np.random.Generator, factors: np.ndarray) -> np.ndarray:
    """10 dims: the six factors (scaled to [0, 1], lightly mixed and noisy) plus 4 noise dims."""
    base = factors / (np.array(SIZES) - 1)
    mix = np.eye(6) + 0.15 * rng.normal(size=(6, 6))
    signal = base @ mix + 0.05 * rng.normal(size=base.shape)
    return np.concatenate([signal, rng.normal(size=(len(factors), 4))], axis=1)


def sample_factors(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)


def slow_discretize(mus: np.ndarray) -> np.ndarray:
    binned = np.zeros_like(mus, dtype=np.int64)
    for i in range(mus.shape[0]):
        binned[i] = np.digitize(mus[i], np.histogram(mus[i], 20)[1][:-1])
    return binned


def slow_mi(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """MI (D, K) of the 20-bin discretised codes, one ``mutual_info_score`` per pair."""
    binned, ys = slow_discretize(codes.T), factors.T
    return np.array(
        [
            [mutual_info_score(ys[j], binned[i]) for j in range(ys.shape[0])]
            for i in range(binned.shape[0])
        ]
    )


def slow_mig(codes: np.ndarray, factors: np.ndarray) -> float:
    """The plain loop definition (reference layout and tools)."""
    m = slow_mi(codes, factors)
    h = np.array([mutual_info_score(y, y) for y in factors.T])
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / h))


def slow_modularity(codes: np.ndarray, factors: np.ndarray) -> float:
    m = slow_mi(codes, factors)
    squared = m**2
    top = np.max(squared, axis=1)
    delta = (np.sum(squared, axis=1) - top) / (top * (squared.shape[1] - 1.0))
    score = 1.0 - delta
    score[top == 0.0] = 0.0
    return float(np.mean(score))


def slow_sap_matrix(
    codes_tr: np.ndarray,
    factors_tr: np.ndarray,
    codes_te: np.ndarray,
    factors_te: np.ndarray,
    seeds: list[int],
) -> np.ndarray:
    """Test accuracy (D, K) of one LinearSVC per (dim, factor), fitted in a serial loop."""
    mus, ys, mus_te, ys_te = codes_tr.T, factors_tr.T, codes_te.T, factors_te.T
    scores = np.zeros((mus.shape[0], ys.shape[0]))
    for i in range(mus.shape[0]):
        for j in range(ys.shape[0]):
            clf = LinearSVC(random_state=seeds[i * ys.shape[0] + j], **SVC_PARAMS)
            clf.fit(mus[i][:, None], ys[j])
            scores[i, j] = np.mean(clf.predict(mus_te[i][:, None]) == ys_te[j])
    return scores


def sap_from_matrix(scores: np.ndarray) -> float:
    ordered = np.sort(scores, axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))


def slow_fvm_votes(groups: np.ndarray, variance: np.ndarray) -> np.ndarray:
    return np.array([np.argmin(np.var(g, axis=0, ddof=1) / variance) for g in groups])


class FactorGrid:
    """The factor-sampling side of a ground-truth dataset with 3DShapes' factor sizes."""

    factor_sizes = SIZES

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return sample_factors(rng, num)


def slow_fvm_groups(
    data: FactorGrid, rng: np.random.Generator, num: int, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """FactorVAE vote batches drawn one vote at a time: a random factor, a batch of factor
    draws, the factor's value copied from the first row."""
    groups, fixed = [], []
    for _ in range(num):
        index = int(rng.integers(0, len(data.factor_sizes)))
        factors = data.sample_factors(batch, rng)
        factors[:, index] = factors[0, index]
        groups.append(factors)
        fixed.append(index)
    return np.stack(groups), np.array(fixed)


def fixed_factor_shared(groups: np.ndarray, fixed: np.ndarray) -> bool:
    """Whether every group holds its fixed factor at one value."""
    values = groups[np.arange(len(fixed)), :, fixed]
    return bool((values == values[:, :1]).all())


CPU: dict[str, float] = {}


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    """Result and wall seconds (the fastest of ``repeat`` runs); the CPU seconds of this process
    in that run go to ``CPU["last"]`` (worker processes are not counted, so parallel rows show
    wall time only)."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        used, wall = time.process_time() - cpu, time.perf_counter() - start
        if wall < best:
            best, CPU["last"] = wall, used
    return out, best


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
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the --sampled VAE encoder (a cell runs on 2)")
    parser.add_argument("--compare", action="store_true",
                        help="--sampled: also run the previous way (no code reuse, 256 images per "
                        "VAE forward) and compare times and scores")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side of a ratio row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.only_sampled:
        sampled_profile(args.seed, args.encoder, args.threads, args.compare)
        return

    rng = np.random.default_rng(args.seed)
    factors_tr, factors_te = sample_factors(rng, args.n), sample_factors(rng, args.n // 2)
    codes_tr = make_codes(np.random.default_rng(args.seed + 1), factors_tr)
    codes_te = make_codes(np.random.default_rng(args.seed + 1), factors_te)
    split = (codes_tr, factors_tr, codes_te, factors_te)
    rows: list[list[Any]] = []

    def row(name: str, seconds: float, ratio: str, values: str, parallel: bool = False) -> None:
        rows.append([name, f"{seconds:.3f}", cpu(parallel), ratio, values])

    reps = args.repeat

    def faster(t_ref: float, t: float) -> str:
        return f"{t_ref / t:.1f}x faster"

    ref, t_ref = timed(lambda: slow_mig(codes_tr, factors_tr), reps)
    row("MIG, slow loop reference", t_ref, "1.0", f"mig={ref:.6f}")
    ours, t = timed(lambda: mig(codes_tr, factors_tr)["mig"], reps)
    row("MIG", t, faster(t_ref, t), f"mig={ours:.6f} (|diff| {abs(ours - ref):.1e})")

    ref, t_ref = timed(lambda: slow_modularity(codes_tr, factors_tr), reps)
    row("Modularity, slow loop reference", t_ref, "1.0", f"modularity={ref:.6f}")
    ours, t = timed(lambda: modularity(codes_tr, factors_tr)["modularity"], reps)
    row("Modularity", t, faster(t_ref, t), f"modularity={ours:.6f} (|diff| {abs(ours - ref):.1e})")

    # every SAP run draws its D*K seeds from a copy of the same generator state
    d, k = codes_tr.shape[1], factors_tr.shape[1]
    seeds = estimator_seeds(copy.deepcopy(rng), d * k)
    ref_matrix, t_ref = timed(lambda: slow_sap_matrix(*split, seeds), reps)
    ref = sap_from_matrix(ref_matrix)
    row("SAP, LinearSVC loop reference (serial)", t_ref, "1.0", f"sap={ref:.6f}")
    for solver in ("newton", "liblinear"):
        (matrix, _), t = timed(
            lambda s=solver: sap_score_matrix(*split, random_state=copy.deepcopy(rng), solver=s),
            reps,
        )
        ours = sap_from_matrix(matrix)
        row(
            f"SAP (solver={solver})",
            t,
            faster(t_ref, t),
            f"sap={ours:.6f} (|diff| {abs(ours - ref):.1e}, "
            f"max |acc diff| {np.abs(matrix - ref_matrix).max():.1e})",
        )
    estimator_seeds(rng, d * k)  # the generator moves on as after one SAP run
    out, t = timed(lambda: modularity_explicitness(*split, random_state=rng))
    row("Modularity + Explicitness", t, "", _fmt(out))

    exact: dict[str, float] | None = None
    t_exact = 0.0
    if not args.skip_exact:
        exact, t_exact = timed(lambda: dci(*split, mode="exact", random_state=1))
        row("DCI exact (serial)", t_exact, "1.0", _fmt(exact))
    serial: dict[str, tuple[dict[str, float], float]] = {}
    for mode in ("fast", "hist"):
        scores, t_mode = timed(lambda m=mode: dci(*split, mode=m, random_state=1))
        serial[mode] = (scores, t_mode)
        if exact is None:
            row(f"DCI {mode} (serial)", t_mode, "", _fmt(scores))
        else:
            diffs = " ".join(
                f"d_{k.removeprefix('dci_')}={scores[k] - exact[k]:+.4f}" for k in exact)
            row(f"DCI {mode} (serial)", t_mode, faster(t_exact, t_mode), diffs)
    if args.jobs > 1:
        if not args.skip_exact:
            par, t_par = timed(
                lambda: dci(*split, mode="exact", random_state=1, n_jobs=args.jobs))
            same = "identical to serial" if par == exact else "DIFFERS from serial"
            row(f"DCI exact (n_jobs={args.jobs})", t_par, faster(t_exact, t_par), same,
                parallel=True)
        for mode in ("fast", "hist"):
            scores, t_mode = serial[mode]
            par, t_par = timed(
                lambda m=mode: dci(*split, mode=m, random_state=1, n_jobs=args.jobs))
            same = "identical to serial" if par == scores else "DIFFERS from serial"
            ratio = faster(t_exact, t_par) if exact is not None else faster(t_mode, t_par)
            row(f"DCI {mode} (n_jobs={args.jobs})", t_par, ratio, same, parallel=True)

    # FactorVAE and BetaVAE cores on pre-grouped codes (reference study sizes, batch 64)
    n_votes, batch = args.n, 64
    f_tr, k_tr = vote_groups(rng, n_votes, batch)
    f_ev, k_ev = vote_groups(rng, n_votes // 2, batch)
    g_tr = make_codes(np.random.default_rng(args.seed + 1), f_tr.reshape(-1, 6))
    g_ev = make_codes(np.random.default_rng(args.seed + 1), f_ev.reshape(-1, 6))
    g_tr, g_ev = g_tr.reshape(n_votes, batch, -1), g_ev.reshape(n_votes // 2, batch, -1)
    var_codes = make_codes(np.random.default_rng(args.seed + 1), sample_factors(rng, args.n))
    variance = np.var(var_codes, axis=0, ddof=1)
    grid = FactorGrid()
    drawn, t_ref = timed(
        lambda: slow_fvm_groups(grid, np.random.default_rng(args.seed), n_votes, batch), reps
    )
    row(
        "FactorVAE vote sampling, per-vote reference",
        t_ref,
        "1.0",
        f"fixed factor shared: {fixed_factor_shared(*drawn)}",
    )
    drawn, t = timed(
        lambda: _fixed_factor_groups(
            grid, np.random.default_rng(args.seed), n_votes, batch, np.arange(len(SIZES))
        ),
        reps,
    )
    row(
        "FactorVAE vote sampling (vectorised)",
        t,
        faster(t_ref, t),
        f"fixed factor shared: {fixed_factor_shared(*drawn)}",
    )
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
        sampled_profile(args.seed, args.encoder, args.threads, args.compare)


def _encoder(kind: str, seed: int, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """A fixed random linear map of the pixels, or an untrained VAE encoder (conv net, torch)."""
    if kind == "vae":
        import torch

        from methods.vae_common import fresh_encoder
        from models.vae import VAEArchitecture

        torch.set_num_threads(threads)
        return fresh_encoder(VAEArchitecture(10, 3), seed).represent
    weights = (np.random.default_rng(seed).normal(size=(64 * 64 * 3, 10)) / 64.0).astype(np.float32)

    def linear(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1).astype(np.float32) / 255.0) @ weights

    return linear


class StageClock:
    """CPU seconds of rendering (``data.observations``) and encoding (``represent``, rendering
    excluded), in total and per metric (``mark`` closes one metric's share)."""

    def __init__(self, data: Any, represent: Callable[[np.ndarray], Any]) -> None:
        self.render = self.encode = 0.0
        self.images = self.rendered = 0
        self.rows: list[list[Any]] = []
        self._mark = (0.0, 0.0, time.process_time())
        self._data, self._represent = data, represent

    def observations(self, factors: np.ndarray) -> np.ndarray:
        start = time.process_time()
        out = self._data.observations(factors)
        self.render += time.process_time() - start
        self.rendered += len(out)
        return out

    def represent(self, images: np.ndarray) -> np.ndarray:
        start = time.process_time()
        out = self._represent(images)
        self.encode += time.process_time() - start
        self.images += len(images)
        return out

    def __getattr__(self, name: str) -> Any:  # the rest of the ground-truth interface
        return getattr(self._data, name)

    def mark(self, name: str) -> None:
        render, encode, start = self._mark
        now = time.process_time()
        total = now - start
        r, e = self.render - render, self.encode - encode
        self.rows.append([name, f"{r:.1f}", f"{e:.1f}", f"{total - r - e:.1f}", f"{total:.1f}"])
        self._mark = (self.render, self.encode, now)


def _sampled_run(data: Any, represent: Callable[[np.ndarray], Any], seed: int, reuse: bool,
                 overrides: dict[str, dict[str, Any]] | None = None,
                 ) -> tuple[dict[str, float], StageClock, float, float]:
    from metrics.sampling import representation_metrics

    clock = StageClock(data, represent)
    scores, wall = timed(lambda: representation_metrics(
        clock, clock.represent, np.random.default_rng(seed), "quick", reuse=reuse,
        overrides=overrides, on_metric=clock.mark))
    return scores, clock, wall, CPU["last"]


def sampled_profile(seed: int, encoder: str, threads: int = 1, compare: bool = False) -> None:
    """End-to-end quick profile on shapes3d-synth (serial, so CPU time is measurable): CPU
    seconds of rendering, encoding and metric arithmetic, per metric (the bank's shared sets are
    encoded inside the first metric that uses them) and in total. ``compare`` first runs the
    previous way (no code reuse; VAE: one forward per 256 images; DCI ``fast``) and checks that
    every score but DCI's matches (DCI's differences from ``fast`` to ``hist`` are printed)."""
    import datasets.shapes3d  # noqa: F401  (registers shapes3d-synth)
    from datasets import load_ground_truth
    from metrics.bank import is_batch_invariant
    from metrics.sampling import metric_settings

    data = load_ground_truth("shapes3d-synth")
    represent = _encoder(encoder, seed, threads)
    data.observations(data.sample_factors(8, np.random.default_rng(seed)))  # load the maps
    runs: list[tuple[str, dict[str, float], StageClock, float, float]] = []
    if compare:
        if encoder == "vae":
            def previous(images: np.ndarray) -> np.ndarray:
                return represent(images, batch_size=256)  # type: ignore[call-arg]
        else:
            previous = represent
        scores, clock, wall, cpu_s = _sampled_run(data, previous, seed, reuse=False,
                                                  overrides={"dci": {"mode": "fast"}})
        runs.append(("before (no reuse, 256 per forward, DCI fast)", scores, clock, wall, cpu_s))
    reuse = is_batch_invariant(represent)
    scores, clock, wall, cpu_s = _sampled_run(data, represent, seed, reuse=reuse)
    runs.append((f"now (reuse {'on' if reuse else 'off: encoder not batch invariant'})",
                 scores, clock, wall, cpu_s))
    print(f"\nquick profile, shapes3d-synth, {encoder} encoder, torch threads {threads}, "
          f"serial metrics")
    for label, _, clock_, wall_, cpu_ in runs:
        print(f"\n{label}: wall {wall_:.1f} s, CPU {cpu_:.1f} s; {clock_.rendered} images "
              f"rendered, {clock_.images} encoded (probes and padding included); CPU: "
              f"rendering {clock_.render:.1f} s, encoding {clock_.encode:.1f} s, metric "
              f"arithmetic {cpu_ - clock_.render - clock_.encode:.1f} s")
        print(tabulate(clock_.rows, headers=["metric", "render s", "encode s", "arithmetic s",
                                             "CPU s"]))
    if compare:
        before, now = runs[0], runs[1]
        diffs = {k: now[1][k] - before[1][k] for k in now[1] if now[1][k] != before[1][k]}
        same = all(k.startswith("dci_") for k in diffs)
        print(f"\nCPU ratio before/now: {before[4] / now[4]:.2f}x, wall ratio "
              f"{before[3] / now[3]:.2f}x; non-DCI scores {'IDENTICAL' if same else 'DIFFER'}")
        print("differences now - before: "
              + (", ".join(f"{k} {v:+.4f}" for k, v in sorted(diffs.items())) or "none"))
    print(metric_settings("quick"))
    print(tabulate(sorted(runs[-1][1].items()), headers=["key", "score"], floatfmt=".4f"))


if __name__ == "__main__":
    main()
