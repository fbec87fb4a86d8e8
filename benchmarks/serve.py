"""Serve the generated files over loopback HTTP and a moto S3 API, in a separate process.

The servers are the project's test servers (``tests/servers.py``):
:class:`RangeHTTPServer` (HTTP/1.1 keep-alive, ``Range``, per-request latency,
counters) and :class:`S3Server` (moto). They run in their own process so that
serving does not compete with the client for its interpreter lock; the
benchmark talks to that process through a pipe to reset and read counters.

moto has no latency setting, so its WSGI app is wrapped here with the same
per-request latency and request/byte counters as the HTTP server.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BUCKET", "Servers", "ServerCounts"]

TESTS = Path(__file__).resolve().parent.parent / "tests"
BUCKET = "bench"


@dataclass
class ServerCounts:
    """Requests and body bytes seen by a server, and the most requests in flight at once."""

    requests: int = 0
    bytes: int = 0
    max_in_flight: int = 0


class _TimedApp:
    """WSGI middleware: sleep ``latency`` before each request; count requests and body bytes."""

    def __init__(self, app: Any, latency: float) -> None:
        self.app = app
        self.latency = latency
        self.lock = threading.Lock()
        self.counts = ServerCounts()
        self.in_flight = 0

    def reset(self) -> None:
        with self.lock:
            self.counts = ServerCounts()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            self.counts.requests += 1
            self.in_flight += 1
            self.counts.max_in_flight = max(self.counts.max_in_flight, self.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            body = b"".join(self.app(environ, start_response))
        finally:
            with self.lock:
                self.in_flight -= 1
        with self.lock:
            self.counts.bytes += len(body)
        return [body]


def _serve(conn: Any, root: str, latency: float, with_s3: bool) -> None:
    """Body of the server process: start the servers, then answer commands on ``conn``."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    sys.path.insert(0, str(TESTS))
    from servers import RangeHTTPServer, S3Server

    http = RangeHTTPServer(root).start()
    http.set_faults(latency=latency)
    s3 = s3app = None
    if with_s3:
        s3 = S3Server(gate=False).start()  # every tool signs; no checks on the timed path
        wsgi = s3._server._server  # the werkzeug server inside ThreadedMotoServer
        s3.create_bucket(BUCKET)
        s3.upload_dir(BUCKET, root)
        s3app = _TimedApp(wsgi.app, latency)
        wsgi.app = s3app
    conn.send({"http": http.url(""), "s3": s3.endpoint_url if s3 else None})
    while True:
        cmd, arg = conn.recv()
        if cmd == "stop":
            break
        if cmd == "reset":
            if arg == "http":
                with http.lock:
                    http.stats.requests = http.stats.bytes_sent = http.stats.max_in_flight = 0
            elif s3app is not None:
                s3app.reset()
            conn.send(None)
        elif cmd == "counts":
            if arg == "http":
                st = http.stats
                conn.send(ServerCounts(st.requests, st.bytes_sent, st.max_in_flight))
            else:
                conn.send(s3app.counts if s3app is not None else ServerCounts())
        elif cmd == "latency":
            http.set_faults(latency=arg)
            if s3app is not None:
                s3app.latency = arg
            conn.send(None)
    http.stop()
    if s3 is not None:
        s3.stop()
    conn.send(None)


class Servers:
    """The HTTP range server (and optionally moto S3) in a child process.

    Parameters
    ----------
    root
        Directory to serve (and upload to the bucket :data:`BUCKET`).
    latency
        Seconds added before every answer.
    with_s3
        Also start moto and upload the files.

    Attributes
    ----------
    http_url
        ``http://127.0.0.1:port/``.
    s3_endpoint
        ``http://127.0.0.1:port`` of moto, or None.
    """

    s3_key = "testing"
    s3_secret = "testing"
    s3_region = "us-east-1"

    def __init__(self, root: str, latency: float, *, with_s3: bool = False) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, root, latency, with_s3), daemon=True)
        self._proc.start()
        urls = self._conn.recv()
        self.http_url: str = urls["http"]
        self.s3_endpoint: str | None = urls["s3"]
        self.latency = latency

    def _ask(self, cmd: str, arg: Any = None) -> Any:
        self._conn.send((cmd, arg))
        return self._conn.recv()

    def reset(self, which: str = "http") -> None:
        """Zero the counters of ``which`` (``"http"`` or ``"s3"``)."""
        self._ask("reset", which)

    def counts(self, which: str = "http") -> ServerCounts:
        """Counters of ``which`` since the last reset."""
        return self._ask("counts", which)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the serving process has used so far, seconds."""
        import psutil

        proc = psutil.Process(self._proc.pid)
        return sum(t.user + t.system for t in (p.cpu_times() for p in (proc, *proc.children())))

    def set_latency(self, seconds: float) -> None:
        """Change the injected latency of both servers."""
        self._ask("latency", seconds)
        self.latency = seconds

    def stop(self) -> None:
        """Stop the servers and their process."""
        if self._proc.is_alive():
            self._ask("stop")
            self._proc.join(10)

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
