"""A small HTTP file server on 127.0.0.1 for download tests: serves bytes the test made, honours
``Range`` (and ``If-Range`` against its ETag), and can be told to cut a response after N bytes,
answer 404, ignore Range, or serve other bytes. Nothing leaves the machine."""

from __future__ import annotations

import hashlib
import posixpath
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    """What the server serves and what it saw: ``files`` by name (the last part of the path);
    ``cut_after[name] = n`` ends the next response for ``name`` after n body bytes (once);
    ``missing`` answers 404; ``ignore_range`` answers every request with the whole file;
    ``requests`` lists (name, Range header, If-Range header) in order."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    ignore_range: bool = False
    requests: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    port: int = 0

    def url(self, folder: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{folder}"

    def names(self) -> list[str]:
        """The names requested, in order."""
        return [name for name, _, _ in self.requests]


def etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            name = posixpath.basename(self.path)
            wanted, if_range = self.headers.get("Range"), self.headers.get("If-Range")
            served.requests.append((name, wanted, if_range))
            data = served.files.get(name)
            if data is None or name in served.missing:
                self.send_error(404, "Not Found")
                return
            start = 0
            resume = (wanted is not None and not served.ignore_range
                      and (if_range is None or if_range == etag(data)))
            if resume:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag(data))
            self.end_headers()
            cut = served.cut_after.pop(name, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def loopback_server(files: dict[str, bytes] | None = None) -> Iterator[Served]:
    """Serve ``files`` on 127.0.0.1 (a free port) in a thread for the ``with`` block."""
    served = Served(files=dict(files or {}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    server.daemon_threads = True
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port with nothing listening (bound, never listened on, so a connection is
    refused and no other process can take it meanwhile)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


_RESERVED: list[socket.socket] = []


def reserved_closed_port() -> int:
    """Like ``closed_port``, held for the rest of the test session (for case lists built when
    a test module is imported)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _RESERVED.append(sock)
    return sock.getsockname()[1]
