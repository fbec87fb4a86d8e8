"""Cloud-shaped servers on loopback: Google Cloud Storage, Azure Blob, and an Earthdata login chain.

Each is a :class:`servers.RangeHTTPServer` (ranged GETs, ETags, faults, counters)
whose :meth:`~servers.RangeHTTPServer.admit` speaks the service's conventions:
its URL layout, its required headers, its credentials and its error documents.
Every request's path and headers are kept in ``seen``, so tests can assert what
each host was sent (which credentials went where).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from servers import RangeHTTPServer

__all__ = ["AzureServer", "EarthdataServers", "GCSServer", "Seen"]

Answer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class _Recording(RangeHTTPServer):
    """A range server that records each request's path and headers before admitting it."""

    def __init__(self, directory: str | os.PathLike[str], host: str = "127.0.0.1") -> None:
        super().__init__(directory, host=host)
        self.seen: list[Seen] = []

    def admit(self, handler: BaseHTTPRequestHandler) -> str | Answer:
        with self.lock:
            self.seen.append(Seen(handler.path, dict(handler.headers.items())))
        return self.decide(handler, urlsplit(handler.path))

    def decide(self, handler: BaseHTTPRequestHandler, url: Any) -> str | Answer:
        return unquote(url.path).lstrip("/")

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.seen = []


def _xml_error(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> Answer:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return status, {"Content-Type": "application/xml; charset=UTF-8", **(extra or {})}, body


class GCSServer(_Recording):
    """storage.googleapis.com's XML and JSON-media URL layouts over ``root/BUCKET/KEY``.

    Buckets in ``public`` are read anonymously; the others need
    ``Authorization: Bearer <token>``: none is 403 ``AccessDenied``, a wrong one
    401 ``AuthenticationRequired``, as GCS answers. Answers carry
    ``x-goog-stored-content-length`` and ``x-goog-generation``.
    """

    def __init__(self, directory: str | os.PathLike[str], token: str, public: set[str]) -> None:
        super().__init__(directory)
        self.token = token
        self.public = public

    def decide(self, handler: BaseHTTPRequestHandler, url: Any) -> str | Answer:
        path = unquote(url.path)
        for prefix in ("/download/storage/v1/b/", "/storage/v1/b/"):
            if path.startswith(prefix) and "/o/" in path and "alt=media" in url.query:
                bucket, _, key = path[len(prefix) :].partition("/o/")
                path = f"/{bucket}/{key}"
        rel = path.lstrip("/")
        bucket, _, key = rel.partition("/")
        if not (Path(self.root) / bucket).is_dir():
            return _xml_error(404, "NoSuchBucket", "The specified bucket does not exist.")
        auth = handler.headers.get("Authorization")
        if bucket not in self.public:
            if auth is None:
                return _xml_error(
                    403,
                    "AccessDenied",
                    "Anonymous caller does not have storage.objects.get access to the Google "
                    f"Cloud Storage object. Permission 'storage.objects.get' denied on {rel}.",
                )
            if auth != f"Bearer {self.token}":
                return _xml_error(401, "AuthenticationRequired", "Invalid Credentials")
        if not (Path(self.root) / rel).is_file():
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        return rel

    def object_headers(self, rel: str, size: int) -> dict[str, str]:
        return {"x-goog-stored-content-length": str(size), "x-goog-generation": "1700000000000"}


class AzureServer(_Recording):
    """Azurite's layout, ``/ACCOUNT/CONTAINER/BLOB`` over ``root/ACCOUNT/CONTAINER/BLOB``.

    ``x-ms-version`` is required (400 ``MissingRequiredHeader``). A SAS
    (``sv``, ``sr``, ``sp``, ``se``, ``sig``: an HMAC of those with the
    account key) is checked: a bad one is 403 ``AuthenticationFailed``, an
    expired one too (Azure's words), one without read permission 403
    ``AuthorizationPermissionMismatch``. Without credentials, containers in
    ``public`` are readable and the others answer 404 ``ResourceNotFound``, as
    Azure does. ``Authorization: Bearer <bearer>`` is accepted too.
    """

    account = "devstoreaccount1"

    def __init__(
        self, directory: str | os.PathLike[str], public: set[str], bearer: str | None = None
    ) -> None:
        super().__init__(directory)
        self.public = public
        self.bearer = bearer
        self._key = secrets.token_bytes(32)

    def _signature(self, fields: dict[str, str], container: str, blob: str) -> str:
        resource = f"/blob/{self.account}/{container}" + (f"/{blob}" if fields["sr"] == "b" else "")
        text = "\n".join([fields["sp"], fields["se"], resource, fields["sv"]])
        return base64.b64encode(
            hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        ).decode()

    def sas(
        self, container: str, blob: str | None = None, *, expiry: datetime, sp: str = "r"
    ) -> str:
        """A SAS query string for ``container`` (or one ``blob`` of it), valid until ``expiry``."""
        fields = {
            "sv": "2022-11-02",
            "sr": "b" if blob else "c",
            "sp": sp,
            "se": expiry.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        fields["sig"] = self._signature(fields, container, blob or "")
        return urlencode(fields)

    def url(self, name: str = "") -> str:
        return super().url(f"{self.account}/{name}")

    @property
    def endpoint_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def _error(self, status: int, code: str, message: str) -> Answer:
        return _xml_error(status, code, message, {"x-ms-error-code": code})

    def decide(self, handler: BaseHTTPRequestHandler, url: Any) -> str | Answer:
        if handler.headers.get("x-ms-version") is None:
            return self._error(400, "MissingRequiredHeader", "x-ms-version is required.")
        rel = unquote(url.path).lstrip("/")
        account, _, rest = rel.partition("/")
        container, _, blob = rest.partition("/")
        query = dict(parse_qsl(url.query))
        auth = handler.headers.get("Authorization")
        if "sig" in query:
            try:
                expected = self._signature(query, container, blob)
            except KeyError:
                expected = ""
            if not hmac.compare_digest(expected, query["sig"]):
                return self._error(403, "AuthenticationFailed", "Signature did not match.")
            if datetime.fromisoformat(query["se"]) <= datetime.now(UTC):
                return self._error(
                    403,
                    "AuthenticationFailed",
                    f"Signed expiry time [{query['se']}] must be after signed start time.",
                )
            if "r" not in query["sp"]:
                return self._error(403, "AuthorizationPermissionMismatch", "No read permission.")
        elif auth is not None:
            if self.bearer is None or auth != f"Bearer {self.bearer}":
                return self._error(401, "InvalidAuthenticationInfo", "Token is not valid.")
        elif container not in self.public:
            return self._error(404, "ResourceNotFound", "The specified resource does not exist.")
        if account != self.account or not (Path(self.root) / rel).is_file():
            return self._error(404, "BlobNotFound", "The specified blob does not exist.")
        return rel

    def object_headers(self, rel: str, size: int) -> dict[str, str]:
        return {"x-ms-blob-type": "BlockBlob", "x-ms-version": "2022-11-02"}


class _Login(_Recording):
    """The login host (as urs.earthdata.nasa.gov): Basic auth, then back with a code."""

    def __init__(self, users: dict[str, str]) -> None:
        super().__init__(Path(__file__).parent, host="127.0.0.2")  # serves no file
        self.users = users
        self.codes: set[str] = set()

    def decide(self, handler: BaseHTTPRequestHandler, url: Any) -> str | Answer:
        query = dict(parse_qsl(url.query))
        if url.path != "/oauth/authorize" or "redirect_uri" not in query:
            return 404, {}, b"not found"
        given = handler.headers.get("Authorization", "")
        try:
            login, _, password = (
                base64.b64decode(given.removeprefix("Basic ")).decode().partition(":")
            )
        except ValueError:
            login, password = "", ""
        if not given.startswith("Basic ") or self.users.get(login) != password:
            return 401, {"WWW-Authenticate": 'Basic realm="Earthdata Login"'}, b"log in"
        code = secrets.token_hex(8)
        with self.lock:
            self.codes.add(code)
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return 302, {"Location": back}, b""


class _SignedS3(_Recording):
    """The bucket behind the data host: serves a file only at a URL the data host signed."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__(directory)
        self._key = secrets.token_bytes(16)

    def _sig(self, rel: str) -> str:
        return hmac.new(self._key, rel.encode(), hashlib.sha256).hexdigest()

    def signed_url(self, rel: str) -> str:
        query = urlencode({"X-Amz-Expires": "3600", "X-Amz-Signature": self._sig(rel)})
        return f"{self.url(quote(rel))}?{query}"

    def decide(self, handler: BaseHTTPRequestHandler, url: Any) -> str | Answer:
        rel = unquote(url.path).lstrip("/")
        if dict(parse_qsl(url.query)).get("X-Amz-Signature") != self._sig(rel):
            return _xml_error(403, "AccessDenied", "Request has expired or is not signed")
        return rel


class _DataHost(_Recording):
    """The data host, at ``localhost``: a session cookie or a bearer token, else to the login.

    A request with neither goes (302) to the login host; the login sends the
    client back to ``/login`` with a code, which sets the session cookie and
    sends it (302) to the data URL again; with a cookie or the token, a data
    URL answers 307 to its signed URL on the bucket.
    """

    def __init__(self, directory: str | os.PathLike[str], login: _Login, bucket: _SignedS3,
                 token: str) -> None:  # fmt: skip
        super().__init__(directory)
        self.login, self.bucket, self.token = login, bucket, token
        self.sessions: set[str] = set()

    def url(self, name: str = "") -> str:
        return f"http://localhost:{self.server_address[1]}/{name}"

    def decide(self, handler: BaseHTTPRequestHandler, url: Any) -> str | Answer:
        query = dict(parse_qsl(url.query))
        if url.path == "/login":
            with self.login.lock:
                known = query.get("code") in self.login.codes
            if not known:
                return 401, {}, b"bad code"
            session = secrets.token_hex(8)
            self.sessions.add(session)
            cookie = f"datasession={session}; Path=/; HttpOnly"
            return 302, {"Location": query["state"], "Set-Cookie": cookie}, b""
        cookies = dict(
            c.strip().partition("=")[::2] for c in handler.headers.get("Cookie", "").split(";") if c
        )
        rel = unquote(url.path).lstrip("/")
        bearer = handler.headers.get("Authorization") == f"Bearer {self.token}"
        if cookies.get("datasession") in self.sessions or bearer:
            return 307, {"Location": self.bucket.signed_url(rel)}, b""
        authorize = self.login.url("oauth/authorize") + "?" + urlencode(
            {"client_id": "rasteret-test", "response_type": "code",
             "redirect_uri": self.url("login"), "state": url.path}
        )  # fmt: skip
        return 302, {"Location": authorize}, b""


class EarthdataServers:
    """A data host (``localhost``), a login host (``127.0.0.2``) and a bucket (``127.0.0.1``).

    ``users`` are the login host's accounts; ``token`` a bearer token the data
    host accepts instead of a session.
    """

    def __init__(
        self, directory: str | os.PathLike[str], users: dict[str, str], token: str
    ) -> None:
        self.login = _Login(users)
        self.bucket = _SignedS3(directory)
        self.data = _DataHost(directory, self.login, self.bucket, token)

    def all(self) -> list[_Recording]:
        return [self.data, self.login, self.bucket]

    def reset(self) -> None:
        for server in self.all():
            server.reset()
        self.data.sessions.clear()

    def __enter__(self) -> EarthdataServers:
        for server in self.all():
            server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.all():
            server.stop()


# -- data for the tests of these servers ------------------------------------------------

DATETIME_FROM = r"_(?P<date>\d{8})_"
"""``build(datetime_from=)`` for the names :func:`write_scenes` gives."""


def write_scenes(directory: Path, n: int = 2) -> list[str]:
    """Write ``n`` small tiled deflate COGs (band B04, a date in each name) into ``directory``."""
    from affine import Affine

    from cogs import write_tiff

    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"s{i}_2024{i + 1:02d}01_B04.tif"
        write_tiff(
            directory / name, dtype="uint16", width=200, height=150, compress="DEFLATE",
            transform=Affine(10.0, 0, 600_000.0, 0, -10.0, 5_000_000.0), predictor=2,
            nodata=0, blockxsize=64, blockysize=64, seed=i,
        )  # fmt: skip
        names.append(name)
    return names


def assert_pixels_equal(
    hrefs: list[str], local: list[Path], storage_options: dict[str, Any]
) -> None:
    """``build`` ``hrefs``; ``open_dataset`` and ``get_numpy`` of it equal rasterio on ``local``."""
    import numpy as np
    import rasterio
    import shapely
    import xarray as xr

    import xarray_rasteret as xrr

    col = xrr.build(hrefs, band_names=["B04"], datetime_from=DATETIME_FROM,
                    storage_options=storage_options)  # fmt: skip
    ds = xr.open_dataset(col, engine="rasteret", storage_options=storage_options)
    whole = shapely.box(600_000, 4_998_500, 602_000, 5_000_000)  # every pixel centre inside
    got = xrr.get_numpy(col, geometries=whole, geometry_crs="EPSG:32633", bands=["B04"],
                        storage_options=storage_options)  # fmt: skip
    assert got.shape == (len(local), 150, 200)
    for i, path in enumerate(local):
        with rasterio.open(path) as src:
            expected = src.read(1)
        np.testing.assert_array_equal(ds.B04.values[i], expected)
        np.testing.assert_array_equal(got[i], expected)
