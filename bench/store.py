"""The result store: ``<results>/runs/<id>/result.json`` written atomically, plus the folder lock.

A cell is complete exactly when its ``result.json`` exists: it is written to a temporary name in
the same folder and renamed, so a run killed at any moment leaves either no result or a whole one.
"""

from __future__ import annotations

import contextlib
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
        return self.result_path(cell_id).is_file()

    def load(self, cell_id: str) -> dict[str, Any]:
        return read_json(self.result_path(cell_id))

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

    def results(self) -> list[dict[str, Any]]:
        """Every complete result, in id order."""
        if not self.runs_dir.is_dir():
            return []
        found = []
        for path in sorted(self.runs_dir.glob(f"*/{RESULT_FILE}")):
            found.append(read_json(path))
        return found

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
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
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
