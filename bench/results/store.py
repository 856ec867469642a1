"""The result store: ``<results>/runs/<id>/result.json`` written atomically, plus the folder lock.

A cell is complete exactly when its ``result.json`` exists and passes ``check_result``: it is
written to a temporary name in the same folder and renamed, so a run killed at any moment leaves
either no result or a whole one. A damaged or hand-edited one is never counted as done: reading
commands name it, and ``bench run`` moves it aside (``<results>/invalid/``) and recomputes it.

Stored records (result.json, baseline files, stage-cache ``.stage.json``) carry a ``schema``
version; one without the field was written before it existed and is read as version 1. A version
this release does not read is not damage (another release wrote it): it is an ``UnknownSchema``
naming the file and the versions read here, and is never moved aside.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import BenchError
from core.io import atomic_write_json, read_json

RESULT_FILE = "result.json"
LOCK_FILE = ".lock"
RUNS_DIR = "runs"
CACHE_DIR = "cache"
INVALID_DIR = "invalid"

RESULT_SCHEMA = 1  # the version written
RESULT_SCHEMAS = (1,)  # the versions read

# Fields every result.json has, with their JSON types; optional ones are checked when present.
RESULT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str, "method": str, "dataset": str, "profile": str, "seed": int, "config": dict,
    "metrics": dict}
RESULT_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "schema": int, "config_hash": str, "overrides": dict, "artifacts": dict,
    "bundle_identity": dict, "torch_threads": int, "direction_recovery": dict,
    "rescored": dict}


class InvalidResult(BenchError):
    """A result.json that exists but fails ``check_result``; ``path`` and ``problem`` (a few
    words) say which and why."""

    path: Path | None = None
    problem: str = ""

    @classmethod
    def of(cls, path: Path, problem: str) -> InvalidResult:
        err = cls(f"{damage_text(path, problem)}: expected a result.json written by "
                  "`bench run`; rerunning its grid recomputes it")
        err.path, err.problem = Path(path), problem
        return err

    @property
    def damage(self) -> str:
        """Which result is damaged and how, without the advice (for notices)."""
        return damage_text(self.path, self.problem)


def damage_text(path: Path | str | None, problem: str) -> str:
    return f"damaged result {path} ({problem})"


class UnknownSchema(BenchError):
    """A stored record whose schema version this release does not read."""


def record_schema(data: dict[str, Any], path: Path | str, what: str,
                  readable: tuple[int, ...]) -> int | None:
    """The schema version of the stored record ``data`` read from ``path`` (a ``what``, e.g.
    "result"): its ``schema`` field, or 1 when it has none (written before the field existed).
    A version this release does not read is an UnknownSchema naming the file and the versions it
    reads; a field that is not an integer is returned as None (the caller calls it damage)."""
    version = data.get("schema", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    if version not in readable:
        versions = ", ".join(str(v) for v in readable)
        raise UnknownSchema(
            f"{what} {path} has schema {version}: this release reads schema "
            f"{versions} (it was written by another release of disentangle-bench; read it with "
            "that release)")
    return version


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value),
                                                                          type(value).__name__)


def check_result(data: Any, path: Path, cell_id: str | None = None) -> dict[str, Any]:
    """``data`` if it is a whole result (a schema version this release reads, required fields
    with their types, finite metrics, the id of its folder); else an InvalidResult naming
    ``path`` and what is wrong (an UnknownSchema for a version written by another release)."""

    def bad(problem: str) -> InvalidResult:
        return InvalidResult.of(path, problem)

    if not isinstance(data, dict):
        raise bad(f"{_json_type(data)} instead of an object")
    record_schema(data, path, "result", RESULT_SCHEMAS)
    missing = [key for key in RESULT_FIELDS if key not in data]
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    for fields in (RESULT_FIELDS, RESULT_OPTIONAL):
        for key, kind in fields.items():
            if key not in data:
                continue
            value = data[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise bad(f"{key!r} is {_json_type(value)}")
    if data["seed"] < 0:
        raise bad(f"'seed' is {data['seed']}")
    try:
        check_metrics(data["metrics"], "'metrics'")
    except ValueError as err:
        raise bad(str(err)) from None
    for group, files in data.get("artifacts", {}).items():
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise bad(f"artifacts {group!r} is not an object of paths")
    if cell_id is not None and data["id"] != cell_id:
        raise bad(f"its id {data['id']!r} is not its folder's name")
    return data


def check_metrics(metrics: Any, where: str) -> dict[str, float]:
    """Metrics must be a dict of finite numbers; anything else is an error, never stored."""
    if not isinstance(metrics, dict):
        raise ValueError(f"{where}: metrics must be a dict of str -> float, got {type(metrics)}")
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: metric {key!r} is not a number: {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{where}: metric {key!r} is {number} (not finite)")
        clean[str(key)] = number
    return clean


class ResultStore:
    """Paths and reads/writes of one results folder (default ``results/``).

    The root is made absolute once, here, so that every path derived from it (run folders,
    artifacts, the stage cache) is absolute and a cell never depends on the working directory;
    result files record artifact paths relative to this root.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()

    def check_folder(self, *, must_exist: bool = False) -> None:
        """A BenchError unless the root is a folder (or, unless ``must_exist``, a path where one
        can be made)."""
        for path in (self.root, *self.root.parents):
            if path.exists() and not path.is_dir():
                what = "is a file" if path == self.root else f"is inside the file {path}"
                raise BenchError(f"results folder {self.root} {what}: expected a folder")
            if path.exists():
                break
        if must_exist and not self.root.is_dir():
            raise BenchError(f"results folder {self.root} not found: expected the folder of a "
                             "`bench run` (see --results)")

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    @property
    def cache_dir(self) -> Path:
        return self.root / CACHE_DIR

    def run_dir(self, cell_id: str) -> Path:
        return self.runs_dir / cell_id

    def result_path(self, cell_id: str) -> Path:
        return self.run_dir(cell_id) / RESULT_FILE

    def is_complete(self, cell_id: str) -> bool:
        """The cell has a whole, valid result.json."""
        return self.status(cell_id) == "done"

    def status(self, cell_id: str) -> str:
        """``done``, ``todo`` (no result) or ``damaged`` (a result.json failing validation); a
        result of a schema this release does not read is an UnknownSchema."""
        if not self.result_path(cell_id).is_file():
            return "todo"
        try:
            self.load(cell_id)
        except InvalidResult:
            return "damaged"
        return "done"

    def load(self, cell_id: str) -> dict[str, Any]:
        """The cell's valid result; an InvalidResult if it is damaged, an UnknownSchema if
        another release wrote it (a FileNotFoundError if there is none)."""
        path = self.result_path(cell_id)
        try:
            data = read_json(path)
        except BenchError as err:
            problem = str(err).removeprefix(f"{path}: ").removeprefix(f"{path} ")
            raise InvalidResult.of(path, problem) from None
        return check_result(data, path, cell_id)

    def move_aside(self, cell_id: str) -> Path:
        """Move a cell's folder (with its damaged result) to ``<results>/invalid/``; returns
        the new place (only call with the lock held)."""
        return self.move_to_invalid(self.run_dir(cell_id), cell_id)

    def move_to_invalid(self, path: Path, name: str) -> Path:
        """Move a damaged file or folder to ``<results>/invalid/<name>-<time stamp>``; returns
        the new place (a FileNotFoundError if ``path`` is gone)."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        target = self.root / INVALID_DIR / f"{name}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)
        return target

    def prepare_run_dir(self, cell_id: str) -> Path:
        """An empty folder for a cell about to run (leftovers of a killed attempt are removed)."""
        directory = self.run_dir(cell_id)
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        return directory

    def write(self, cell_id: str, result: dict[str, Any]) -> Path:
        path = self.result_path(cell_id)
        atomic_write_json(path, result)
        return path

    def results(self, ids: set[str] | None = None) -> list[dict[str, Any]]:
        """Every complete result (or those of ``ids``), in id order; a damaged one is an
        InvalidResult naming it."""
        found, damaged = self.scan(ids)
        if damaged:
            raise damaged[0]
        return found

    def scan(self, ids: set[str] | None = None
             ) -> tuple[list[dict[str, Any]], list[InvalidResult]]:
        """(every valid result, every damaged one) of the folder (or of ``ids``), in id order;
        a result of a schema this release does not read is an UnknownSchema."""
        found: list[dict[str, Any]] = []
        damaged: list[InvalidResult] = []
        if not self.runs_dir.is_dir():
            return found, damaged
        for path in sorted(self.runs_dir.glob(f"*/{RESULT_FILE}")):
            if ids is None or path.parent.name in ids:
                try:
                    found.append(self.load(path.parent.name))
                except InvalidResult as err:
                    damaged.append(err)
        return found, damaged

    def clean_stale_temporaries(self) -> None:
        """Remove temporary stage folders left by a killed run (only call with the lock held)."""
        if not self.cache_dir.is_dir():
            return
        for stage_dir in self.cache_dir.iterdir():
            if stage_dir.is_dir():
                for tmp in stage_dir.glob(".tmp-*"):
                    shutil.rmtree(tmp, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``<results>/.lock`` (fcntl.flock) so that two runs never write one folder."""
        with results_lock(self.root):
            yield


@contextlib.contextmanager
def results_lock(root: Path) -> Iterator[None]:
    """Exclusive, non-blocking lock on ``root/.lock``; a busy folder names the holder's PID."""
    root = Path(root)
    path = root / LOCK_FILE
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    except OSError as err:
        raise BenchError(f"results folder {root} is not writable ({err.strerror}): expected a "
                         "folder this user can write (see --results)") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BenchError(
                f"results folder {root} is in use by another bench run (PID {holder}); "
                "wait for it to finish or pass a different --results folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
