"""A cache folder's record of the files it holds (``manifest.json``): the size and sha256 of
each, kept from the first time the file was seen, downloaded or put there by hand.

For files whose publisher gives no digest, this is how a later copy that differs (a changed
mirror, a damaged re-download, a different file put in place by hand) is refused instead of
silently used: trust on first use. An entry is only ever added, never rewritten; deleting it
(or the whole manifest) by hand is how a user accepts a new file on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BenchError
from core.io import atomic_write_json, read_json

RECORD_FILE = "manifest.json"
FORMAT = 1


@dataclass(frozen=True)
class Recorded:
    """One file as first seen: its sha256 (hex), size in bytes and where it came from (a URL,
    or ``in place`` for a file the user put there)."""

    sha256: str
    size: int
    source: str


class DigestRecord:
    """The manifest of one cache folder; read on every call (small), written atomically."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / RECORD_FILE

    def get(self, name: str) -> Recorded | None:
        """The record of file ``name`` (a name inside the folder), or None if it has none."""
        return self._entries().get(name)

    def add(self, name: str, entry: Recorded) -> None:
        """Record ``name`` as ``entry``; a name recorded already with other bytes is refused
        (the caller checks against ``get`` first, so this guards against a concurrent run)."""
        entries = self._entries()
        known = entries.get(name)
        if known is not None and (known.sha256, known.size) != (entry.sha256, entry.size):
            raise BenchError(f"{self.path}: {name} is recorded with sha256 {known.sha256}, not "
                             f"{entry.sha256}; delete its entry to accept the new file")
        entries[name] = entry
        atomic_write_json(self.path, {
            "format": FORMAT,
            "files": {key: {"sha256": e.sha256, "size": e.size, "source": e.source}
                      for key, e in sorted(entries.items())}})

    def _entries(self) -> dict[str, Recorded]:
        try:
            data = read_json(self.path)
        except FileNotFoundError:
            return {}
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(
                files, dict):
            raise BenchError(f"{self.path}: not a file record of format {FORMAT} (expected "
                             '{"format": 1, "files": {NAME: {"sha256", "size", "source"}}}); '
                             "delete it to record the files afresh")
        return {name: _entry(self.path, name, value) for name, value in files.items()}


def _entry(path: Path, name: str, value: Any) -> Recorded:
    """One manifest entry, checked: a 64-digit hex sha256 and a non-negative size."""
    try:
        sha, size, source = value["sha256"], value["size"], value.get("source", "")
        ok = (isinstance(sha, str) and len(sha) == 64 and int(sha, 16) >= 0
              and isinstance(size, int) and size >= 0 and isinstance(source, str))
    except (TypeError, KeyError, ValueError):
        ok = False
    if not ok:
        raise BenchError(f"{path}: entry {name!r} is not {{\"sha256\": 64 hex digits, "
                         "\"size\": bytes, \"source\": text}; delete it to record the file "
                         "afresh")
    return Recorded(sha256=sha.lower(), size=size, source=source)
