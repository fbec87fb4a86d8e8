"""Misbehaving HTTP servers on 127.0.0.1, and reads against them in guarded subprocesses.

Nothing here imports pytest. :class:`HostileServer` speaks raw HTTP/1.1 over
sockets (``http.server`` cannot send a broken status line, an endless body or
a body longer than its headers), and picks its misbehaviour from the first
segment of the path: ``/<mode>/obj.bin?size=N``. The object it serves is
virtual: byte ``i`` is ``BLOB[i % len(BLOB)]``, so a 40 MiB object costs no
memory and a stream can run on for ever. Every request's path and headers are
recorded in ``server.seen`` (to check what reached another origin).

The guarded runner that reads every mode is :mod:`hostile_reads`.
"""

from __future__ import annotations

import random
import re
import select
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["BLOB", "MODES", "SECRETS", "SIZE", "HostileServer", "object_bytes"]

BLOB = random.Random(21).randbytes(1 << 16)
SIZE = 40 << 20
"""Size of the virtual object the fuzz reads (past the client's MAX_SKIP)."""

SECRETS = {
    "query_signature": "SIGSECRETq8w7e6r5",
    "query_token": "TOKSECRETz1x2c3v4",
    "authorization": "AUTHSECRETm9n8b7v6",
    "api_key": "KEYSECRETp0o9i8u7",
    "cookie": "COOKIESECRETl1k2j3",
}


def object_bytes(start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of the virtual object."""
    n = len(BLOB)
    out = bytearray()
    pos = start
    while pos < end:
        k = pos % n
        take = min(n - k, end - pos)
        out += BLOB[k : k + take]
        pos += take
    return bytes(out)


# --------------------------------------------------------------------------- server


@dataclass
class Request:
    """One request as the server parsed it."""

    path: str
    mode: str
    headers: dict[str, str]
    size: int
    first: int
    last: int
    ranged: bool
    satisfiable: bool


class _Handler(socketserver.BaseRequestHandler):
    server: HostileServer

    def handle(self) -> None:
        self.request.settimeout(10.0)
        self.buffer = b""
        try:
            while not self.server.stopping.is_set():
                req = self._read_request()
                if req is None:
                    return
                with self.server.lock:
                    self.server.seen.append((req.path, req.headers))
                    self.server.counter[req.mode] += 1
                # A range past the end gets a plain 416 from the modes that serve ranges
                # (their misbehaviour is about what they send for a range that exists).
                if not req.satisfiable and req.mode in _SERVES_RANGES:
                    action = _ok
                else:
                    action = MODES.get(req.mode, _ok)
                if not action(self, req):
                    return
        except OSError:  # the client hung up: expected with every misbehaviour here
            return

    def _read_request(self) -> Request | None:
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > 65536:
                return None
            chunk = self.request.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        _, target, _ = (lines[0].split(" ") + ["", ""])[:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts = urlsplit(target)
        mode = parts.path.strip("/").split("/")[0]
        size = int(parse_qs(parts.query).get("size", [str(SIZE)])[0])
        first, last, ranged, ok = 0, size - 1, False, size > 0
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("range", ""))
        if m:
            ranged = True
            first = int(m[1])
            last = min(int(m[2]) if m[2] else size - 1, size - 1)
            ok = first < size and first <= last
        return Request(parts.path, mode, headers, size, first, last, ranged, ok)

    # -- writing ----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.request.sendall(data)

    def answer(
        self,
        status: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        length: bool = True,
    ) -> None:
        """Send a status line, headers and body (``length``: add Content-Length)."""
        lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers)]
        if length:
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def stream(self, start: int, limit: int | None = None, pause: float = 0.0) -> None:
        """Send the object from ``start`` on (``limit`` bytes, or until the client hangs up)."""
        pos, sent = start, 0
        step = 1 if pause else 65536
        while limit is None or sent < limit:
            if self.server.stopping.is_set():
                return
            n = step if limit is None else min(step, limit - sent)
            self.send(object_bytes(pos, pos + n))
            pos, sent = pos + n, sent + n
            if pause and self.server.stopping.wait(pause):
                return

    def hold(self, seconds: float = 30.0) -> None:
        """Keep the connection open, saying nothing, until the client leaves or time is up."""
        end = seconds
        while end > 0 and not self.server.stopping.is_set():
            readable, _, _ = select.select([self.request], [], [], 0.1)
            if readable and not self.request.recv(65536):
                return
            end -= 0.1


def _range_headers(req: Request) -> list[tuple[str, str]]:
    return [("ETag", '"v1"'), ("Content-Range", f"bytes {req.first}-{req.last}/{req.size}")]


def _partial_head(h: _Handler, req: Request, n: int) -> None:
    headers = [*_range_headers(req), ("Content-Length", str(n))]
    h.answer("206 Partial Content", headers, length=False)


def _ok(h: _Handler, req: Request) -> bool:
    """A correct range server (keep-alive)."""
    if not req.satisfiable:
        h.answer("416 Range Not Satisfiable", [("Content-Range", f"bytes */{req.size}")])
        return True
    n = req.last + 1 - req.first
    status = "206 Partial Content" if req.ranged else "200 OK"
    headers = _range_headers(req) if req.ranged else [("ETag", '"v1"')]
    h.answer(status, [*headers, ("Content-Length", str(n))], length=False)
    h.stream(req.first, n)
    return True


def _ignore_range(h: _Handler, req: Request) -> bool:
    h.answer("200 OK", [("ETag", '"v1"'), ("Content-Length", str(req.size))], length=False)
    h.stream(0, req.size)
    return True


def _ignore_range_close(h: _Handler, req: Request) -> bool:
    h.answer("200 OK", [("ETag", '"v1"'), ("Connection", "close")], length=False)
    h.stream(0, req.size)
    return False


def _endless_200(h: _Handler, req: Request) -> bool:
    h.answer("200 OK", [("Connection", "close")], length=False)
    h.stream(0)
    return False


def _endless_chunked(h: _Handler, req: Request) -> bool:
    h.answer("200 OK", [("Transfer-Encoding", "chunked")], length=False)
    pos = 0
    while not h.server.stopping.is_set():
        h.send(b"10000\r\n" + object_bytes(pos, pos + 65536) + b"\r\n")
        pos += 65536
    return False


def _endless_206(h: _Handler, req: Request) -> bool:
    h.answer("206 Partial Content", [*_range_headers(req), ("Connection", "close")], length=False)
    h.stream(req.first)
    return False


def _huge_length_206(h: _Handler, req: Request) -> bool:
    headers = [*_range_headers(req), ("Content-Length", str(10**12))]
    h.answer("206 Partial Content", headers, length=False)
    h.stream(req.first)
    return False


def _long_206(h: _Handler, req: Request) -> bool:
    """A correct 206, then 100 KB more on the same keep-alive connection."""
    n = req.last + 1 - req.first
    _partial_head(h, req, n)
    h.stream(req.first, n + 100_000)
    return True


def _wrong_range(h: _Handler, req: Request) -> bool:
    """Content-Range and body shifted one byte on from the range asked."""
    first, last = req.first + 1, req.last + 1
    n = last + 1 - first
    headers = [("Content-Range", f"bytes {first}-{last}/{req.size}"), ("Content-Length", str(n))]
    h.answer("206 Partial Content", headers, length=False)
    h.stream(first, n)
    return True


def _other_range(h: _Handler, req: Request) -> bool:
    headers = [("Content-Range", f"bytes 0-99/{req.size}")]
    h.answer("206 Partial Content", headers, object_bytes(0, 100))
    return True


def _short_range(h: _Handler, req: Request) -> bool:
    """A consistent 206 of the first half of the range asked (a server capping ranges)."""
    last = req.first + max((req.last - req.first) // 2, 0) if req.last > req.first else req.last
    if req.last + 1 == req.size and req.last > req.first:
        last = req.last - 1
    headers = [("ETag", '"v1"'), ("Content-Range", f"bytes {req.first}-{last}/{req.size}")]
    h.answer("206 Partial Content", headers, object_bytes(req.first, last + 1))
    return True


def _bad_content_range(h: _Handler, req: Request) -> bool:
    h.answer("206 Partial Content", [("Content-Range", "bananas")], object_bytes(0, 10))
    return True


def _no_content_range(h: _Handler, req: Request) -> bool:
    h.answer("206 Partial Content", [], object_bytes(req.first, req.last + 1))
    return True


def _short_body(h: _Handler, req: Request) -> bool:
    n = req.last + 1 - req.first
    _partial_head(h, req, n)
    h.stream(req.first, n // 2)
    return False


def _slow_drip(h: _Handler, req: Request) -> bool:
    n = req.last + 1 - req.first
    _partial_head(h, req, n)
    h.stream(req.first, n, pause=0.05)
    return False


def _stall(h: _Handler, req: Request) -> bool:
    h.hold()
    return False


def _stall_headers(h: _Handler, req: Request) -> bool:
    for ch in b"HTTP/1.1 206 Partial Content\r\nContent-Type: text/plain\r\n":
        h.send(bytes([ch]))
        if h.server.stopping.wait(0.05):
            break
    h.hold()
    return False


def _redirect(location: Callable[[_Handler, Request], str], status: str = "302 Found") -> Any:
    def act(h: _Handler, req: Request) -> bool:
        h.answer(status, [("Location", location(h, req))])
        return True

    return act


def _next_hop(h: _Handler, req: Request) -> str:
    segments = req.path.strip("/").split("/")
    n = int(segments[1]) if len(segments) == 3 else 0
    return f"/redirect_chain/{n + 1}/obj.bin?size={req.size}"


def _other_origin(h: _Handler, req: Request) -> str:
    return f"{h.server.elsewhere}/ok/obj.bin?size={req.size}"


def _no_location(h: _Handler, req: Request) -> bool:
    h.answer("302 Found", [])
    return True


def _status(status: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> Any:
    def act(h: _Handler, req: Request) -> bool:
        h.answer(status, headers, body)
        return True

    return act


def _raw(data: bytes, *, then_hold: bool = False) -> Any:
    def act(h: _Handler, req: Request) -> bool:
        h.send(data)
        if then_hold:
            h.hold(5.0)
        return False

    return act


def _huge_header(h: _Handler, req: Request) -> bool:
    h.answer("206 Partial Content", [("X-Filler", "a" * (1 << 20)), *_range_headers(req)])
    return False


def _many_headers(h: _Handler, req: Request) -> bool:
    h.answer("206 Partial Content", [(f"X-H{i}", "v") for i in range(100_000)])
    return False


def _error_endless(status: str) -> Any:
    def act(h: _Handler, req: Request) -> bool:
        h.answer(status, [("Connection", "close")], length=False)
        h.stream(0)
        return False

    return act


def _reset(h: _Handler, req: Request) -> bool:
    h.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return False


def _etag_flip(h: _Handler, req: Request) -> bool:
    with h.server.lock:
        h.server.flips += 1
        tag = f'"v{h.server.flips}"'
    n = req.last + 1 - req.first
    headers = [("ETag", tag), ("Content-Range", f"bytes {req.first}-{req.last}/{req.size}")]
    h.answer("206 Partial Content", [*headers, ("Content-Length", str(n))], length=False)
    h.stream(req.first, n)
    return True


MODES: dict[str, Callable[[_Handler, Request], bool]] = {
    "ok": _ok,
    "ignore_range": _ignore_range,
    "ignore_range_close": _ignore_range_close,
    "endless_200": _endless_200,
    "endless_chunked": _endless_chunked,
    "endless_206": _endless_206,
    "huge_length_206": _huge_length_206,
    "long_206": _long_206,
    "wrong_range": _wrong_range,
    "other_range": _other_range,
    "short_range": _short_range,
    "bad_content_range": _bad_content_range,
    "no_content_range": _no_content_range,
    "short_body": _short_body,
    "slow_drip": _slow_drip,
    "stall": _stall,
    "stall_headers": _stall_headers,
    "redirect_loop": _redirect(lambda h, r: r.path + f"?size={r.size}"),
    "redirect_chain": _redirect(_next_hop),
    "redirect_other": _redirect(_other_origin),
    "redirect_same": _redirect(lambda h, r: f"/ok/obj.bin?size={r.size}", "307 Temporary Redirect"),
    "redirect_no_location": _no_location,
    "redirect_bad_scheme": _redirect(lambda h, r: "file:///etc/passwd"),
    "redirect_garbage": _redirect(lambda h, r: "http://[::1"),
    "status_416": _status("416 Range Not Satisfiable", [("Content-Range", "bytes */10")]),
    "status_416_bare": _status("416 Range Not Satisfiable"),
    "status_204": _status("204 No Content"),
    "status_304": _status("304 Not Modified"),
    "status_999": _status("999 Whatever"),
    "status_500_endless": _error_endless("500 Internal Server Error"),
    "status_404_endless": _error_endless("404 Not Found"),
    "status_100_then_nothing": _raw(b"HTTP/1.1 100 Continue\r\n\r\n", then_hold=True),
    "garbage_status": _raw(b"HELLO WORLD\r\n\r\n"),
    "binary_garbage": _raw(random.Random(3).randbytes(4096)),
    "huge_reason": _raw(b"HTTP/1.1 206 " + b"x" * (1 << 20) + b"\r\n\r\n"),
    "huge_header": _huge_header,
    "many_headers": _many_headers,
    "bad_content_length": _raw(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nxyz"),
    "negative_content_length": _raw(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nxyz"),
    "broken_chunks": _raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"),
    "close_at_once": _raw(b""),
    "reset": _reset,
    "etag_flip": _etag_flip,
}


_SERVES_RANGES = frozenset({
    "endless_206", "huge_length_206", "long_206", "wrong_range", "short_range", "no_content_range",
    "short_body", "slow_drip", "etag_flip",
})


class HostileServer(socketserver.ThreadingTCPServer):
    """A raw HTTP/1.1 server on 127.0.0.1 misbehaving as the path's first segment says.

    ``elsewhere`` is the origin a ``redirect_other`` answer points to.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, elsewhere: str = "") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.elsewhere = elsewhere
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.counter: Counter[str] = Counter()
        self.flips = 0
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, mode: str, size: int = SIZE, query: str = "") -> str:
        """The URL of the virtual object under ``mode``, with ``query`` appended."""
        return f"{self.origin}/{mode}/obj.bin?size={size}" + (f"&{query}" if query else "")

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on every misbehaviour: that is the point

    def start(self) -> HostileServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wake every handler that waits or streams."""
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
