"""Finding a real dataset's file from ``--data-dir`` / $BENCH_DATA, and checking the subset grid
a loader is asked for, with the same one-line errors for every file-backed dataset."""

from __future__ import annotations

import os
from pathlib import Path

from core.inputs import data_root


def resolve_data_file(dataset: str, file_name: str, suffixes: tuple[str, ...],
                      data_dir: str | os.PathLike[str] | None, *, subfolder: str,
                      source: str, fallback: str) -> Path:
    """The dataset file: ``data_dir`` (or $BENCH_DATA, checked the same way) is the file itself
    (by suffix) or a folder holding ``file_name`` directly or under ``subfolder``.

    ``source`` names where the file comes from and ``fallback`` the synthetic stand-in, both for
    the FileNotFoundError that says what was tried.
    """
    named = data_root(data_dir)
    if named is None:
        raise FileNotFoundError(
            f"{dataset}: no data folder given; pass --data-dir DIR (or set BENCH_DATA) to a "
            f"folder holding {file_name}{source}, or use '{fallback}'")
    root, origin = named
    if root.is_file() and root.suffix not in suffixes:
        raise FileNotFoundError(
            f"{dataset}: {origin} {root} is a file, not {file_name}: expected the folder holding "
            f"{file_name}{source} (or that file itself)")
    tried = [root] if root.suffix in suffixes else [root / file_name, root / subfolder / file_name]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{dataset}: {file_name} not found in {origin} {root} (tried "
        f"{', '.join(str(p) for p in tried)}); point {origin} at the folder holding it, or use "
        f"'{fallback}'")


def check_subset_sizes(dataset: str, factor_sizes: tuple[int, ...],
                       full_sizes: tuple[int, ...]) -> tuple[int, ...]:
    """``factor_sizes`` as ints if it names a sub-grid of ``full_sizes`` (same number of factors,
    each 1..full); a one-line ValueError otherwise."""
    if len(factor_sizes) != len(full_sizes) or any(
            not 1 <= s <= f for s, f in zip(factor_sizes, full_sizes, strict=True)):
        raise ValueError(f"{dataset}: factor_sizes must be {len(full_sizes)} sizes within "
                         f"{full_sizes}, got {factor_sizes}")
    return tuple(int(s) for s in factor_sizes)
