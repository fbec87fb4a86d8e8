"""Real servers on 127.0.0.1 for tests and benchmarks: an HTTP range server and moto S3.

Nothing here imports pytest, so benchmarks can use the servers too::

    with RangeHTTPServer(directory) as server:
        server.set_faults(latency=0.04)
        url = server.url("a.tif")

:class:`RangeHTTPServer` serves a directory over HTTP/1.1 keep-alive with
``Range``, ``HEAD``, ``ETag`` and ``Content-Range``; it counts requests,
bytes, connections and concurrent in-flight requests as seen by the server,
and injects faults at runtime (status codes, dropped connections, truncated
bodies, stalls, latency) drawn from a seeded RNG.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from s3_gate import S3Gate

__all__ = ["Faults", "RangeHTTPServer", "S3Server", "ServerStats"]


@dataclass
class Faults:
    """Fault injection settings; probabilities are per request and exclusive."""

    p_503: float = 0.0
    """Fraction of requests answered ``503 Slow Down``."""
    p_500: float = 0.0
    """Fraction answered ``500 Internal Server Error``."""
    p_429: float = 0.0
    """Fraction answered ``429 Too Many Requests``."""
    p_drop: float = 0.0
    """Fraction whose connection is reset halfway through the body."""
    p_truncate: float = 0.0
    """Fraction whose body stops short of its ``Content-Length`` (then the connection closes)."""
    p_slow: float = 0.0
    """Fraction that stall ``slow_seconds`` before answering."""
    slow_seconds: float = 2.0
    """How long a stalled request waits (longer than the client's timeout)."""
    latency: float = 0.0
    """Seconds added before every answer (a round trip to a distant server)."""
    forbidden: frozenset[str] = frozenset()
    """Paths (relative to the served directory) answered 403."""
    missing: frozenset[str] = frozenset()
    """Paths answered 404 even if they exist."""
    ignore_range: bool = False
    """Answer ``200`` with the whole file, as servers without range support do."""
    seed: int = 0
    """Seed of the RNG drawing the faults."""


@dataclass
class ServerStats:
    """Counters measured at the server."""

    requests: int = 0
    bytes_sent: int = 0
    connections: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults: dict[str, int] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RangeHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.stats.connections += 1

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        srv = self.server
        srv.enter()
        try:
            fault = srv.draw()
            if srv.faults.latency:
                srv.stopping.wait(srv.faults.latency)
            self._respond(head, fault)
        finally:
            srv.leave()

    def _plain(self, code: int, extra: dict[str, str] | None = None) -> None:
        body = f"{code} {self.responses.get(code, ('',))[0]}\n".encode()
        self.send_response(code)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self._write(body)

    def _write(self, data: bytes) -> None:
        self.wfile.write(data)
        with self.server.lock:
            self.server.stats.bytes_sent += len(data)

    def send_answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        """Send a complete answer (a refusal or redirect of :meth:`RangeHTTPServer.admit`)."""
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self._write(body)

    def _respond(self, head: bool, fault: str | None) -> None:
        srv = self.server
        admitted = srv.admit(self)
        if not isinstance(admitted, str):
            return self.send_answer(*admitted)
        rel = admitted
        target = os.path.realpath(os.path.join(srv.root, rel))
        if rel in srv.faults.forbidden:
            return self._plain(403)
        if rel in srv.faults.missing or not target.startswith(srv.root + os.sep):
            return self._plain(404)
        if not os.path.isfile(target):
            return self._plain(404)
        if fault == "slow":
            srv.stopping.wait(srv.faults.slow_seconds)
        elif fault in ("503", "500", "429"):
            return self._plain(int(fault), {"Retry-After": "0"} if fault == "429" else None)
        st = os.stat(target)
        size = st.st_size
        etag = f'"{size:x}-{st.st_mtime_ns:x}"'
        first, last = 0, size - 1
        status = 200
        spec = self.headers.get("Range")
        if spec and not srv.faults.ignore_range:
            parsed = _parse_range(spec, size)
            if parsed is None:
                return self._plain(416, {"Content-Range": f"bytes */{size}", "ETag": etag})
            first, last = parsed
            status = 206
        length = last + 1 - first
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        for k, v in srv.object_headers(rel, size).items():
            self.send_header(k, v)
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if head:
            return None
        with open(target, "rb") as f:
            if fault not in ("drop", "truncate") or length <= 1:
                # Zero-copy, as a real server does: the loopback server's CPU is
                # taken from the client's cores, which a remote server's is not.
                sent = self.connection.sendfile(f, first, length)
                with srv.lock:
                    srv.stats.bytes_sent += sent
                return None
            f.seek(first)
            body = f.read(length)
        if fault == "drop":
            self._write(body[: len(body) // 2])
            # SO_LINGER 0: closing sends a reset, not an orderly end.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return None
        self._write(body[: len(body) // 2])  # truncate
        self.connection.shutdown(socket.SHUT_WR)
        self.close_connection = True
        return None


def _parse_range(spec: str, size: int) -> tuple[int, int] | None:
    """Parse one ``bytes=a-b`` / ``a-`` / ``-n`` range; None if unsatisfiable."""
    unit, _, ranges = spec.partition("=")
    if unit.strip() != "bytes" or "," in ranges:
        return None
    a, _, b = ranges.strip().partition("-")
    if a == "":
        n = int(b)
        return (max(size - n, 0), size - 1) if n > 0 and size > 0 else None
    first = int(a)
    last = min(int(b), size - 1) if b else size - 1
    return (first, last) if first < size and first <= last else None


class RangeHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 range server over ``directory``, with counters and faults.

    Parameters
    ----------
    directory
        The directory served at ``/``.
    port
        0 picks a free port.
    host
        The loopback address to listen on (``127.0.0.2`` makes a second host).
    """

    daemon_threads = True
    request_queue_size = 256  # many clients connect at once in concurrency tests

    def __init__(
        self, directory: str | os.PathLike[str], port: int = 0, host: str = "127.0.0.1"
    ) -> None:
        super().__init__((host, port), _Handler)
        self.root = os.path.realpath(directory)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.stats = ServerStats()
        self.faults = Faults()
        self._rng = random.Random(0)
        self._thread: threading.Thread | None = None

    # -- configuration ----------------------------------------------------------------

    def set_faults(self, **settings: Any) -> Faults:
        """Replace the fault settings (keywords of :class:`Faults`) and reseed the RNG."""
        names = {f.name for f in fields(Faults)}
        unknown = set(settings) - names
        if unknown:
            raise TypeError(f"unknown fault settings {sorted(unknown)}")
        for key in ("forbidden", "missing"):
            if key in settings:
                settings[key] = frozenset(settings[key])
        with self.lock:
            self.faults = Faults(**settings)
            self._rng = random.Random(self.faults.seed)
        return self.faults

    def reset(self) -> None:
        """Clear faults and counters."""
        self.set_faults()
        with self.lock:
            self.stats = ServerStats()

    def url(self, name: str = "") -> str:
        """Return the URL of ``name`` (relative to the served directory)."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/{name}"

    # -- what a subclass (a cloud-shaped server) changes -------------------------------

    def admit(self, handler: BaseHTTPRequestHandler) -> str | tuple[int, dict[str, str], bytes]:
        """The file (relative to the root) a request asks for, or a whole answer to send.

        Subclasses check credentials here and answer ``(status, headers, body)``
        for refusals and redirects.
        """
        return unquote(urlsplit(handler.path).path).lstrip("/")

    def object_headers(self, rel: str, size: int) -> dict[str, str]:
        """Extra headers of an answer serving ``rel`` (``size`` bytes)."""
        return {}

    # -- accounting -------------------------------------------------------------------

    def enter(self) -> None:
        with self.lock:
            self.stats.requests += 1
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.stats.in_flight -= 1

    def draw(self) -> str | None:
        """Pick this request's fault (or None) from the seeded RNG."""
        f = self.faults
        with self.lock:
            x = self._rng.random()
            edge = 0.0
            for name, p in (
                ("503", f.p_503),
                ("500", f.p_500),
                ("429", f.p_429),
                ("drop", f.p_drop),
                ("truncate", f.p_truncate),
                ("slow", f.p_slow),
            ):
                edge += p
                if x < edge:
                    self.stats.faults[name] = self.stats.faults.get(name, 0) + 1
                    return name
        return None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up on stalled or faulty answers; that is expected here.
        pass

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> RangeHTTPServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled handlers and close the socket."""
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> RangeHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class S3Server:
    """moto's S3 API in server mode on 127.0.0.1, with helpers to fill buckets.

    The dummy credentials are passed to the helper client explicitly; set
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` only where a test needs them.
    With ``gate=True`` (the default) requests pass :class:`s3_gate.S3Gate`
    first (``self.gate``): signatures made with the dummy keys are checked,
    and tests can script S3 error answers and bucket regions.
    """

    region = "us-east-1"
    key = "testing"
    secret = "testing"

    def __init__(self, port: int = 0, *, gate: bool = True) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint_url = ""
        self._client: Any = None
        self._use_gate = gate
        self.gate: S3Gate | None = None

    def start(self) -> S3Server:
        """Start moto in a thread."""
        self._server.start()
        if self._use_gate:
            wsgi = self._server._server  # the werkzeug server inside ThreadedMotoServer
            self.gate = S3Gate(wsgi.app, {self.key: self.secret})
            wsgi.app = self.gate
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Stop moto."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._server.stop()

    @property
    def client(self) -> Any:
        """A synchronous boto3 client for setting up data."""
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=self.key,
                aws_secret_access_key=self.secret,
            )
        return self._client

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (no error if it exists)."""
        try:
            self.client.create_bucket(Bucket=bucket)
        except self.client.exceptions.BucketAlreadyOwnedByYou:
            pass

    def upload(self, bucket: str, key: str, data: bytes, *, public: bool = False) -> str:
        """Put ``data`` at ``s3://bucket/key`` and return its ETag (without quotes).

        ``public=True`` makes the object anonymously readable (``public-read`` ACL).
        """
        extra = {"ACL": "public-read"} if public else {}
        resp = self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
        return str(resp["ETag"]).strip('"')

    def upload_dir(self, bucket: str, directory: str | os.PathLike[str], prefix: str = "") -> None:
        """Upload every file under ``directory`` to ``bucket`` (keys relative to it)."""
        for dirpath, _, names in os.walk(directory):
            for name in names:
                path = os.path.join(dirpath, name)
                key = prefix + os.path.relpath(path, directory).replace(os.sep, "/")
                with open(path, "rb") as f:
                    self.upload(bucket, key, f.read())

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
