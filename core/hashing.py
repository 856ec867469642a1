"""Stable hashes of JSON-like values: cell ids, stage cache keys and named seeds.

Canonical JSON (sorted keys, no whitespace, no NaN) makes a hash independent of dict order and of
the Python process, so ids stay the same across machines and runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import PurePath
from typing import Any

import numpy as np

SHORT_HASH_CHARS = 16


def json_default(value: Any) -> Any:
    """The project's one ``json.dumps`` fallback (hashes, JSON files, saved metadata):
    dataclasses, paths, sets (sorted) and NumPy / torch scalars and arrays as plain JSON; any
    other type is a TypeError naming it."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "tolist"):  # NumPy arrays, torch tensors
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: a value of type {type(value).__name__}: {value!r}")


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys; raises ValueError on NaN/inf (they have no stable text)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
        default=json_default,
    )


def stable_hash(value: Any, length: int = SHORT_HASH_CHARS) -> str:
    """Short hex sha256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode("ascii")).hexdigest()[:length]


def stable_int(name: str) -> int:
    """A 64-bit integer derived from a string, the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (asset and cache identities)."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()
