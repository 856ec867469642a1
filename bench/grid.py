"""Grids: which (method, dataset, seed, profile) cells to run, from CLI flags or a TOML file.

Parsing here is pure (no registries); ``bench.planning.plan`` checks names against the
registries and resolves each cell's config and identity.
"""

from __future__ import annotations

import bisect
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from core.errors import BenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# The dataset(s) of the default grid (``python -m bench run`` with no arguments). One place only:
# "shapes3d" carries the shipped generator and predictor, and the look-alike ground truth unless
# the real 3dshapes.h5 is given, so the VAE baselines and the direction methods all run on it.
DEFAULT_DATASETS: tuple[str, ...] = ("shapes3d",)
DEFAULT_PROFILE = "quick"
DEFAULT_SEEDS: tuple[int, ...] = (0,)

GRID_KEYS = ("methods", "datasets", "seeds", "profile", "metrics_profile", "set", "slurm")
# The [slurm] table (options of --executor slurm, see bench.running.slurm): key -> (type, meaning).
SLURM_KEYS: dict[str, tuple[type, str]] = {
    "cluster": (str, '"slurm" (default), or "local" / "debug" to run the array on this machine'),
    "partition": (str, "SLURM partition"),
    "account": (str, "SLURM account"),
    "qos": (str, "SLURM quality of service"),
    "constraint": (str, "SLURM node constraint"),
    "timeout_min": (int, "time limit per cell in minutes (default 240)"),
    "gpus_per_node": (int, "GPUs per cell"),
    "cpus_per_task": (int, "CPUs per cell (default: the torch threads per cell)"),
    "mem_gb": (int, "memory per cell in GB"),
    "array_parallelism": (int, "cells running at once"),
    "max_requeues": (int, "time-limit requeues before a cell fails (default 3)"),
    "setup": (list, "shell lines run before each cell (e.g. module load cuda)"),
}
SLURM_CLUSTERS = ("slurm", "local", "debug")
_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


@dataclass(frozen=True)
class Cell:
    """One unit of work. ``overrides`` are method-config overrides as sorted (field, value)."""

    method: str
    dataset: str
    seed: int
    profile: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        extra = "".join(f" {k}={v!r}" for k, v in self.overrides)
        return f"{self.method} / {self.dataset} / seed {self.seed} / {self.profile}{extra}"


@dataclass
class GridSpec:
    """A grid before expansion. ``methods``/``datasets`` None mean "the defaults".

    ``slurm`` holds the grid file's ``[slurm]`` options (not part of any cell's identity).
    ``overrides`` maps a method name, or "*" for every method having that field, to
    config-field overrides; ``origins`` maps (scope, field) to where the value was given (the
    ``--set`` option or the grid file and table), for error messages. ``metrics_profile``
    (``--metrics-profile``, e.g. ``disco``) pins the representation metrics to a published
    protocol: the cells' profile becomes ``<profile>+<metrics_profile>`` (``cell_profile``).
    """

    methods: list[str] | None = None
    datasets: list[str] | None = None
    seeds: Sequence[int] = field(default_factory=lambda: Seeds((s, s) for s in DEFAULT_SEEDS))
    profile: str = DEFAULT_PROFILE
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict, compare=False)
    slurm: dict[str, Any] = field(default_factory=dict)
    metrics_profile: str | None = None

    @property
    def cell_profile(self) -> str:
        """The profile of the grid's cells: ``profile``, with ``+metrics_profile`` when set."""
        if self.metrics_profile is None:
            return self.profile
        if "+" in self.profile:
            raise BenchError(f"profile {self.profile!r} already names a metrics profile: give "
                             f"--metrics-profile {self.metrics_profile} or that, not both")
        return f"{self.profile}+{self.metrics_profile}"

    def origin(self, scope: str, name: str) -> str:
        """Where the override ``scope``/``name`` was given."""
        default = f"--set {name}" if scope == "*" else f"--set {scope}.{name}"
        return self.origins.get((scope, name), default)


# The largest seed plus one. The methods derive torch seeds as ``seed * 1_000_003 + salt``, which
# must stay inside ``torch.manual_seed``'s 64-bit range; below 2**32 that holds with room, and it
# is also NumPy's legacy ``RandomState`` bound, so a seed valid here is valid for every generator.
SEED_LIMIT = 2**32


class Seeds(Sequence[int]):
    """Seeds as sorted-by-position ranges, expanded only when iterated (``0-999999999`` costs
    nothing until its cells are planned); equal to any sequence of the same ints."""

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        self.ranges: tuple[tuple[int, int], ...] = tuple((int(a), int(b)) for a, b in ranges)
        self._starts: list[int] = []
        total = 0
        for low, high in self.ranges:
            self._starts.append(total)
            total += high - low + 1
        self._len = total

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[int]:
        for low, high in self.ranges:
            yield from range(low, high + 1)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> list[int]: ...

    def __getitem__(self, index: int | slice) -> int | list[int]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("seed index out of range")
        position = bisect.bisect_right(self._starts, index) - 1
        return self.ranges[position][0] + index - self._starts[position]

    def __contains__(self, seed: object) -> bool:
        return isinstance(seed, int) and any(a <= seed <= b for a, b in self.ranges)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Seeds):
            return self._merged() == other._merged()
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other,
                                                                          strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Seeds({self.text()!r})"

    def _merged(self) -> list[tuple[int, int]]:
        """The ranges with neighbours joined (``0,1,2`` and ``0-2`` are the same seeds)."""
        merged: list[tuple[int, int]] = []
        for low, high in self.ranges:
            if merged and merged[-1][1] + 1 == low:
                merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        return merged

    def text(self) -> str:
        """The seeds as the CLI writes them, e.g. ``0-4,7``."""
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ranges)


def parse_seeds(text: str | int | list[Any]) -> Seeds:
    """Seeds from "0-4", "0,2,5", "0-2,7", an int, or a list of ints; errors say what is wrong.

    Ranges stay ranges (nothing is expanded here), every seed is in ``[0, SEED_LIMIT)`` and no
    seed may be listed twice."""
    if isinstance(text, bool):
        raise BenchError(f"bad seeds {text!r}: expected e.g. '0-4', '0,2,5' or a list of ints")
    if isinstance(text, int):
        items: list[Any] = [text]
    elif isinstance(text, list):
        items = text
    elif isinstance(text, str):
        items = [part.strip() for part in text.split(",")]
    else:
        raise BenchError(f"bad seeds {text!r}: expected e.g. '0-4', '0,2,5' or a list of ints")
    ranges: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, bool):
            raise BenchError(f"bad seed {item!r} in {text!r}: expected a non-negative integer")
        if isinstance(item, int):
            if item < 0:
                raise BenchError(f"bad seed {item} in {text!r}: seeds must be >= 0")
            ranges.append((item, item))
            continue
        if not isinstance(item, str):
            raise BenchError(f"bad seed {item!r} in {text!r}: expected a non-negative integer")
        match = _RANGE.match(item)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if high < low:
                raise BenchError(
                    f"bad seed range {item!r}: the end {high} is below the start {low}"
                )
            ranges.append((low, high))
        elif item.isdigit():
            ranges.append((int(item), int(item)))
        else:
            raise BenchError(
                f"bad seeds {text!r}: {item!r} is neither a seed nor a range like '0-4'"
            )
    if not ranges:
        raise BenchError(f"bad seeds {text!r}: no seed given")
    too_large = max(high for _, high in ranges)
    if too_large >= SEED_LIMIT:
        raise BenchError(f"bad seeds {text!r}: seed {too_large} is too large: seeds must be below "
                         f"2**32 = {SEED_LIMIT} (the methods derive 64-bit torch seeds from them)")
    ordered = sorted(ranges)
    duplicates = sorted({later[0] for earlier, later in zip(ordered, ordered[1:], strict=False)
                         if later[0] <= earlier[1]})
    if duplicates:
        raise BenchError(f"bad seeds {text!r}: seed(s) {duplicates} listed more than once")
    return Seeds(ranges)


def parse_names(text: str | list[Any], what: str) -> list[str]:
    """Comma-separated (or TOML list of) names; empty entries and duplicates are errors."""
    if isinstance(text, str):
        names = [part.strip() for part in text.split(",")]
    elif isinstance(text, list) and all(isinstance(n, str) for n in text):
        names = [n.strip() for n in text]
    else:
        raise BenchError(f"bad {what} {text!r}: expected a list of names")
    if not names or any(not n for n in names):
        raise BenchError(f"bad {what} {text!r}: empty name")
    if len(set(names)) != len(names):
        raise BenchError(f"bad {what} {text!r}: a name is listed twice")
    return names


def _parse_value(text: str) -> Any:
    """A single-line TOML literal (number, bool, string, list) or else the raw text."""
    if "\n" in text or "\r" in text:
        return text
    try:
        data = tomllib.loads(f"v = {text}")
    except (tomllib.TOMLDecodeError, RecursionError):
        return text
    return data["v"] if set(data) == {"v"} else text


def _split_set_option(option: str) -> tuple[str, str, Any]:
    """(scope, field, value) of one ``--set`` option."""
    key, sep, value = option.partition("=")
    key = key.strip()
    if not sep or not key:
        raise BenchError(f"bad --set {option!r}: expected field=value or method.field=value")
    method, dot, name = key.rpartition(".")
    scope = method if dot else "*"
    if not name or (dot and not method):
        raise BenchError(f"bad --set {option!r}: expected field=value or method.field=value")
    return scope, name, _parse_value(value.strip())


def parse_set_options(options: list[str]) -> dict[str, dict[str, Any]]:
    """``--set field=value`` (every method with that field) or ``--set method.field=value``."""
    overrides: dict[str, dict[str, Any]] = {}
    for option in options:
        scope, name, value = _split_set_option(option)
        overrides.setdefault(scope, {})[name] = value
    return overrides


def set_option_origins(options: list[str]) -> dict[tuple[str, str], str]:
    """(scope, field) -> the ``--set`` option that gave it (the last one wins, as in parsing)."""
    return {_split_set_option(option)[:2]: f"--set {option}" for option in options}


def merge_overrides(
    base: dict[str, dict[str, Any]], extra: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    merged = {scope: dict(values) for scope, values in base.items()}
    for scope, values in extra.items():
        merged.setdefault(scope, {}).update(values)
    return merged


def load_grid_file(path: Path | str) -> GridSpec:
    """Read a grid TOML file::

        profile = "quick"                 # optional, default quick
        metrics_profile = "disco"         # optional: metrics at a protocol's settings
        methods = ["beta-vae"]            # optional, default: every default method that fits
        datasets = ["shapes3d-synth"]     # optional, default: bench.grid.DEFAULT_DATASETS
        seeds = "0-4"                     # or [0, 1, 2] or 3
        [set]                             # optional config overrides
        steps = 100                       # every method that has the field
        [set.beta-vae]
        beta = 4.0                        # only this method
        [slurm]                           # optional, for --executor slurm (SLURM_KEYS)
        partition = "gpu"
        timeout_min = 720
        gpus_per_node = 1
    """
    path = Path(path)
    if path.is_dir():
        raise BenchError(f"grid file {path} is a folder: expected a TOML file")
    if not path.is_file():
        raise BenchError(f"grid file {path} not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise BenchError(f"grid file {path} is not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise BenchError(f"grid file {path} is not UTF-8 text") from None
    except RecursionError:
        raise BenchError(f"grid file {path} is not valid TOML: nested too deeply") from None
    except OSError as err:
        raise BenchError(f"grid file {path} cannot be read: {err.strerror or err}") from None
    unknown = sorted(set(data) - set(GRID_KEYS))
    if unknown:
        raise BenchError(
            f"grid file {path}: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(expected: {', '.join(GRID_KEYS)})"
        )
    try:
        spec = GridSpec()
        if "methods" in data:
            spec.methods = parse_names(data["methods"], "methods")
        if "datasets" in data:
            spec.datasets = parse_names(data["datasets"], "datasets")
        if "seeds" in data:
            spec.seeds = parse_seeds(data["seeds"])
        if "profile" in data:
            if not isinstance(data["profile"], str):
                raise BenchError(f"bad profile {data['profile']!r}: expected a string")
            spec.profile = data["profile"]
        if "metrics_profile" in data:
            if not isinstance(data["metrics_profile"], str) or not data["metrics_profile"]:
                raise BenchError(f"bad metrics_profile {data['metrics_profile']!r}: expected a "
                                 "name (e.g. \"disco\")")
            spec.metrics_profile = data["metrics_profile"]
        if "set" in data:
            spec.overrides = _parse_set_table(data["set"])
        if "slurm" in data:
            spec.slurm = parse_slurm_table(data["slurm"])
    except BenchError as err:
        raise BenchError(f"grid file {path}: {err}") from None
    for scope, values in spec.overrides.items():
        table = "[set]" if scope == "*" else f"[set.{scope}]"
        for name in values:
            spec.origins[(scope, name)] = f"grid file {path} {table} {name}"
    return spec


def parse_slurm_table(table: Any) -> dict[str, Any]:
    """The ``[slurm]`` table, every key known and of its type."""
    if not isinstance(table, dict):
        raise BenchError("[slurm] must be a table of option = value")
    for key, value in table.items():
        if key not in SLURM_KEYS:
            raise BenchError(f"[slurm] unknown key {key!r} (expected: {', '.join(SLURM_KEYS)})")
        kind, meaning = SLURM_KEYS[key]
        if kind is int:
            good = isinstance(value, int) and not isinstance(value, bool) and value > 0
        elif kind is list:
            good = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            good = isinstance(value, str) and bool(value)
        if not good:
            what = {int: "a positive integer", list: "a list of strings"}.get(kind, "a string")
            raise BenchError(f"[slurm] {key} = {value!r}: expected {what} ({meaning})")
    cluster = table.get("cluster", "slurm")
    if cluster not in SLURM_CLUSTERS:
        raise BenchError(f"[slurm] cluster = {cluster!r}: expected one of "
                         f"{', '.join(SLURM_CLUSTERS)}")
    return dict(table)


def _parse_set_table(table: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise BenchError("[set] must be a table of field = value")
    overrides: dict[str, dict[str, Any]] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            overrides.setdefault(key, {}).update(value)
        else:
            overrides.setdefault("*", {})[key] = value
    return overrides
