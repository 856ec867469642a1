"""A finished directions cell, for commands that use it later (``bench edit``): its result by
id or by the names ``bench run`` gives it, its calibrated directions from the stage cache, and
the check that today's dataset bundle has the generator it was made with.

A directions cell records its stages in ``result.json`` (``stages``: name and cache key); its
calibrated directions (the scored ones, each with its edit scale) are the output of the
"calibrate" stage, ``<results>/cache/calibrate/<key>/``, checked against the sha256 of every
file its ``.stage.json`` records before they are read.
"""

from __future__ import annotations

from typing import Any

from bench.grid import GridSpec
from bench.results.context import stage_problem
from bench.results.store import InvalidResult, ResultStore
from core.errors import BenchError
from models.bundle import Bundle
from models.directions import Directions

CALIBRATE_STAGE = "calibrate"


def stage_key(result: dict[str, Any], name: str) -> str | None:
    """The cache key of stage ``name`` in a result's ``stages`` (None: the cell has no such
    stage)."""
    keys = [s.get("key") for s in result.get("stages", [])
            if isinstance(s, dict) and s.get("name") == name]
    return str(keys[0]) if keys and keys[0] else None


def load_cell(store: ResultStore, cell_id: str) -> dict[str, Any]:
    """The complete result of cell ``cell_id``; a BenchError when there is none (or a damaged
    one) in ``store``."""
    if not cell_id or "/" in cell_id or cell_id.startswith("."):
        raise BenchError(f"--cell {cell_id!r}: expected a cell id (a folder name under "
                         f"{store.runs_dir})")
    if not store.result_path(cell_id).is_file():
        raise BenchError(f"--cell {cell_id}: no finished cell of that id in {store.runs_dir} "
                         "(expected the id of a done cell: `bench run --dry-run` lists them)")
    try:
        return store.load(cell_id)
    except InvalidResult as err:
        raise BenchError(f"--cell {cell_id}: {err}") from None


def find_cell(store: ResultStore, grid: GridSpec, data_dir: str | None,
              threads: int) -> dict[str, Any]:
    """The finished cell a one-cell grid names (method, dataset, seed, profile, ``--set``): the
    complete result of that method, dataset, seed, profile and overrides. Where several match
    (made with another ground truth or thread count), the one ``bench run`` with these flags
    would make wins; else a BenchError lists them."""
    from bench.planning.plan import plan_grid

    plans = plan_grid(grid, data_dir, threads)
    if len(plans) != 1:
        raise BenchError(f"--method/--dataset/--seed name {len(plans)} cells: expected one")
    plan = plans[0]
    cell = plan.cell
    matches = [r for r in store.scan()[0]
               if (r["method"], r["dataset"], r["seed"], r["profile"]) ==
               (cell.method, cell.dataset, cell.seed, cell.profile)
               and r.get("overrides", {}) == dict(cell.overrides)]
    if not matches:
        raise BenchError(f"no finished cell {cell.label} in {store.runs_dir}: run it first "
                         f"(`bench run --methods {cell.method} --datasets {cell.dataset} "
                         f"--seeds {cell.seed} --profile {cell.profile}`) or pass --cell ID")
    exact = [r for r in matches if r["id"] == plan.id]
    if exact:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    raise BenchError(f"{len(matches)} finished cells are {cell.label} (made with another ground "
                     "truth or thread count): pass --cell with one of "
                     f"{', '.join(r['id'] for r in matches)}")


def cell_directions(store: ResultStore, result: dict[str, Any]) -> Directions:
    """The calibrated (scored) directions of a finished directions cell, from its "calibrate"
    stage cache, after checking the cache entry's recorded files."""
    cell_id = result["id"]
    if result.get("kind", "directions") != "directions":
        raise BenchError(f"cell {cell_id} ({result['method']}) is a {result.get('kind')} cell: "
                         "expected a directions cell (a method that finds directions)")
    key = stage_key(result, CALIBRATE_STAGE)
    if key is None:
        raise BenchError(f"cell {cell_id} ({result['method']}) has no calibrate stage: expected "
                         "a directions cell (a method that finds directions)")
    folder = store.cache_dir / CALIBRATE_STAGE / key
    rerun = (f"rerun its grid (`bench run --methods {result['method']} --datasets "
             f"{result['dataset']} --seeds {result['seed']} --profile {result['profile']} "
             "--verify`) to rebuild it")
    if not folder.is_dir():
        raise BenchError(f"cell {cell_id}: its calibrated directions "
                         f"cache/{CALIBRATE_STAGE}/{key} are not in {store.root}; {rerun}")
    version = int(result.get("stage_versions", {}).get(CALIBRATE_STAGE, 1))
    problem = stage_problem(folder, CALIBRATE_STAGE, version)
    if problem is not None:
        raise BenchError(f"cell {cell_id}: its calibrated directions cache/{CALIBRATE_STAGE}/"
                         f"{key} are damaged ({problem}); {rerun}")
    try:
        return Directions.load(folder)
    except (OSError, ValueError) as err:
        raise BenchError(f"cell {cell_id}: its calibrated directions cache/{CALIBRATE_STAGE}/"
                         f"{key} cannot be read ({err}); {rerun}") from None


GENERATOR_KEYS = ("generator", "generator_source")


def check_generator(bundle: Bundle, result: dict[str, Any]) -> None:
    """A BenchError unless ``bundle`` has the generator ``result``'s cell was made with (the
    generator entries of the bundle identity it recorded)."""
    made = {k: v for k, v in result.get("bundle_identity", {}).items() if k in GENERATOR_KEYS}
    now = {k: v for k, v in bundle.identity.items() if k in GENERATOR_KEYS}
    if made != now:
        raise BenchError(
            f"cell {result['id']} was made with another generator than dataset "
            f"{bundle.name!r} has now ({_generator_text(made)} then, {_generator_text(now)} now): "
            "expected the same generator (set $BENCH_SHAPES3D_GENERATOR or "
            "$BENCH_FFHQ_GENERATOR as when the cell ran)")


def _generator_text(identity: dict[str, Any]) -> str:
    generator = identity.get("generator")
    if isinstance(generator, dict) and "file" in generator:
        digest = generator.get("sha256")
        return f"{generator['file']}" + (f" sha256 {str(digest)[:12]}" if digest else "")
    if isinstance(generator, dict) and "oracle" in generator:
        return "the oracle " + ", ".join(f"{k}={v}" for k, v in
                                         sorted(generator["oracle"].items()))
    return str(generator) if generator is not None else "none"


__all__ = ["CALIBRATE_STAGE", "cell_directions", "check_generator", "find_cell", "load_cell",
           "stage_key"]
