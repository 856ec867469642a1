"""Atomic file writes and JSON helpers: the one place that writes a file via temp name + rename.

A file is written to a temp name in its target folder and renamed over the target, so a reader (or
a run killed at any moment) sees either the old file or the whole new one, never a partial one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import BenchError
from core.hashing import json_default


def named_os_error(err: OSError, path: str | os.PathLike[str],
                   unnamed: tuple[str, ...] = ()) -> OSError:
    """``err`` naming ``path`` when it names no file (a full disk fails a ``write``, which knows
    no path) or one of ``unnamed`` (a temporary name the user never sees); else ``err``."""
    if err.filename is not None and str(err.filename) not in unnamed:
        return err
    return OSError(err.errno, err.strerror or str(err), str(path))  # the errno's subclass


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it gets the usual (umask) permissions and
    replaces ``path``; on any error it is removed and ``path`` is left untouched. An OSError
    (a full disk, a permission) names ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as err:
        raise named_os_error(err, path, (str(err.filename),)) from err
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        move_into_place(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        named = named_os_error(err, path, (str(tmp),))
        if named is err:
            raise
        raise named from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def move_into_place(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Give the finished temp file ``tmp`` the usual (umask) permissions and rename it over
    ``path`` (same folder, so the rename is atomic); used by ``atomic_path`` and by downloads,
    whose temp file keeps a fixed name so that a cut transfer can resume."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files
    os.replace(tmp, path)


def temp_folder(beside: str | os.PathLike[str]) -> Path:
    """A new empty folder with a temporary name beside the folder ``beside``, with the usual
    (umask) permissions (mkdtemp makes it 0700), for a folder written whole and then renamed
    into place."""
    beside = Path(beside)
    folder = Path(tempfile.mkdtemp(prefix=f".tmp-{beside.name}-", dir=beside.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    return folder


def publish_folder(work: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the finished folder ``work`` (from ``temp_folder(target)``) in ``target``'s place: one
    rename where ``target`` is new; else the old folder is renamed aside, the new one renamed in
    and the old one removed, so ``target`` is always a whole folder, old or new."""
    work, target = Path(work), Path(target)
    if target.exists():
        old = target.with_name(f".old-{target.name}-{os.getpid()}")
        os.replace(target, old)
        os.replace(work, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work, target)


def write_tensors_and_json(directory: str | os.PathLike[str], tensors_name: str,
                           tensors: dict[str, Any], json_name: str, info: Any) -> None:
    """A safetensors file and the JSON that describes it, each written atomically (tensors
    first: a JSON present means its tensors are whole). safetensors loads on first use."""
    from safetensors.torch import save_file

    directory = Path(directory)
    with atomic_path(directory / tensors_name) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_json(directory / json_name, info)


def dumps_json(value: Any) -> str:
    """Pretty JSON with sorted keys (clean diffs); NaN/inf are refused, never written silently."""
    text = json.dumps(value, sort_keys=True, indent=2, allow_nan=False, default=json_default)
    return text + "\n"


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically; the data is fsynced before the rename."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> None:
    atomic_write_text(path, dumps_json(value))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a malformed, non-UTF-8 or unreadable one is a BenchError naming the
    file (a missing one stays a FileNotFoundError)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise BenchError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not UTF-8 text (expected a JSON file)") from None
    except RecursionError:
        raise BenchError(f"{path}: not valid JSON (nested too deeply)") from None
    except (IsADirectoryError, PermissionError) as err:
        raise BenchError(f"{path}: cannot be read ({err.strerror}; expected a JSON file)") from None
