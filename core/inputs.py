"""Inputs a user names by flag or by environment variable, checked the same way.

A path given as ``--data-dir DIR`` and the same path given as ``$BENCH_DATA`` must end the same:
a usable value or one error line naming where it came from, what the path is and what was
expected. Nothing here falls back to other data: a variable that is set names an input, and an
input that cannot be used is an error (an empty variable counts as unset).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from core.errors import BenchError

DATA_ENV = "BENCH_DATA"
CACHE_ENV = "BENCH_CACHE"
DEVICE_ENV = "BENCH_DEVICE"

PathKind = Literal["file", "folder", "any"]


class InputError(BenchError):
    """A named input (flag or environment variable) that cannot be used."""


def env_value(name: str) -> str | None:
    """The value of environment variable ``name``, or None when it is unset or blank."""
    value = os.environ.get(name)
    return value if value is not None and value.strip() else None


def env_origin(name: str) -> str:
    """How error lines name an environment variable (``$NAME``)."""
    return f"${name}"


def named_path(value: str | os.PathLike[str], origin: str, *, kind: PathKind,
               expected: str) -> Path:
    """``value`` as a Path that exists and is of ``kind``; else an InputError that names
    ``origin`` (a flag such as ``--data-dir`` or ``$BENCH_DATA``), the path and ``expected``.

    A file must also be non-empty (an empty checkpoint or data file is never what was meant).
    """
    path = Path(value).expanduser()
    try:
        exists = path.exists()
    except OSError as err:  # e.g. a name too long for the file system
        raise InputError(f"{origin} {value}: cannot use it ({err.strerror}); expected "
                         f"{expected}") from None
    if not exists:
        raise InputError(f"{origin} {value} not found: expected {expected}")
    if kind == "file" and path.is_dir():
        raise InputError(f"{origin} {value} is a folder: expected {expected}")
    if kind == "folder" and not path.is_dir():
        raise InputError(f"{origin} {value} is a file: expected {expected}")
    if kind == "file" and path.stat().st_size == 0:
        raise InputError(f"{origin} {value} is an empty file: expected {expected}")
    return path


def env_path(name: str, *, kind: PathKind, expected: str) -> Path | None:
    """The path environment variable ``name`` names, checked like its flag; None when unset."""
    value = env_value(name)
    if value is None:
        return None
    return named_path(value, env_origin(name), kind=kind, expected=expected)


def data_root(data_dir: str | os.PathLike[str] | None) -> tuple[Path, str] | None:
    """The user's data folder (or data file) and where it was named: ``--data-dir`` first,
    then ``$BENCH_DATA``; None when neither names one. Either must exist."""
    expected = "a folder holding the real dataset files (e.g. 3dshapes.h5), or such a file"
    if data_dir is not None:
        return named_path(data_dir, "--data-dir", kind="any", expected=expected), "--data-dir"
    path = env_path(DATA_ENV, kind="any", expected=expected)
    return None if path is None else (path, env_origin(DATA_ENV))


def cache_root() -> Path:
    """The download and render cache: ``$BENCH_CACHE`` or ``~/.cache/disentangle-bench``.

    A ``$BENCH_CACHE`` that names a file is an error; a folder that does not exist yet is made
    when first written."""
    value = env_value(CACHE_ENV)
    if value is None:
        return Path.home() / ".cache" / "disentangle-bench"
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"{env_origin(CACHE_ENV)} {value} is a file: expected a folder for "
                         "cached files (it is made if missing)")
    return path
