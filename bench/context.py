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

from bench.grid import Cell
from bench.store import ResultStore
from bench.threads import DEFAULT_THREADS, threads_identity
from core.hashing import stable_hash, stable_int
from core.io import dumps_json

T = TypeVar("T")

STAGE_INFO_FILE = ".stage.json"


@dataclass
class StageRecord:
    """How one stage of a cell went: its cache key, wall time and whether the cache served it."""

    name: str
    key: str
    seconds: float
    cache_hit: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "seconds": round(self.seconds, 4),
                "cache_hit": self.cache_hit}


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
    ``seed``, ``profile``, ``threads`` (torch threads; a count other than the default is part of
    every stage key, so stages run on different counts are never mixed), ``artifacts_dir``
    (``<results>/runs/<id>/``, saved with the cell),
    ``artifacts`` (dict recorded in result.json, e.g. ``{"figures": {"traversal": path}}``; use
    ``add_artifact``), ``stages`` (list of StageRecord), ``stage_keys`` (stage name -> cache key).
    """

    def __init__(
        self,
        *,
        cell: Cell,
        bundle: Any,
        config: Any,
        store: ResultStore,
        artifacts_dir: Path,
        stage_versions: Mapping[str, int],
        quiet: bool = True,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        self.cell = cell
        self.bundle = bundle
        self.config = config
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
        after computing, so a fresh and a cached run see the same object).
        """
        key = self.stage_key(name, inputs)
        final = self.store.cache_dir / name / key
        start = time.perf_counter()
        hit = final.is_dir()
        if not hit:
            tmp = final.parent / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir(parents=True)
            try:
                compute(tmp)
                info = {"stage": name, "version": self.stage_versions[name], "inputs": inputs,
                        **threads_identity(self.threads)}
                (tmp / STAGE_INFO_FILE).write_text(dumps_json(info), encoding="utf-8")
                try:
                    os.rename(tmp, final)
                except OSError:
                    if not final.is_dir():  # not a concurrent twin that finished first
                        raise
                    shutil.rmtree(tmp, ignore_errors=True)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            shutil.rmtree(final.parent / f".work-{key}", ignore_errors=True)
        value = load(final)
        self.stages.append(StageRecord(name, key, time.perf_counter() - start, hit))
        self.stage_keys[name] = key
        return value

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
