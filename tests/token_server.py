"""A SAS token API and an Azure-blob-like range server that checks its tokens, on 127.0.0.1.

Planetary Computer's shape: ``GET /token/{account}/{container}`` answers
``{"token": "sv=...&se=...&sig=...", "msft:expiry": "...Z"}``; the blob server
serves ``/{account}/{container}/{blob}`` (Azurite's path style) with ranged
GETs and answers 403 ``AuthenticationFailed`` (Azure's XML body) to a request
whose token is missing, unknown, revoked, expired or for another container::

    with SASServers(directory, lifetime=2.0) as sas:
        sign = PlanetaryComputerSigner(sas_api=sas.api_url)
        url = sas.blob_url("acct/cont/a.tif")   # unsigned; sign(url) reads

Nothing here imports pytest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pyarrow as pa

import xarray_rasteret as xrr
from cogs import with_datetimes
from servers import RangeHTTPServer
from xarray_rasteret.collection import Collection

__all__ = ["BLOBS", "SASServers", "rehost", "signed_collection"]

BLOBS = "acct/cont"
"""Where the tests' blobs are: account ``acct``, container ``cont``."""

_AUTH_FAILED = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
    "<Message>Server failed to authenticate the request. Make sure the value of "
    "Authorization header is formed correctly including the signature.</Message>"
    "<AuthenticationErrorDetail>{detail}</AuthenticationErrorDetail></Error>"
)


@dataclass
class Issued:
    """The tokens the token API handed out, shared with the blob server."""

    lifetime: float
    tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    """sig -> (account, container, expiry as time.time())."""
    revoked: set[str] = field(default_factory=set)
    refused: int = 0
    """Blob requests answered 403."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.tokens)

    def issue(self, account: str, container: str) -> dict[str, str]:
        sig = secrets.token_urlsafe(24)
        expires = time.time() + self.lifetime
        with self.lock:
            self.tokens[sig] = (account, container, expires)
        se = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        token = f"sv=2024-05-04&se={quote(se)}&sr=c&sp=rl&sig={quote(sig)}"
        return {"token": token, "msft:expiry": se}

    def revoke_all(self) -> None:
        """Revoke every token issued so far (a key rotation: they stop working early)."""
        with self.lock:
            self.revoked |= set(self.tokens)

    def check(self, account: str, container: str, query: str) -> str | None:
        """Why a request with ``query`` is refused, or None if its token is good."""
        params = dict(parse_qsl(query))
        sig = params.get("sig")
        with self.lock:
            if sig is None:
                return "no signature"
            if sig not in self.tokens or sig in self.revoked:
                return "Signature did not match"
            acct, cont, expires = self.tokens[sig]
        if (acct, cont) != (account, container):
            return "Signature not valid for this resource"
        if time.time() > expires:
            return "Signed expiry time has passed"
        return None

    def all_tokens(self) -> list[str]:
        with self.lock:
            return list(self.tokens)


class _TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TokenServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = unquote(urlsplit(self.path).path).strip("/").split("/")
        srv = self.server
        if srv.key is not None and self.headers.get("Ocp-Apim-Subscription-Key") != srv.key:
            return self._answer(403, {"message": "subscription key required"})
        if parts[:3] != ["api", "sas", "v1"] or len(parts) != 6 or parts[3] != "token":
            return self._answer(404, {"message": "not found"})
        return self._answer(200, srv.issued.issue(parts[4], parts[5]))

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class TokenServer(ThreadingHTTPServer):
    """``GET /api/sas/v1/token/{account}/{container}``: a token of ``issued.lifetime`` seconds."""

    daemon_threads = True

    def __init__(self, issued: Issued, key: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.issued = issued
        self.key = key


class BlobServer(RangeHTTPServer):
    """A range server over a directory of ``account/container/blob`` files, checking SAS tokens."""

    def __init__(self, directory: str | os.PathLike[str], issued: Issued) -> None:
        super().__init__(directory)
        self.issued = issued

    def admit(self, handler: BaseHTTPRequestHandler) -> str | tuple[int, dict[str, str], bytes]:
        parts = urlsplit(handler.path)
        rel = unquote(parts.path).lstrip("/")
        account, _, rest = rel.partition("/")
        container = rest.partition("/")[0]
        why = self.issued.check(account, container, parts.query)
        if why is None:
            return rel
        with self.issued.lock:
            self.issued.refused += 1
        body = _AUTH_FAILED.format(detail=why).encode()
        headers = {"Content-Type": "application/xml", "x-ms-error-code": "AuthenticationFailed"}
        return 403, headers, body


class SASServers:
    """A token API and a blob server sharing their tokens; a context manager.

    Parameters
    ----------
    directory
        Served at ``/``: files at ``account/container/blob``.
    lifetime
        Seconds each token is valid.
    key
        A subscription key the token API requires (``Ocp-Apim-Subscription-Key``).
    """

    def __init__(
        self, directory: str | os.PathLike[str], lifetime: float = 60.0, key: str | None = None
    ) -> None:
        self.issued = Issued(lifetime)
        self.tokens = TokenServer(self.issued, key)
        self.blobs = BlobServer(directory, self.issued)
        self._thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        """The SAS API base URL (tokens at ``{api_url}/token/{account}/{container}``)."""
        host, port = self.tokens.server_address[:2]
        return f"http://{host}:{port}/api/sas/v1"

    def blob_url(self, name: str = "") -> str:
        """The unsigned URL of ``name`` (``account/container/blob``)."""
        return self.blobs.url(name)

    def __enter__(self) -> SASServers:
        self.blobs.start()
        self._thread = threading.Thread(
            target=self.tokens.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.tokens.shutdown()
        self.tokens.server_close()
        if self._thread is not None:
            self._thread.join()
        self.blobs.stop()


def write_blobs(root: Path, *, width: int, height: int, seed: int, **kw: Any) -> Path:
    """Three dated-to-be one-band COGs at ``root/acct/cont/s{i}_B04.tif``; returns ``root``."""
    from affine import Affine

    from cogs import write_tiff

    (root / BLOBS).mkdir(parents=True)
    for i in range(3):
        write_tiff(
            root / BLOBS / f"s{i}_B04.tif", dtype="uint16", width=width, height=height,
            compress="DEFLATE", nodata=0, seed=seed + i,
            transform=Affine(10.0, 0, 600_000.0, 0, -10.0, 5_000_000.0), **kw,
        )
    return root


def rehost(table: pa.Table, pairs: Iterable[tuple[str, str]]) -> pa.Table:
    """``table`` with each asset href's prefix ``old`` replaced by ``new`` (for each pair)."""
    pairs = list(pairs)
    column = table.column("assets")
    rows = column.to_pylist()
    for row in rows:
        items = row.items() if isinstance(row, dict) else row
        for entry in items:
            value = entry[1]
            if value and value.get("href"):
                for old, new in pairs:
                    if value["href"].startswith(old):
                        value["href"] = new + value["href"][len(old) :]
    i = table.column_names.index("assets")
    return table.set_column(i, "assets", pa.array(rows, column.type))


def _group(href: str) -> tuple[str, str]:
    stem = href.rsplit("/", 1)[-1].removesuffix(".tif")
    rid, band = stem.rsplit("_", 1)
    return rid, band


def signed_collection(root: str | os.PathLike[str], sas: SASServers, n: int = 3) -> Collection:
    """``BLOBS/s{i}_B04.tif`` indexed through a plain range server, hrefs moved to ``sas``.

    The plain server serves the same files, so sizes and ETags match the blob server's.
    """
    with RangeHTTPServer(root) as plain:
        col = xrr.build([plain.url(f"{BLOBS}/s{i}_B04.tif") for i in range(n)], group_by=_group)
        start = dt.date(2024, 1, 1)
        when = {f"s{i}": (start + dt.timedelta(days=i)).isoformat() for i in range(n)}
        table = with_datetimes(col.table, when)
        return Collection(rehost(table, [(plain.url(), sas.blob_url())]))
