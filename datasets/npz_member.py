"""One array of an ``.npz`` file as a read-only memory map, without loading the file.

An npz is a zip of ``.npy`` members. A member stored without compression (``np.savez``) is mapped
where it lies in the zip; a compressed one (``np.savez_compressed``) is unpacked once, in blocks,
into an ``.npy`` under the cache folder (named by the member's CRC-32 and size, written
atomically) and mapped from there. The member's header (dtype, shape, order) is read and checked
first, so a wrong file costs nothing; nothing is ever unpickled.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from core.errors import DataError
from core.io import atomic_path

_LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # the 30-byte zip local file header
_LOCAL_MAGIC = b"PK\x03\x04"
_BLOCK_BYTES = 64 << 20  # unpacked per step


@dataclass(frozen=True)
class NpzMember:
    """What the zip directory and the ``.npy`` header say about one member."""

    path: Path
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    crc32: int
    size: int  # uncompressed bytes of the .npy member (header included)
    compressed: bool

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def _read_npy_header(stream: IO[bytes], where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except ValueError as err:
        raise DataError(f"{where} is not a valid .npy member ({err})") from None
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype)


def npz_member(path: str | os.PathLike[str], key: str, *, expected: str) -> NpzMember:
    """The member ``key`` of npz ``path`` (header only); one-line DataErrors naming the file
    and ``expected`` (what the file should be) when it is not a zip or lacks the member."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an npz (zip) file, or a truncated one; expected "
                        f"{expected}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n.removesuffix(".npy"): n for n in zf.namelist()}
            if key not in names:
                raise DataError(f"{path}: no array {key!r} (found {sorted(names)}); expected "
                                f"{expected}")
            info = zf.getinfo(names[key])
            with zf.open(info) as stream:
                shape, fortran, dtype = _read_npy_header(stream, f"{path}: {key!r}")
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path}: cannot read the npz file (truncated or damaged?): "
                        f"{err}") from None
    if fortran:
        raise DataError(f"{path}: {key!r} is stored in Fortran order; expected {expected}")
    return NpzMember(path, info.filename, dtype, shape, info.CRC, info.file_size,
                     info.compress_type != zipfile.ZIP_STORED)


def open_member(member: NpzMember, cache_dir: str | os.PathLike[str]) -> np.ndarray:
    """``member`` as a read-only memory map (in place when stored, else from the cache)."""
    if not member.compressed:
        return _map_in_place(member)
    stem = member.path.name.removesuffix(".npz")
    cache = Path(cache_dir) / f"{stem}-{member.name.removesuffix('.npy')}-{member.crc32:08x}-" \
                              f"{member.size}.npy"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(cache) as tmp:
                _unpack(member, tmp)
        except (zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise DataError(f"{member.path}: cannot unpack {member.name!r} (truncated or "
                            f"damaged?): {err}") from None
    mapped = np.load(cache, mmap_mode="r", allow_pickle=False)
    if mapped.shape != member.shape or mapped.dtype != member.dtype:
        raise DataError(f"{cache}: cached array has shape {mapped.shape}, expected "
                        f"{member.shape}; delete the file to rebuild it")
    return mapped


def _map_in_place(member: NpzMember) -> np.ndarray:
    """A stored member's data mapped from the zip itself (after its local and .npy headers)."""
    with zipfile.ZipFile(member.path) as zf:
        offset = zf.getinfo(member.name).header_offset
    with open(member.path, "rb") as fh:
        fh.seek(offset)
        header = fh.read(_LOCAL_HEADER.size)
        fields = _LOCAL_HEADER.unpack(header) if len(header) == _LOCAL_HEADER.size else None
        if fields is None or fields[0] != _LOCAL_MAGIC:
            raise DataError(f"{member.path}: damaged zip entry {member.name!r}")
        start = offset + _LOCAL_HEADER.size + fields[9] + fields[10]  # name and extra lengths
        fh.seek(start)
        _read_npy_header(fh, f"{member.path}: {member.name!r}")
        data = fh.tell()
    end = data + member.nbytes
    if os.path.getsize(member.path) < end:
        raise DataError(f"{member.path}: {member.name!r} ends early (truncated file: "
                        f"{os.path.getsize(member.path)} bytes, its data needs {end})")
    return np.memmap(member.path, dtype=member.dtype, mode="r", offset=data, shape=member.shape)


def _unpack(member: NpzMember, target: Path) -> None:
    out = np.lib.format.open_memmap(target, mode="w+", dtype=member.dtype, shape=member.shape)
    flat = out.reshape(-1).view(np.uint8)
    done = 0
    with zipfile.ZipFile(member.path) as zf, zf.open(member.name) as stream:
        _read_npy_header(stream, f"{member.path}: {member.name!r}")
        while done < member.nbytes:
            chunk = stream.read(min(_BLOCK_BYTES, member.nbytes - done))
            if not chunk:
                raise DataError(f"{member.path}: {member.name!r} ends early after {done} of "
                                f"{member.nbytes} bytes (truncated file)")
            flat[done:done + len(chunk)] = np.frombuffer(chunk, np.uint8)
            done += len(chunk)
    out.flush()
    del out, flat
