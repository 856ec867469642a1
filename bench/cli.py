"""Command line: ``python -m bench run|rescore|list|leaderboard|report|compare|check|prepare|edit``
plus the
tools ``train-generator``, ``train-predictor``, ``quality`` and ``ablation``.

Bad input (a bad argument or value, a damaged file, an unusable folder) ends with one line
``error: <what> <where>: <expected>`` on stderr and exit code 2 (``--verbose`` shows the
traceback); a traceback without ``--verbose`` means a bug. Failed cells or a regression end
with exit code 1. Subcommands import their implementation when they run, so that ``--help``
and ``list`` stay fast (torch takes seconds to import).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import json
import os
import re
import sys
import traceback
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.plugins import import_plugins
from bench.threads import (
    DEFAULT_THREADS,
    JOBS_ENV,
    THREADS_ENV,
    UNMARKED_THREADS,
    oversubscription_warning,
    resolve_jobs,
    resolve_threads,
)
from core.errors import BenchError

if TYPE_CHECKING:  # imported by the commands that need them (a fast ``bench list``)
    from bench.planning.plan import CellPlan
    from bench.results.store import ResultStore
    from bench.running.worker import CellOutcome

DEFAULT_RESULTS = "results"
PLUGINS_ENV = "BENCH_PLUGINS"


# OSErrors on a named path that come from the user's files or folders, not from a bug.
USER_OS_ERRORS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                            errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT,
                            errno.ENAMETOOLONG, errno.ELOOP})
WRITABLE_OUT = "expected a writable folder with space (see --out)"


@contextlib.contextmanager
def user_os_errors(doing: str, path: object = None, expected: str = "") -> Iterator[None]:
    """An OSError of the block that comes from the user's files or folders (``USER_OS_ERRORS``)
    as one BenchError line: ``{doing} {path} ({reason})[: {expected}]``, the path being the
    error's own file name, else ``path``. Any other OSError (or one without a path) is not the
    user's doing and propagates with its traceback."""
    try:
        yield
    except OSError as err:
        where = err.filename if err.filename is not None else path
        if err.errno not in USER_OS_ERRORS or where is None:
            raise
        tail = f": {expected}" if expected else ""
        raise BenchError(f"{doing} {where} ({err.strerror}){tail}") from None


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors as one ``error:`` line and exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {self.prog}: {one_line(message)} (see `{self.prog} --help`)\n")


def one_line(text: object) -> str:
    """``text`` with its line breaks folded into spaces."""
    return re.sub(r"\s*\n\s*", " ", str(text)).strip()


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show tracebacks and per-cell details")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars and no per-cell start/done lines")
    parser.add_argument("--plugins", default="",
                        help=f"comma-separated modules to import first (they may register "
                             f"methods or datasets); also ${PLUGINS_ENV}")


def _threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", metavar="N",
                        help=f"torch threads per cell, whatever --jobs is (default "
                             f"${THREADS_ENV}, else {DEFAULT_THREADS}); a count other than "
                             f"{UNMARKED_THREADS} is part of the cell ids")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="bench", description="Benchmark direction-discovery methods and disentanglement "
        "metrics over method x dataset x seed grids.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a grid of cells (skips complete ones)")
    _common(run)
    run.add_argument("--grid", help="grid TOML file (flags given here override its fields)")
    run.add_argument("--methods", help="comma-separated method names (default: every method "
                     "that fits the dataset)")
    run.add_argument("--datasets", help="comma-separated dataset names")
    run.add_argument("--seeds", help="seeds: '0-4', '0,2,5' (default 0)")
    run.add_argument("--profile", help="quick or paper (default quick)")
    run.add_argument("--metrics-profile", metavar="NAME",
                     help="score the representation metrics with a published protocol's "
                     "settings: disco (DisCo's evaluate.py, docs/disco.md); the cells' profile "
                     "becomes PROFILE+NAME (own ids; the methods stay at PROFILE)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="config override: field=value or method.field=value (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="list the cells and their status "
                     "(done, todo, damaged, damaged-cache: checks the done cells' stage caches)")
    run.add_argument("--verify", action="store_true",
                     help="first check the sha256 of every stage cache the grid's done cells "
                     "used and move damaged ones aside (recomputed when needed)")
    run.add_argument("--jobs", metavar="N",
                     help=f"cells run at once, each in its own process (default ${JOBS_ENV}, "
                     f"else the usable cores / --threads)")
    _threads_option(run)
    run.add_argument("--executor", default="local",
                     help="where the cells run: local (default) or slurm")
    run.add_argument("--results", default=DEFAULT_RESULTS, help="results folder")
    run.add_argument("--data-dir", help="folder with real dataset files (else $BENCH_DATA)")
    run.add_argument("--no-leaderboard", action="store_true",
                     help="do not print the leaderboard of the grid afterwards")
    run.add_argument("--max-cells", type=int, default=None, metavar="N",
                     help="refuse a grid of more than N cells (default 100,000)")

    rescore = sub.add_parser(
        "rescore", help="fill in the direction-recovery score of a grid's done oracle cells "
        "that lack it, without rerunning them",
        description="For each done directions cell of the grid on a bundle with true "
        "directions (shapes3d-oracle, shapes3d-oracle-layered) whose result.json has no "
        "direction-recovery score: recompute its directions (the method's run with the cell's "
        "config, seed and --threads; from the stage cache where present) and its R matrix; "
        "only where R equals the cell's R.json to the last digit is the score written into "
        "result.json (with a 'rescored' record). Other cells: one line each, left as they "
        "were (exit code 1).")
    _common(rescore)
    rescore.add_argument("--grid", help="grid TOML file (the cells whose ids to look up)")
    rescore.add_argument("--methods", help="comma-separated method names")
    rescore.add_argument("--datasets", help="comma-separated dataset names")
    rescore.add_argument("--seeds", help="seeds: '0-4', '0,2,5' (default 0)")
    rescore.add_argument("--profile", help="quick or paper (default quick)")
    rescore.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="config override, as given to `bench run`")
    _threads_option(rescore)
    rescore.add_argument("--results", default=DEFAULT_RESULTS, help="results folder")
    rescore.add_argument("--data-dir", help="folder with real dataset files (else $BENCH_DATA)")
    rescore.add_argument("--dry-run", action="store_true",
                         help="list the cells that would be rescored")

    lister = sub.add_parser("list", help="list registered methods, datasets or metrics")
    _common(lister)
    lister.add_argument("what", choices=["methods", "datasets", "metrics", "sensors"])

    board = sub.add_parser("leaderboard", help="write LEADERBOARD.md/.csv/.tex from results")
    _common(board)
    board.add_argument("--results", default=DEFAULT_RESULTS)
    board.add_argument("--out", help="output folder (default: the results folder)")

    report = sub.add_parser("report", help="write a static HTML report (tables, figures, "
                            "one page per cell) to <results>/report/index.html")
    _common(report)
    report.add_argument("--results", default=DEFAULT_RESULTS)
    report.add_argument("--out", help="report folder (default: <results>/report)")

    pair = sub.add_parser(
        "compare", help="paired comparison of two methods over the seeds both have",
        description="Compare methods A and B (row labels or method names of one leaderboard "
        "table, e.g. ganspace ganspace+att) over the seeds both have: per metric each seed's "
        "difference A - B, the median difference with its order-statistic interval, and the "
        "exact two-sided Wilcoxon signed-rank p-value (separable at 5 %; n seeds can give no p "
        "below 2/2^n).")
    _common(pair)
    pair.add_argument("a", metavar="A", help="method name or row label")
    pair.add_argument("b", metavar="B", help="method name or row label")
    pair.add_argument("--metric", help="comma-separated metrics (default: every metric both "
                      "have on two or more common seeds)")
    pair.add_argument("--dataset", help="dataset of the table (default: the only table holding "
                      "both)")
    pair.add_argument("--profile", help="profile of the table (default: as for --dataset)")
    pair.add_argument("--table", metavar="TITLE", help="a leaderboard table's full title, where "
                      "dataset and profile name several (other bundles or ground truth)")
    pair.add_argument("--results", default=DEFAULT_RESULTS)

    check = sub.add_parser("check", help="compare results with committed baselines")
    _common(check)
    check.add_argument("--results", default=DEFAULT_RESULTS)
    check.add_argument("--baselines", help="baseline folder (default: <results>/baselines)")
    check.add_argument("--grid", help="only the cells of this grid TOML file")
    check.add_argument("--data-dir")
    _threads_option(check)
    check.add_argument("--update", action="store_true",
                       help="rewrite the baselines from the current results, on purpose")
    check.add_argument("--allow-unchecked", action="store_true",
                       help="leave out score keys without metadata (direction, tolerance) "
                            "with a warning per key, instead of failing")

    prepare = sub.add_parser(
        "prepare", help="check or convert a dataset's files; `prepare ffhq` downloads the FFHQ "
        "generator and the 40 CelebA-HQ classifiers into the cache ($BENCH_CACHE)",
        description="shapes3d, dsprites, mpi3d (also mpi3d-realistic, mpi3d-real): check the "
        "real file (--data-dir; a compressed MPI3D npz is unpacked once into the cache); cars3d: "
        "check the .mat files and scale them into the cache; shapes3d-synth: "
        "build its cache (--write-h5 PATH also writes the 3dshapes.h5 layout). ffhq: download "
        "NVIDIA's FFHQ StyleGAN2 generator and StyleGAN's 40 CelebA-HQ attribute classifiers "
        "into $BENCH_CACHE/ffhq (default ~/.cache/disentangle-bench/ffhq; --dry-run shows it). "
        "A cut download resumes on the next run; each file's size and sha256 are recorded in "
        "the folder's manifest.json when first seen and a later file that differs is refused. "
        "A file put there by hand is checked and recorded instead of downloaded.")
    _common(prepare)
    prepare.add_argument("name", help="shapes3d, shapes3d-synth, dsprites, dsprites-synth, "
                         "mpi3d, mpi3d-realistic, mpi3d-real, cars3d or ffhq")
    prepare.add_argument("--data-dir")
    prepare.add_argument("--write-h5", metavar="PATH")
    prepare.add_argument("--generator", metavar="NAME",
                         help="ffhq: which generator (ffhq512, the default; config-f; ada-ffhq)")
    prepare.add_argument("--only", choices=["generator", "classifiers"],
                         help="ffhq: fetch only the generator or only the classifiers")
    prepare.add_argument("--base-url", metavar="URL",
                         help="ffhq: a mirror folder that replaces the host and folder of "
                              "every URL")
    prepare.add_argument("--dry-run", action="store_true",
                         help="ffhq: show the cache folder and each file's state and URL")
    prepare.add_argument("--write-images", metavar="DIR",
                         help="write --count of the dataset's images as PNG files into DIR (a "
                         "new folder): photos for `bench edit --images DIR`")
    prepare.add_argument("--count", type=int, default=8, help="images for --write-images")

    edit = sub.add_parser(
        "edit", help="project photos into a generator's W / W+ and edit them with a finished "
        "directions cell's directions (results/edits/<name>/)",
        description="Project photos (or images of the dataset's ground truth) into the "
        "generator of a finished directions cell with NVIDIA's projector recipe and move each "
        "projection along the cell's directions: results/edits/<name>/ gets the latents "
        "(projection.npz), photo | projection figure, an edit grid per photo and edits.json "
        "(projection loss, PSNR, predicted attributes of every edited image). Name the cell by "
        "--cell ID or as `bench run` does (--method, --dataset, --seed, --profile, --set).")
    _common(edit)
    edit.add_argument("--cell", metavar="ID", help="id of a finished directions cell")
    edit.add_argument("--method", help="the cell's method (instead of --cell)")
    edit.add_argument("--dataset", help="the cell's dataset (instead of --cell)")
    edit.add_argument("--seed", help="the cell's seed (default 0)")
    edit.add_argument("--profile", help="the cell's profile (default quick)")
    edit.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="the cell's config overrides, as given to `bench run`")
    edit.add_argument("--images", nargs="+", metavar="PATH",
                      help="PNG / JPEG files or folders of them (centre-cropped and resized "
                      "to the generator's size)")
    edit.add_argument("--dataset-images", type=int, metavar="N",
                      help="instead of --images: N images of the dataset's ground truth (the "
                      "real 3dshapes.h5 with --data-dir), whose true factors are recorded")
    edit.add_argument("--landmarks", metavar="JSON",
                      help="68 face landmarks per image file name: those images are aligned "
                      "the FFHQ way before projection (no aligner is built in)")
    edit.add_argument("--directions", metavar="LIST",
                      help="direction indices, e.g. 0,2,5 or 0-3 (default: every scored one)")
    edit.add_argument("--space", choices=["w", "w+"], default="w",
                      help="project into W (one w per image, default) or W+ (one per layer)")
    edit.add_argument("--steps", type=int, help="projection steps (default 1000; 300 for "
                      "quick-profile cells)")
    edit.add_argument("--loss", metavar="SENSOR",
                      help="perceptual loss over this sensor's features (default: the "
                      "dataset's sensor, e.g. shapes3d-disc, alexnet when its weights are "
                      "given; pixels always works; lpips-vgg with $BENCH_LPIPS_VGG)")
    edit.add_argument("--loss-weights", metavar="PATH", help="weights of the --loss sensor")
    edit.add_argument("--mse", type=float, metavar="W",
                      help="weight of the pixel MSE term (default 10 with shapes3d-disc, else 0)")
    edit.add_argument("--span", type=float, help="largest edit in calibrated steps (default: "
                      "the cell's traversal span)")
    edit.add_argument("--columns", type=int, help="amounts per edit row (default: the cell's "
                      "traversal steps)")
    edit.add_argument("--projection-seed", type=int, default=0, metavar="S",
                      help="seed of the projector's noise (default 0)")
    edit.add_argument("--batch", type=int, help="images projected together (default 8)")
    edit.add_argument("--name", help="output folder under <results>/edits/ (default: method, "
                      "dataset, seed and the images' folder)")
    edit.add_argument("--results", default=DEFAULT_RESULTS)
    edit.add_argument("--data-dir", help="folder with real dataset files (else $BENCH_DATA)")
    _threads_option(edit)

    for name, (module, what) in TOOL_COMMANDS.items():
        sub.add_parser(name, help=f"{what} (arguments are forwarded to {module})",
                       add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOL_COMMANDS:
        return _forward_tool(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        _load_plugins(args)
        handler = {"run": cmd_run, "rescore": cmd_rescore, "list": cmd_list,
                   "leaderboard": cmd_leaderboard, "report": cmd_report,
                   "compare": cmd_compare, "check": cmd_check, "prepare": cmd_prepare,
                   "edit": cmd_edit}[args.command]
        with user_os_errors("cannot use"):
            return handler(args)
    except (BenchError, FileNotFoundError) as err:  # UnknownNameError is a BenchError too
        return _user_error(args, str(err))
    except KeyboardInterrupt:
        print("bench: interrupted (complete cells are kept; rerun to resume)", file=sys.stderr)
        return 130


def _user_error(args: argparse.Namespace, message: str) -> int:
    """Print ``error: <message>`` as one line (and the traceback with --verbose); exit code 2."""
    if args.verbose:
        traceback.print_exc()
    print(f"error: {one_line(message)}", file=sys.stderr)
    return 2


def _load_plugins(args: argparse.Namespace) -> list[str]:
    names = [n.strip() for n in (os.environ.get(PLUGINS_ENV, "") + "," + args.plugins).split(",")]
    args.plugin_list = [n for n in dict.fromkeys(names) if n]
    import_plugins(args.plugin_list)
    return args.plugin_list


def _quiet(args: argparse.Namespace) -> bool:
    from bench.results.context import quiet_by_default

    return args.quiet or quiet_by_default()


def grid_from_args(args: argparse.Namespace) -> Any:
    """The GridSpec of ``run``/``check``: the grid file (if any), then explicit flags."""
    from bench.grid import (
        GridSpec,
        load_grid_file,
        merge_overrides,
        parse_names,
        parse_seeds,
        parse_set_options,
        set_option_origins,
    )

    grid = load_grid_file(args.grid) if getattr(args, "grid", None) else GridSpec()
    if getattr(args, "methods", None):
        grid.methods = parse_names(args.methods, "methods")
    if getattr(args, "datasets", None):
        grid.datasets = parse_names(args.datasets, "datasets")
    if getattr(args, "seeds", None):
        grid.seeds = parse_seeds(args.seeds)
    if getattr(args, "profile", None):
        grid.profile = args.profile
    if getattr(args, "metrics_profile", None):
        grid.metrics_profile = args.metrics_profile
    if getattr(args, "set", None):
        grid.overrides = merge_overrides(grid.overrides, parse_set_options(args.set))
        grid.origins.update(set_option_origins(args.set))
    return grid


def cmd_run(args: argparse.Namespace) -> int:
    # The arguments are checked before planning imports torch (seconds): a mistyped flag or
    # value answers at once.
    check_data_dir(args.data_dir)
    grid = grid_from_args(args)
    threads = resolve_threads(args.threads)
    jobs = resolve_jobs(args.jobs, threads)
    if args.max_cells is not None and args.max_cells < 1:
        raise BenchError(f"--max-cells must be >= 1, got {args.max_cells}")
    from bench.results.store import ResultStore

    store = ResultStore(args.results)
    store.check_folder()
    from bench.planning.plan import plan_grid
    from bench.running.runner import EXECUTORS, run_grid

    if args.executor not in EXECUTORS:
        raise BenchError(f"--executor {args.executor!r}: expected one of {', '.join(EXECUTORS)}")
    if args.executor == "local":
        warning = oversubscription_warning(jobs, threads)
        if warning:
            print(warning, file=sys.stderr, flush=True)
    plans = plan_grid(grid, args.data_dir, threads, max_cells=_max_cells(args),
                      notice=lambda line: print(line, file=sys.stderr, flush=True))
    if args.dry_run:
        _print_dry_run(plans, store)
        return 0
    if args.verify:
        _verify_caches(plans, store)
    failed = []
    lines = not args.quiet  # one line per cell start and end, on any output (bars need a tty)

    def announce(plan: CellPlan) -> None:
        if lines:
            print(f"start   {plan.cell.label}", file=sys.stderr, flush=True)

    def report(outcome: CellOutcome) -> None:
        if outcome.ok:
            if lines or args.verbose:
                print(f"done    {outcome.label} ({outcome.seconds:.0f} s)"
                      f"{_headline(outcome.metrics)}", file=sys.stderr, flush=True)
        else:
            failed.append(outcome)
            print(f"FAILED  {outcome.label}: {outcome.error}", file=sys.stderr)
            if args.verbose and outcome.details:
                print(outcome.details, file=sys.stderr)

    outcomes = run_grid(plans, store, jobs=jobs, executor=args.executor,
                        data_dir=args.data_dir, plugins=args.plugin_list, quiet=_quiet(args),
                        report=report, announce=announce, slurm_options=grid.slurm,
                        notice=lambda line: print(line, file=sys.stderr, flush=True))
    skipped = len(plans) - len(outcomes)
    print(f"{len(plans)} cell(s): {len(outcomes) - len(failed)} run, {skipped} already done, "
          f"{len(failed)} failed (results in {store.root})", file=sys.stderr)
    if not args.no_leaderboard:
        from bench.reports.leaderboard import build_tables, render_markdown

        results = store.results({plan.id for plan in plans})
        print(render_markdown(build_tables(results), store.root, store.root))
    return 1 if failed else 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from bench.planning.plan import plan_grid
    from bench.results.store import ResultStore
    from bench.running.rescore import rescore, rescore_plans

    check_data_dir(args.data_dir)
    store = ResultStore(args.results)
    store.check_folder(must_exist=True)
    plans = plan_grid(grid_from_args(args), args.data_dir, resolve_threads(args.threads))
    if args.dry_run:
        todo = rescore_plans(plans, store, args.data_dir)
        for plan in todo:
            print(f"rescore  {plan.id}  {plan.cell.label}")
        print(f"{len(plans)} cell(s): {len(todo)} to rescore")
        return 0
    lines = not args.quiet

    def report(outcome: Any) -> None:
        for line in outcome.notices:
            print(line, file=sys.stderr, flush=True)
        if outcome.rescored:
            if lines:
                shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(outcome.scores.items()))
                print(f"rescored {outcome.label} ({outcome.seconds:.0f} s): {shown}",
                      file=sys.stderr, flush=True)
        else:
            print(f"REFUSED  {outcome.message} ({outcome.seconds:.0f} s)", file=sys.stderr,
                  flush=True)

    outcomes = rescore(plans, store, args.data_dir, quiet=_quiet(args), report=report)
    refused = sum(not outcome.rescored for outcome in outcomes)
    print(f"{len(plans)} cell(s): {len(outcomes) - refused} rescored, {refused} refused, "
          f"{len(plans) - len(outcomes)} not needing it (results in {store.root})",
          file=sys.stderr)
    return 1 if refused else 0


def _max_cells(args: argparse.Namespace) -> int:
    from bench.planning.plan import DEFAULT_MAX_CELLS

    if args.max_cells is None:
        return DEFAULT_MAX_CELLS
    if args.max_cells < 1:
        raise BenchError(f"--max-cells must be >= 1, got {args.max_cells}")
    return int(args.max_cells)


def check_data_dir(data_dir: str | None) -> None:
    """An explicit ``--data-dir`` must exist (a folder, or a dataset file itself)."""
    if data_dir is not None and not Path(data_dir).expanduser().exists():
        raise BenchError(f"--data-dir {data_dir} not found: expected a folder holding the real "
                         "dataset files (e.g. 3dshapes.h5)")


def _headline(metrics: dict[str, float] | None) -> str:
    """``: key value, ...`` for the headline scores present in ``metrics`` (the flows' own, such
    as the discovery scores, then the metrics'; ``score_metadata`` order)."""
    from bench.flows.base import score_metadata

    shown = [f"{key} {metrics[key]:.3f}" for key, info in score_metadata().items()
             if info.headline and metrics and key in metrics]
    return ": " + ", ".join(shown) if shown else ""


def _print_dry_run(plans: list[CellPlan], store: ResultStore) -> None:
    """One row per cell (status, id, method, dataset, seed, profile, overrides), a line per
    damaged result or stage cache, then what each dataset loads. Columns are padded by hand:
    a 10^5-cell grid prints in about a second."""
    from bench.running.integrity import DAMAGED, DAMAGED_CACHE, DONE, cell_statuses, damage_text

    statuses, damaged, damages = cell_statuses(store, [plan.id for plan in plans])
    rows, done = [], 0
    for plan in plans:
        status = statuses[plan.id]
        done += status in (DONE, DAMAGED_CACHE)
        cell = plan.cell
        extra = ", ".join(f"{k}={v!r}" for k, v in cell.overrides)
        rows.append((status, plan.id, cell.method, cell.dataset, str(cell.seed), cell.profile,
                     extra))
    headers = ("status", "id", "method", "dataset", "seed", "profile", "overrides")
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True))
             .rstrip() for row in [headers, tuple("-" * w for w in widths), *rows]]
    print("\n".join(lines))
    for err in damaged:  # what is wrong, one line each
        print(f"{DAMAGED}: {damage_text(store, err)}")
    for damage in damages:
        print(f"{DAMAGED_CACHE}: {damage_text(store, damage)}")
    spoiled = sum(status == DAMAGED_CACHE for status in statuses.values())
    extra = (f" ({spoiled} with a damaged stage cache: `bench run --verify` moves it aside)"
             if spoiled else "")
    print(f"{len(plans)} cell(s): {done} done{extra}, {len(plans) - done} to run")
    described: dict[str, tuple[tuple[str, str], ...]] = {}
    for plan in plans:
        described.setdefault(plan.cell.dataset, plan.sources)
    for dataset, sources in described.items():
        if sources:
            print(f"{dataset} loads:")
            width = max(len(component) for component, _ in sources)
            for component, what in sources:
                print(f"  {component:<{width}}  {what}")


def _verify_caches(plans: list[CellPlan], store: ResultStore) -> None:
    """``run --verify``: check the stage caches of the grid's done cells; move damaged ones
    aside (one line each) so that the cell needing one recomputes it."""
    from bench.running.integrity import DAMAGED_CACHE, DONE, cell_statuses, move_aside

    statuses, _, damages = cell_statuses(store, [plan.id for plan in plans])
    moved = move_aside(store, damages, lambda line: print(line, file=sys.stderr, flush=True))
    done = sum(status in (DONE, DAMAGED_CACHE) for status in statuses.values())
    print(f"verify: stage caches of {done} done cell(s) checked, {moved} damaged one(s) moved "
          "aside", file=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    rows: list[list[str]] = []
    if args.what == "methods":
        from methods.base import METHODS
        for entry in METHODS.entries():
            spec = entry.obj
            flag = "" if entry.obj.default else " (not in the default grid)"
            rows.append([entry.name, spec.kind, ",".join(spec.requires),
                         entry.description + flag])
        headers = ["method", "kind", "requires", "description"]
    elif args.what == "datasets":
        import datasets
        from bench.planning.bundles import BUNDLES

        for entry in BUNDLES.entries():
            rows.append([entry.name, "bundle (grid dataset)", entry.description])
        for entry in datasets.GROUND_TRUTH.entries():
            rows.append([entry.name, "ground truth", entry.description])
        headers = ["dataset", "kind", "description"]
    elif args.what == "sensors":
        from models.sensors import SENSORS

        for entry in SENSORS.entries():
            rows.append([entry.name, entry.description])
        headers = ["sensor", "description"]
    else:
        from bench.flows.base import score_metadata

        for key, info in score_metadata().items():
            better = "higher" if info.higher_is_better else "lower"
            rows.append([key, better, f"{info.tolerance:g}", info.description])
        headers = ["metric", "better", "tolerance", "description"]
    if not rows:
        print(f"no {args.what} registered")
        return 0
    print(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.reports.leaderboard import write_leaderboard
    from bench.results.store import ResultStore

    store = ResultStore(args.results)
    store.check_folder(must_exist=True)
    out = Path(args.out) if args.out else store.root
    results, damaged = store.scan()
    _warn_skipped(damaged)
    with user_os_errors("cannot write the leaderboard to", out, WRITABLE_OUT):
        paths = write_leaderboard(results, store.root, out)
    print(paths["md"].read_text(encoding="utf-8"))
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.planning.bundles import resolve_named_inputs
    from bench.reports.report import build_report
    from bench.results.store import ResultStore

    resolve_named_inputs()
    store = ResultStore(args.results)
    store.check_folder(must_exist=True)
    _warn_skipped(store.scan()[1])  # another release's result stops here, before any write
    with user_os_errors("cannot write the report to", args.out or args.results, WRITABLE_OUT):
        index = build_report(args.results, args.out)
    print(index)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.grid import parse_names
    from bench.reports.compare import compare_results, render
    from bench.results.store import ResultStore

    store = ResultStore(args.results)
    store.check_folder(must_exist=True)
    metrics = parse_names(args.metric, "metric") if args.metric else None
    comparison = compare_results(store.results(), args.a, args.b, metrics=metrics,
                                 dataset=args.dataset, profile=args.profile, title=args.table)
    print(render(comparison), end="")
    return 0


def _check_integrity(store: ResultStore, results: list[dict[str, Any]],
                     damaged: list[Any]) -> None:
    """A BenchError naming every damaged result and every damaged stage cache of ``results``
    at once (sha256 of each cache file; a cache folder that is not there is no damage)."""
    from bench.running.integrity import damaged_cells_message, verify_caches

    damages = verify_caches(store, results)
    if damaged or damages:
        raise BenchError(damaged_cells_message(store, damaged, damages))


def _warn_skipped(damaged: list[Any]) -> None:
    """One line per damaged result that a reading command leaves out."""
    for err in damaged:
        print(f"warning: skipped damaged result {err.path} ({err.problem}); rerunning its grid "
              "recomputes it", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    from bench.flows.base import score_metadata
    from bench.reports.regress import check_score_keys, compare, load_baselines, update_baselines
    from bench.results.store import ResultStore

    store = ResultStore(args.results)
    store.check_folder()
    check_data_dir(args.data_dir)
    if args.grid:
        from bench.planning.bundles import resolve_named_inputs

        resolve_named_inputs(args.data_dir)
    baselines_dir = Path(args.baselines) if args.baselines else store.root / "baselines"
    if baselines_dir.exists() and not baselines_dir.is_dir():
        raise BenchError(f"baseline folder {baselines_dir} is a file: expected a folder")
    results, damaged = store.scan()
    selected_ids: set[str] | None = None
    if args.grid:
        from bench.planning.plan import plan_grid

        plans = plan_grid(grid_from_args(args), args.data_dir, resolve_threads(args.threads))
        selected_ids = {plan.id for plan in plans}
        results = [r for r in results if r["id"] in selected_ids]
        damaged = [e for e in damaged if e.path is not None and e.path.parent.name in selected_ids]
    _check_integrity(store, results, damaged)
    if selected_ids is not None:
        missing = sorted(selected_ids - {r["id"] for r in results})
        if args.update and missing:
            raise BenchError(f"{len(missing)} cell(s) of {args.grid} have no result: run the "
                             "grid before `check --update`")
    if args.update:
        if not results:
            raise BenchError(f"no results in {store.root} to make baselines from")
        load_baselines(baselines_dir)  # a damaged baseline file stops the update before the lock
        for line in check_score_keys(results, score_metadata(), args.allow_unchecked):
            print(f"warning: {line}", file=sys.stderr)
        with (user_os_errors("cannot write baselines to", baselines_dir,
                             "expected a writable folder with space (see --baselines)"),
              store.lock()):
            written = update_baselines(baselines_dir, results)
        print(f"updated {len(results)} baseline cell(s) in " +
              ", ".join(str(p) for p in written))
        return 0
    baselines = load_baselines(baselines_dir)
    if selected_ids is not None:
        keys = {(r["method"], r["dataset"], r["seed"], r["profile"]) for r in results}
        plan_keys = {(p.cell.method, p.cell.dataset, p.cell.seed, p.cell.profile) for p in plans}
        baselines = [b for b in baselines
                     if (b["method"], b["dataset"], b["seed"], b["profile"]) in plan_keys | keys]
    if not baselines:
        raise BenchError(f"no baseline cells in {baselines_dir} (create them on purpose with "
                         "`python -m bench check --update`)")
    report = compare(baselines, results, allow_unchecked=args.allow_unchecked)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(report.render())
    return 0 if report.ok else 1


FFHQ_PREPARE_FLAGS = {"generator": "--generator", "only": "--only", "base_url": "--base-url",
                      "dry_run": "--dry-run"}


def cmd_prepare(args: argparse.Namespace) -> int:
    from bench.planning.bundles import resolve_named_inputs
    from datasets.prepare import prepare_dataset

    resolve_named_inputs(args.data_dir)
    if args.name == "ffhq":
        return _prepare_ffhq(args)
    for field, flag in FFHQ_PREPARE_FLAGS.items():
        if getattr(args, field) not in (None, False):
            raise BenchError(f"prepare {args.name}: {flag} applies to 'ffhq' only")
    if args.write_images is not None:
        from datasets.prepare import write_images

        if args.write_h5 is not None:
            raise BenchError("prepare: give --write-h5 or --write-images, not both")
        # a bad option or an unknown name is a SettingError, a bad data file a DataError: both
        # BenchErrors, which ``main`` prints as one line
        folder = write_images(args.name, args.write_images, args.count, args.data_dir)
        print(f"{args.name}: wrote {args.count} images to {folder}")
        return 0
    with user_os_errors(f"prepare {args.name}: cannot use", "a file"):
        summary = prepare_dataset(args.name, data_dir=args.data_dir, write_h5=args.write_h5)
    if isinstance(summary, (dict, list)):
        print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    elif summary is not None:
        print(summary)
    return 0


def _prepare_ffhq(args: argparse.Namespace) -> int:
    """``prepare ffhq``: download (or check) the generator and classifiers in the cache."""
    from datasets.ffhq_assets import DEFAULT_GENERATOR
    from datasets.prepare_ffhq import prepare_ffhq

    for flag, value in (("--data-dir", args.data_dir), ("--write-h5", args.write_h5),
                        ("--write-images", args.write_images)):
        if value is not None:
            raise BenchError(f"prepare ffhq: {flag} does not apply (the files go to the cache "
                             "folder, $BENCH_CACHE; see --dry-run)")
    print(prepare_ffhq(args.generator or DEFAULT_GENERATOR, only=args.only,
                       base_url=args.base_url, dry_run=args.dry_run,
                       progress=not _quiet(args)))
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from bench import edit
    from bench.planning.bundles import resolve_named_inputs
    from bench.planning.plan import load_bundle
    from bench.results.store import ResultStore
    from bench.running.finished import find_cell, load_cell

    check_data_dir(args.data_dir)
    resolve_named_inputs(args.data_dir)
    threads = resolve_threads(args.threads)
    if (args.images is None) == (args.dataset_images is None):
        raise BenchError("edit: give either --images (files or folders) or --dataset-images N")
    if args.landmarks and args.images is None:
        raise BenchError("--landmarks applies to --images only")
    named = [f"--{flag}" for flag in ("method", "dataset", "seed", "profile")
             if getattr(args, flag) is not None] + (["--set"] if args.set else [])
    if args.cell is not None and named:
        raise BenchError(f"--cell names the cell already: drop {', '.join(named)}")
    if args.cell is None and (args.method is None or args.dataset is None):
        raise BenchError("edit: name the cell with --cell ID or with --method and --dataset "
                         "(and --seed, --profile, --set as given to `bench run`)")
    store = ResultStore(args.results)
    store.check_folder(must_exist=True)
    if args.cell is not None:
        result = load_cell(store, args.cell)
    else:
        grid = grid_from_args(argparse.Namespace(
            methods=args.method, datasets=args.dataset, seeds=args.seed, profile=args.profile,
            set=args.set, grid=None))
        result = find_cell(store, grid, args.data_dir, threads)
    directions = edit.cell_directions(store, result)
    bundle = load_bundle(result["dataset"], args.data_dir)
    edit.check_generator(bundle, result)
    indices = edit.select_directions(args.directions, directions.num_directions)
    span, columns = edit.default_span_columns(result)
    amounts = edit.edit_amounts(args.span if args.span is not None else span,
                                args.columns if args.columns is not None else columns)
    loss = args.loss or edit.default_loss(bundle)
    mse = args.mse if args.mse is not None else edit.DEFAULT_MSE.get(loss, 0.0)
    config = edit.projection_config(result["profile"], space=args.space, num_steps=args.steps,
                                    mse_weight=mse, batch_size=args.batch)
    edit.load_distance(loss, args.loss_weights)  # a bad sensor stops here, before the photos
    generator = bundle.generator
    if args.images is not None:
        photos = edit.read_photos(args.images, int(generator.resolution),
                                  int(generator.img_channels), args.landmarks)
    else:
        photos = edit.dataset_photos(bundle, args.dataset_images, int(generator.resolution))
    name = edit.output_name(result, photos, args.name, args.images)
    run = edit.EditRun(store=store, result=result, bundle=bundle, directions=directions,
                       indices=indices, photos=photos, config=config, loss_name=loss,
                       loss_weights=args.loss_weights, amounts=amounts,
                       seed=args.projection_seed, threads=threads, name=name,
                       quiet=_quiet(args))
    edit.check_output(store, name)
    folder = edit.run_edit(run)
    edit.print_summary(folder)
    return 0


# Asset tools whose own argparse takes the rest of the command line: name -> (module, summary).
TOOL_COMMANDS: dict[str, tuple[str, str]] = {
    "train-generator": ("training.train_gan", "train (or resume) a StyleGAN2 generator"),
    "train-predictor": ("training.train_predictor", "train an attribute predictor on ground "
                        "truth (--ground-truth: shapes3d-synth by default, or mpi3d, cars3d, ...)"),
    "quality": ("training.quality", "generator-quality figures against rendered images"),
    "ablation": ("bench.experiments.ablation",
                 "loss ablations: `ablation l2mask` (ContraFeat Table 8)"),
}


def _forward_tool(name: str, argv: list[str]) -> int:
    module = importlib.import_module(TOOL_COMMANDS[name][0])
    code = module.main(argv)
    return int(code) if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
