"""Integrity of a results folder before its files are needed.

A complete cell's result.json records the stages it ran (``stages``: name and cache key) and
their version salts; each stage-cache folder ``<results>/cache/<name>/<key>/`` records the size
and sha256 of every file it holds (``.stage.json``, written with the entry). Checking those
digests for the cells of a grid (``bench run --verify``, the dry run's status column,
``bench check``) shows damage before a later cell needs the entry. A cache folder that is not
there is no damage (a fresh clone holds results but no cache; it is recomputed when needed).

Cell statuses: ``done``, ``todo`` (no result), ``damaged`` (a result.json failing validation;
``bench run`` moves it aside and recomputes the cell) and ``damaged-cache`` (the result is whole
but a stage-cache entry it used fails its digests; the cell stays done, ``bench run --verify``
moves the entry aside so that the next cell needing it recomputes it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results.context import stage_problem
from bench.results.store import InvalidResult, ResultStore

DONE, TODO, DAMAGED, DAMAGED_CACHE = "done", "todo", "damaged", "damaged-cache"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # a stage name or cache key, never a path


@dataclass(frozen=True)
class CacheDamage:
    """A present stage-cache folder that fails its check, and the cells whose results used it."""

    folder: Path
    stage: str
    version: int
    problem: str
    cells: tuple[str, ...]


def stage_folders(store: ResultStore, result: dict[str, Any]) -> list[tuple[Path, str, int]]:
    """(folder, stage name, version salt) of every stage cache a result records, present or not
    (entries that are not a plain name and key are left out)."""
    versions = result.get("stage_versions")
    versions = versions if isinstance(versions, dict) else {}
    found = []
    for stage in result.get("stages") or []:
        if not isinstance(stage, dict):
            continue
        name, key = stage.get("name"), stage.get("key")
        version = versions.get(name)
        if not (isinstance(name, str) and isinstance(key, str) and _KEY.match(name)
                and _KEY.match(key) and isinstance(version, int)):
            continue
        found.append((store.cache_dir / name / key, name, version))
    return found


def verify_caches(store: ResultStore, results: Iterable[dict[str, Any]]) -> list[CacheDamage]:
    """Every present stage-cache folder of ``results`` that fails ``stage_problem`` (sizes and
    sha256 of its files), each checked once however many cells share it; a folder of a schema
    this release does not read is an UnknownSchema."""
    problems: dict[Path, tuple[str, int, str | None]] = {}
    cells: dict[Path, list[str]] = {}
    for result in results:
        for folder, name, version in stage_folders(store, result):
            if folder not in problems:
                problems[folder] = (name, version, stage_problem(folder, name, version)
                                    if folder.is_dir() else None)
            cells.setdefault(folder, []).append(str(result["id"]))
    return [CacheDamage(folder, name, version, problem, tuple(dict.fromkeys(cells[folder])))
            for folder, (name, version, problem) in sorted(problems.items(),
                                                           key=lambda item: str(item[0]))
            if problem is not None]


def cell_statuses(store: ResultStore, ids: Iterable[str]
                  ) -> tuple[dict[str, str], list[InvalidResult], list[CacheDamage]]:
    """The status of each cell (see the module docstring), the damaged results and the cache
    damage found; a result of a schema this release does not read is an UnknownSchema."""
    statuses: dict[str, str] = {}
    damaged: list[InvalidResult] = []
    done: list[dict[str, Any]] = []
    for cell_id in ids:
        if not store.result_path(cell_id).is_file():
            statuses[cell_id] = TODO
            continue
        try:
            done.append(store.load(cell_id))
            statuses[cell_id] = DONE
        except InvalidResult as err:
            damaged.append(err)
            statuses[cell_id] = DAMAGED
    damages = verify_caches(store, done)
    for damage in damages:
        for cell_id in damage.cells:
            statuses[cell_id] = DAMAGED_CACHE
    return statuses, damaged, damages


def damage_text(store: ResultStore, damage: CacheDamage | InvalidResult) -> str:
    """A few words naming one damaged result or stage-cache entry (paths under the results
    folder are relative to it)."""
    if isinstance(damage, InvalidResult):
        return f"result {_short(store, damage.path)} ({damage.problem})"
    cells = ", ".join(damage.cells)
    return f"stage cache {_short(store, damage.folder)} of cell(s) {cells} ({damage.problem})"


def _short(store: ResultStore, path: Path | None) -> str:
    if path is None:
        return "?"
    try:
        return Path(path).relative_to(store.root).as_posix()
    except ValueError:
        return str(path)


def damaged_cells_message(store: ResultStore, damaged: list[InvalidResult],
                          damages: list[CacheDamage]) -> str:
    """One line naming every damaged result and stage-cache entry at once."""
    count = len({*(e.path.parent.name for e in damaged if e.path is not None),
                 *(c for d in damages for c in d.cells)})
    parts = [damage_text(store, e) for e in damaged] + [damage_text(store, d) for d in damages]
    fixes = []
    if damaged:
        fixes.append("`bench run` recomputes a damaged result")
    if damages:
        fixes.append("`bench run --verify` moves a damaged stage cache aside (it is recomputed "
                     "when a cell needs it)")
    return (f"{count} damaged cell(s) in {store.root}: {'; '.join(parts)}: expected whole "
            f"files as `bench run` wrote them; {' and '.join(fixes)}")


def move_aside(store: ResultStore, damages: list[CacheDamage],
               notice: Callable[[str], None]) -> int:
    """Under the results lock, move each damaged stage-cache folder that is still damaged to
    ``<results>/invalid/`` with one ``notice`` line; returns how many were moved."""
    if not damages:
        return 0
    moved = 0
    with store.lock():
        for damage in damages:
            if not damage.folder.is_dir():
                continue
            problem = stage_problem(damage.folder, damage.stage, damage.version)
            if problem is None:  # recomputed meanwhile
                continue
            target = store.move_to_invalid(damage.folder,
                                           f"cache-{damage.stage}-{damage.folder.name}")
            moved += 1
            notice(f"moved aside damaged stage cache {damage.folder} of cell(s) "
                   f"{', '.join(damage.cells)} ({problem}) to {target}; it is recomputed when a "
                   "cell needs it")
    return moved

