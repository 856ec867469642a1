"""What a flow sees while running one cell: named seeds, cached stages, artifacts, progress bars.

Stage authors use ``ctx.stage(name, inputs, compute, load)``: the output is cached under
``<results>/cache/<name>/<hash of inputs and the stage's version salt>/``, so any cell (of any grid)
asking for the same stage with the same inputs reuses it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

import metrics.sampling
from bench.grid import Cell
from bench.results.store import ResultStore, record_schema
from bench.threads import DEFAULT_THREADS, threads_identity
from core.errors import BenchError
from core.hashing import file_sha256, stable_hash, stable_int
from core.io import atomic_write_text, dumps_json, named_os_error, read_json
from core.progress import BarFactory
from models.bundle import Bundle, MetricsProvider

T = TypeVar("T")

STAGE_INFO_FILE = ".stage.json"
STAGE_SCHEMA = 1  # the version of .stage.json written
STAGE_SCHEMAS = (1,)  # the versions read (one without "schema" is version 1)


@dataclass
class StageRecord:
    """How one stage of a cell went: its cache key, wall time, CPU time and whether the cache
    served it. ``cpu_seconds`` is the CPU time of the cell's process (all its threads) during
    the stage: unlike the wall time, it does not grow when other jobs share the machine."""

    name: str
    key: str
    seconds: float
    cache_hit: bool
    cpu_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "key": self.key, "seconds": round(self.seconds, 4),
               "cache_hit": self.cache_hit}
        if self.cpu_seconds is not None:
            out["cpu_seconds"] = round(self.cpu_seconds, 4)
        return out


def _file_digests(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under ``folder`` (relative POSIX paths)."""
    return {path.relative_to(folder).as_posix(): {"size": path.stat().st_size,
                                                  "sha256": file_sha256(path)}
            for path in sorted(p for p in folder.rglob("*") if p.is_file())}


def stage_problem(folder: Path, name: str, version: int) -> str | None:
    """What is wrong with the cached stage folder ``folder`` of stage ``name`` at ``version``,
    in a few words, or None if it is whole: its ``.stage.json`` must be readable and name the
    stage and version, and every file it records must be there with its size and sha256
    (entries written before files were recorded are checked by ``load`` only). One of a schema
    this release does not read is an UnknownSchema (another release wrote it: not damage)."""
    info_path = folder / STAGE_INFO_FILE
    try:
        info = read_json(info_path)
    except FileNotFoundError:
        return f"no {STAGE_INFO_FILE}"
    except (OSError, BenchError):
        return f"unreadable {STAGE_INFO_FILE}"
    if isinstance(info, dict) and record_schema(info, info_path, "stage cache record",
                                                STAGE_SCHEMAS) is None:
        return f"{STAGE_INFO_FILE} 'schema' is not an integer"
    if not isinstance(info, dict) or info.get("stage") != name or info.get("version") != version:
        return f"{STAGE_INFO_FILE} is not of stage {name!r} version {version}"
    files = info.get("files")
    if files is None:
        return None
    if not isinstance(files, dict):
        return f"{STAGE_INFO_FILE} 'files' is not an object"
    for rel, want in files.items():
        path = folder / rel
        if not path.is_file():
            return f"{rel} is missing"
        if not isinstance(want, dict) or path.stat().st_size != want.get("size"):
            return f"{rel} is {path.stat().st_size} bytes, expected {want.get('size')}"
        if file_sha256(path) != want.get("sha256"):
            return f"{rel} changed (sha256 differs)"
    return None


def metrics_of(bundle: Bundle | None) -> MetricsProvider:
    """What scores the representations of a cell on ``bundle``: the bundle's own provider,
    else the registered metrics (``metrics.sampling``). Planning (the settings in the cell id)
    and the cell context ask this one function, so they always agree."""
    if bundle is not None and bundle.metrics is not None:
        return bundle.metrics
    return metrics.sampling


def quiet_by_default() -> bool:
    """Progress bars only on an interactive terminal."""
    return not sys.stderr.isatty()


def make_progress(total: int, desc: str, quiet: bool) -> tqdm:
    """A tqdm bar (``update(n)``, ``close()``, context manager); silent when ``quiet``."""
    return tqdm(total=total, desc=desc, disable=quiet, leave=False, dynamic_ncols=True,
                file=sys.stderr)


class CellContext:
    """Everything one cell's flow needs.

    Attributes: ``cell`` (the Cell), ``bundle``, ``config`` (the frozen method config),
    ``metrics`` (the provider that scores representations, ``metrics_of(bundle)`` unless
    given), ``seed``, ``profile``, ``threads`` (torch threads; a count other than the default is part of
    every stage key, so stages run on different counts are never mixed), ``artifacts_dir``
    (``<results>/runs/<id>/``, saved with the cell),
    ``artifacts`` (dict recorded in result.json, e.g. ``{"figures": {"traversal": path}}``; use
    ``add_artifact``), ``stages`` (list of StageRecord), ``stage_keys`` (stage name -> cache key),
    ``notices`` (one line per damaged stage cache moved aside and recomputed), ``records``
    (named JSON blocks the flow adds to result.json beside its metrics, outside the cell id:
    e.g. ``direction_recovery`` with its version and random reference).
    """

    def __init__(
        self,
        *,
        cell: Cell,
        bundle: Bundle,
        config: Any,
        store: ResultStore,
        artifacts_dir: Path,
        stage_versions: Mapping[str, int],
        quiet: bool = True,
        threads: int = DEFAULT_THREADS,
        notices: list[str] | None = None,
        metrics: MetricsProvider | None = None,
    ) -> None:
        self.cell = cell
        self.bundle = bundle
        self.config = config
        self.metrics = metrics if metrics is not None else metrics_of(bundle)
        self.seed = cell.seed
        self.profile = cell.profile
        self.store = store
        self.artifacts_dir = Path(artifacts_dir).absolute()
        self.stage_versions = dict(stage_versions)
        self.quiet = quiet
        self.threads = threads
        self.artifacts: dict[str, dict[str, str]] = {}
        self.stages: list[StageRecord] = []
        self.stage_keys: dict[str, str] = {}
        self.notices: list[str] = notices if notices is not None else []
        self.records: dict[str, dict[str, Any]] = {}

    # -- randomness -------------------------------------------------------------------------
    def seed_sequence(self, name: str) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.seed, stable_int(name)])

    def rng(self, name: str) -> np.random.Generator:
        """An independent generator per purpose: SeedSequence([seed, stable_int(name)])."""
        return np.random.default_rng(self.seed_sequence(name))

    def torch_seed(self, name: str) -> int:
        """A seed for ``torch.Generator().manual_seed`` derived the same way as ``rng``."""
        low, high = self.seed_sequence(name).generate_state(2, dtype=np.uint32)
        return (int(high) << 31) ^ int(low)  # < 2**63

    # -- cached stages ----------------------------------------------------------------------
    def stage_key(self, name: str, inputs: Mapping[str, Any]) -> str:
        if name not in self.stage_versions:
            raise ValueError(
                f"stage {name!r} has no version salt: add it to the flow's STAGE_VERSIONS "
                f"(known: {', '.join(sorted(self.stage_versions)) or 'none'})"
            )
        return stable_hash({"stage": name, "version": self.stage_versions[name],
                            "inputs": dict(inputs), **threads_identity(self.threads)})

    def work_dir(self, name: str, inputs: Mapping[str, Any]) -> Path:
        """A folder for a stage's checkpoints that survives a killed run:
        ``<results>/cache/<name>/.work-<key>``; ``stage`` removes it once the output is stored."""
        return self.store.cache_dir / name / f".work-{self.stage_key(name, inputs)}"

    def stage(
        self,
        name: str,
        inputs: Mapping[str, Any],
        compute: Callable[[Path], None],
        load: Callable[[Path], T],
    ) -> T:
        """Load the cached output of stage ``name`` for ``inputs``, computing it first if needed.

        ``compute(dir)`` writes the output into an empty temporary folder which is then renamed
        atomically to ``<results>/cache/<name>/<key>``; ``load(dir)`` reads it back (also right
        after computing, so a fresh and a cached run see the same object). A cached folder that
        fails validation (``.stage.json`` missing, unreadable or of another stage, a recorded
        file missing or changed, or ``load`` raising) is never used: it is moved to
        ``<results>/invalid/`` (a line in ``notices`` names it) and recomputed.
        """
        key = self.stage_key(name, inputs)
        final = self.store.cache_dir / name / key
        start, cpu_start = time.perf_counter(), time.process_time()
        hit = final.is_dir()
        if hit:
            problem = stage_problem(final, name, self.stage_versions[name])
            if problem is None:
                try:
                    value = load(final)
                except Exception as err:  # a damaged entry: recomputed below
                    problem = f"loading it failed: {type(err).__name__}: {err}"
            if problem is not None:
                self._move_aside(final, problem)
                hit = False
        if not hit:
            self._compute(name, inputs, key, final, compute)
            value = load(final)
        self.stages.append(StageRecord(name, key, time.perf_counter() - start, hit,
                                       time.process_time() - cpu_start))
        self.stage_keys[name] = key
        return value

    def _compute(self, name: str, inputs: Mapping[str, Any], key: str, final: Path,
                 compute: Callable[[Path], None]) -> None:
        tmp = final.parent / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            compute(tmp)
            info = {"schema": STAGE_SCHEMA, "stage": name, "version": self.stage_versions[name],
                    "inputs": inputs,
                    **threads_identity(self.threads), "files": _file_digests(tmp)}
            atomic_write_text(tmp / STAGE_INFO_FILE, dumps_json(info))
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():  # not a concurrent twin that finished first
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as err:  # a full disk fails a write that knows no path: name the entry
            shutil.rmtree(tmp, ignore_errors=True)
            named = named_os_error(err, final, (str(tmp),))
            if named is err:
                raise
            raise named from err
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(final.parent / f".work-{key}", ignore_errors=True)

    def _move_aside(self, folder: Path, problem: str) -> None:
        try:
            moved = self.store.move_to_invalid(folder, f"cache-{folder.parent.name}-{folder.name}")
        except FileNotFoundError:  # a concurrent cell moved it first
            return
        self.notices.append(" ".join(
            f"moved aside damaged stage cache {folder} ({problem}) to {moved}; "
            "it is recomputed".split()))

    def json_stage(
        self, name: str, inputs: Mapping[str, Any], compute: Callable[[], Any]
    ) -> Any:
        """A stage whose output is a JSON value (e.g. a metrics dict)."""

        def write(directory: Path) -> None:
            (directory / "value.json").write_text(dumps_json(compute()), encoding="utf-8")

        def read(directory: Path) -> Any:
            return json.loads((directory / "value.json").read_text(encoding="utf-8"))

        return self.stage(name, inputs, write, read)

    # -- artifacts and progress -------------------------------------------------------------
    def add_artifact(self, group: str, name: str, path: Path | str) -> None:
        """Record a file saved under ``artifacts_dir`` (e.g. group "figures", name "traversal").

        ``path`` is absolute or relative to ``artifacts_dir``; it is stored relative to the
        results folder so that LEADERBOARD.md and reports can link to it.
        """
        path = Path(path)
        if not path.is_absolute():
            path = self.artifacts_dir / path
        if not path.is_file():
            raise FileNotFoundError(f"artifact {path} does not exist")
        rel = os.path.relpath(path, self.store.root)
        self.artifacts.setdefault(group, {})[name] = Path(rel).as_posix()

    def progress(self, total: int, desc: str) -> tqdm:
        """A progress bar for a long loop; silent unless on a terminal and not ``--quiet``."""
        return make_progress(total, desc, self.quiet)
