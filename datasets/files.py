"""Finding a real dataset's file (or folder of files) from ``--data-dir`` / $BENCH_DATA, and
checking the subset grid a loader is asked for, with the same one-line errors for every
file-backed dataset."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import SettingError
from core.inputs import data_root


def resolve_data_file(dataset: str, file_name: str, suffixes: tuple[str, ...],
                      data_dir: str | os.PathLike[str] | None, *, subfolder: str,
                      source: str, fallback: str | None) -> Path:
    """The dataset file: ``data_dir`` (or $BENCH_DATA, checked the same way) is the file itself
    (by suffix) or a folder holding ``file_name`` directly or under ``subfolder``.

    ``source`` names where the file comes from and ``fallback`` the synthetic stand-in (None:
    there is none), both for the FileNotFoundError that says what was tried.
    """
    named = data_root(data_dir)
    otherwise = f", or use '{fallback}'" if fallback else ""
    if named is None:
        raise FileNotFoundError(
            f"{dataset}: no data folder given; pass --data-dir DIR (or set BENCH_DATA) to a "
            f"folder holding {file_name}{source}{otherwise}")
    root, origin = named
    if root.is_file() and root.suffix not in suffixes:
        raise FileNotFoundError(
            f"{dataset}: {origin} {root} is a file, not {file_name}: expected the folder holding "
            f"{file_name}{source} (or that file itself)")
    tried = [root] if root.suffix in suffixes else [root / file_name, root / subfolder / file_name]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    hint = f"point {origin} at the folder holding it{otherwise}" if fallback else \
        f"put {file_name}{source} there or point {origin} at the folder holding it"
    raise FileNotFoundError(
        f"{dataset}: {file_name} not found in {origin} {root} (tried "
        f"{', '.join(str(p) for p in tried)}); {hint}")


def resolve_data_folder(dataset: str, pattern: str, data_dir: str | os.PathLike[str] | None,
                        *, subfolders: tuple[str, ...], what: str, source: str) -> Path:
    """The folder of a dataset kept as many files: ``data_dir`` (or $BENCH_DATA) itself or one
    of ``subfolders`` under it, the first holding a file matching ``pattern``. ``what`` names
    the files and ``source`` where they come from, for the FileNotFoundError."""
    named = data_root(data_dir)
    if named is None:
        raise FileNotFoundError(
            f"{dataset}: no data folder given; pass --data-dir DIR (or set BENCH_DATA) to a "
            f"folder holding {what}{source}")
    root, origin = named
    if root.is_file():
        raise FileNotFoundError(f"{dataset}: {origin} {root} is a file: expected the folder "
                                f"holding {what}{source}")
    tried = [root, *(root / sub for sub in subfolders)]
    for candidate in tried:
        if candidate.is_dir() and next(candidate.glob(pattern), None) is not None:
            return candidate
    raise FileNotFoundError(
        f"{dataset}: no {what} ({pattern}) in {origin} {root} (tried "
        f"{', '.join(str(p) for p in tried)}); put them in {root / subfolders[0]}{source}")


def check_subset_sizes(dataset: str, factor_sizes: tuple[int, ...],
                       full_sizes: tuple[int, ...]) -> tuple[int, ...]:
    """``factor_sizes`` as ints if it names a sub-grid of ``full_sizes`` (same number of factors,
    each 1..full); a one-line SettingError otherwise."""
    if len(factor_sizes) != len(full_sizes) or any(
            not 1 <= s <= f for s, f in zip(factor_sizes, full_sizes, strict=True)):
        raise SettingError(f"{dataset}: factor_sizes must be {len(full_sizes)} sizes within "
                           f"{full_sizes}, got {factor_sizes}")
    return tuple(int(s) for s in factor_sizes)
