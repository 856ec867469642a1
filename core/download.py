"""Fetching one file over HTTP(S) into place: streamed in 1 MiB blocks (flat memory), resumed
with a Range request after a cut connection, checked for size and sha256, and renamed into
place only when whole.

Standard library only: pooch (the usual choice) deletes its temp file on any failure and sends
no Range header, so it cannot resume a 350 MB generator cut at 300 MB, and it does not check the
size the server announced. What is kept between tries:

- ``.NAME.part`` beside the destination: the bytes received so far (never at the final name);
- ``.NAME.part.json``: the URL, the total size and the server's validator (ETag or
  Last-Modified) of that transfer, so that a resume asks ``If-Range`` and a file changed on the
  server restarts from zero instead of being spliced onto old bytes.

A file that fails its size or digest check is deleted with its partial; a cut transfer keeps its
partial, and the next call resumes it.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from core.errors import BenchError
from core.hashing import file_sha256
from core.io import atomic_write_json, move_into_place, read_json

BLOCK = 1 << 20  # bytes read and written per step
USER_AGENT = "disentangle-bench"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")


class DownloadError(BenchError):
    """A file that could not be fetched or was refused; names the URL and the exact path where
    the user may put the file by hand. ``reachable`` is False when no server answered at all."""

    def __init__(self, url: str, dest: Path, reason: str, *, reachable: bool = True) -> None:
        self.url, self.dest, self.reason, self.reachable = url, dest, reason, reachable
        super().__init__(f"cannot download {url} ({reason}); put the file by hand at {dest}")


@dataclass(frozen=True)
class Expected:
    """What the fetched file must be (either may be None) and where that was learnt, for the
    error line: e.g. ``published`` or ``recorded in /cache/ffhq/manifest.json``."""

    sha256: str | None = None
    size: int | None = None
    origin: str = "expected"


class _Cut(Exception):
    """The connection ended before the whole file arrived; ``gained`` bytes were added."""

    def __init__(self, gained: int, have: int, total: int | None) -> None:
        super().__init__(gained)
        self.gained, self.have, self.total = gained, have, total


class _Restart(Exception):
    """The partial file cannot be resumed (the server's file changed); start from zero."""


def partial_path(dest: Path) -> Path:
    """Where the bytes of an unfinished download of ``dest`` are kept."""
    return dest.with_name(f".{dest.name}.part")


def _state_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.part.json")


def discard_partial(dest: Path) -> None:
    """Remove an unfinished download of ``dest`` (its bytes and its state)."""
    partial_path(dest).unlink(missing_ok=True)
    _state_path(dest).unlink(missing_ok=True)


def fetch(url: str, dest: str | os.PathLike[str], *, expected: Expected | None = None,
          progress: bool = False, retries: int = 3, timeout: float = 60.0) -> str:
    """Download ``url`` to ``dest`` and return the file's sha256 (hex).

    A cut connection is resumed up to ``retries`` times in this call as long as each try adds
    bytes, then left as a partial file for the next call. ``expected`` size and digest are
    checked before the rename; a mismatch deletes the download. Any failure is a DownloadError
    and leaves ``dest`` as it was. ``progress`` shows a tqdm bar on stderr.
    """
    dest = Path(dest)
    expected = expected or Expected()
    tries = 0
    restarted = False
    while True:
        try:
            _transfer(url, dest, expected, progress=progress, timeout=timeout)
            break
        except _Restart:
            discard_partial(dest)
            if restarted:
                raise DownloadError(url, dest, "the server's file changed during the "
                                    "download twice") from None
            restarted = True
        except _Cut as cut:
            if cut.gained > 0 and tries < retries:
                tries += 1
                continue
            if cut.total is None:  # no size announced: nothing to resume against
                discard_partial(dest)
                raise DownloadError(url, dest, f"connection cut after {cut.have:,} bytes of a "
                                    "file of unannounced size; nothing kept") from None
            raise DownloadError(url, dest, f"connection cut after {cut.have:,} of "
                                f"{cut.total:,} bytes; the partial file {partial_path(dest)} "
                                "is kept and a rerun resumes it") from None
    return _finish(url, dest, expected)


def _finish(url: str, dest: Path, expected: Expected) -> str:
    """Check the whole partial file against ``expected`` and rename it into place."""
    part = partial_path(dest)
    size = part.stat().st_size
    if expected.size is not None and size != expected.size:
        discard_partial(dest)
        raise DownloadError(url, dest, f"got {size:,} bytes, {expected.origin} "
                            f"{expected.size:,}; nothing kept")
    digest = file_sha256(part)
    if expected.sha256 is not None and digest != expected.sha256.lower():
        discard_partial(dest)
        raise DownloadError(url, dest, f"sha256 {digest}, {expected.origin} "
                            f"{expected.sha256.lower()}; nothing kept")
    move_into_place(part, dest)
    _state_path(dest).unlink(missing_ok=True)
    return digest


def _saved_state(dest: Path) -> dict[str, Any] | None:
    """The state of a resumable partial download of ``dest``, or None (partial dropped)."""
    part, state_file = partial_path(dest), _state_path(dest)
    if not part.is_file() or part.stat().st_size == 0:
        discard_partial(dest)
        return None
    try:
        state = read_json(state_file)
    except (OSError, BenchError):
        state = None
    if (not isinstance(state, dict) or not isinstance(state.get("total"), int)
            or part.stat().st_size >= state["total"]):
        discard_partial(dest)
        return None
    return state


def _transfer(url: str, dest: Path, expected: Expected, *, progress: bool,
              timeout: float) -> None:
    """One request: start or resume the partial file; returns once it holds the whole file
    (as far as the server said), raises _Cut, _Restart or DownloadError otherwise."""
    state = _saved_state(dest)
    have = partial_path(dest).stat().st_size if state is not None else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if state is not None:
        headers["Range"] = f"bytes={have}-"
        if state.get("validator"):
            headers["If-Range"] = state["validator"]
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as err:
        err.close()
        if err.code == 416 and state is not None:
            raise _Restart() from None
        raise DownloadError(url, dest, f"HTTP {err.code} {err.reason}") from None
    except URLError as err:
        raise DownloadError(url, dest, _network_reason(err.reason, timeout),
                            reachable=False) from None
    except (http.client.HTTPException, OSError, ValueError) as err:
        raise DownloadError(url, dest, _network_reason(err, timeout)) from None
    with response:
        if response.status not in (200, 206) or (response.status == 206 and state is None):
            raise DownloadError(url, dest, f"unexpected HTTP status {response.status}")
        total = _announced_total(response, have, state)
        if response.status == 200:
            have = 0  # a fresh transfer (or the server ignored the Range): start over
        if expected.size is not None and total is not None and total != expected.size:
            discard_partial(dest)
            raise DownloadError(url, dest, f"the server offers {total:,} bytes, "
                                f"{expected.origin} {expected.size:,}; nothing kept")
        if have == 0:
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(_state_path(dest), {
                "url": url, "total": total, "validator": _validator(response.headers)})
        _stream(response, url, dest, have, total, progress=progress)


def _announced_total(response: Any, have: int, state: dict[str, Any] | None) -> int | None:
    """The file's total size as the server announced it (None if it did not say). A 206 must
    continue the partial file exactly, else _Restart."""
    if response.status == 206 and state is not None:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
        if match is None or int(match[1]) != have or int(match[3]) != state["total"]:
            raise _Restart()
        return int(match[3])
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _stream(response: Any, url: str, dest: Path, have: int, total: int | None, *,
            progress: bool) -> None:
    """Copy the response body onto the partial file (appended from ``have``), block by block,
    then flush it to disk; a short body raises _Cut."""
    from tqdm import tqdm

    gained, cut = 0, False
    mode = "ab" if have else "wb"
    try:
        with open(partial_path(dest), mode) as out, tqdm(
                total=total, initial=have, desc=dest.name, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not progress, leave=False, dynamic_ncols=True,
                file=sys.stderr) as bar:
            while True:
                try:
                    block = response.read(BLOCK)
                except (http.client.HTTPException, OSError):
                    cut = True
                    break
                if not block:
                    break
                out.write(block)
                gained += len(block)
                bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
    except OSError as err:  # e.g. a full disk: what was written stays resumable
        raise DownloadError(url, dest, f"cannot write {partial_path(dest)} "
                            f"({err.strerror or err})") from None
    if cut or (total is not None and have + gained < total):
        raise _Cut(gained, have + gained, total)


def _validator(headers: Any) -> str | None:
    """A strong ETag, else Last-Modified: what ``If-Range`` may quote on a resume."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def _network_reason(reason: object, timeout: float) -> str:
    """A few words for why no (whole) answer came: refused, no such host, timed out, ..."""
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "host not found (offline?)"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error: {reason.reason or reason}"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[0].lower() + reason.strerror[1:]
    return str(reason) or type(reason).__name__


def url_host(url: str) -> str:
    """``host[:port]`` of ``url`` (which files share a server that did not answer)."""
    return urlsplit(url).netloc
