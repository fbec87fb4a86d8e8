"""A WSGI gate in front of moto's S3: checks SigV4 signatures, and misbehaves on request.

moto does not check signatures, so a request signed wrongly (a header changed
after signing, a path encoded differently on the wire than in the signature)
would pass against it and fail against AWS. The gate recomputes each signature
from what actually arrived, with botocore's canonical request, for the access
keys it knows; boto3's own requests (the tests' uploads) pass through the same
check, which keeps the check itself honest.

It can also answer like S3 does when things go wrong: scripted error answers
(``SlowDown``, ``AccessDenied``, ...) for the next reads, bodies cut short or
held back, and ``301 PermanentRedirect`` with ``x-amz-bucket-region`` for
buckets placed in another region.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["S3Gate"]

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/s3/"
    r"aws4_request,\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def _header(environ: Environ, name: str) -> str | None:
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


def signature_problem(environ: Environ, secrets: dict[str, str]) -> str | None:
    """Why the request's SigV4 signature is wrong (None: right, unsigned or unknown key)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = environ.get("HTTP_AUTHORIZATION", "")
    if not auth:
        return None
    m = _AUTH.fullmatch(auth.strip())
    if m is None:
        return f"malformed Authorization header {auth[:40]!r}"
    secret = secrets.get(m["key"])
    if secret is None:
        return None
    headers = {}
    for name in m["signed"].split(";"):
        value = _header(environ, name)
        if value is None:
            return f"signed header {name!r} was not sent"
        headers[name] = value
    stamp = environ.get("HTTP_X_AMZ_DATE", "")
    if not stamp.startswith(m["day"]):
        return "X-Amz-Date does not match the credential scope"
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
    request = AWSRequest(
        method=environ["REQUEST_METHOD"], url=f"http://{environ['HTTP_HOST']}{raw}", headers=headers
    )
    request.context["timestamp"] = stamp
    signer = S3SigV4Auth(Credentials(m["key"], secret), "s3", m["region"])
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return None if expected == m["signature"] else "signature does not match the request"


class S3Gate:
    """WSGI middleware for moto's S3 app (see the module docstring).

    Parameters
    ----------
    app
        The wrapped WSGI application.
    secrets
        Secret key per access key id, for the signatures to check.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], secrets: dict[str, str]) -> None:
        self.app = app
        self.secrets = dict(secrets)
        self.bucket_regions: dict[str, str] = {}
        self.seen: list[dict[str, str]] = []
        # What the next object reads get, in order: ("error", status, code),
        # ("cut", None, None) or ("stall", seconds, None).
        self._script: list[tuple[str, Any, Any]] = []
        self._lock = threading.Lock()

    def fail_next(self, count: int, status: int, code: str) -> None:
        """Answer the next ``count`` object reads (GET/HEAD with a key) with an S3 error."""
        with self._lock:
            self._script.extend([("error", status, code)] * count)

    def cut_next(self, count: int) -> None:
        """Send only half the body of the next ``count`` object GETs, then close."""
        with self._lock:
            self._script.extend([("cut", None, None)] * count)

    def stall_next(self, count: int, seconds: float) -> None:
        """Hold the next ``count`` object reads for ``seconds`` before answering."""
        with self._lock:
            self._script.extend([("stall", seconds, None)] * count)

    def reset(self) -> None:
        """Forget scripted errors, bucket regions and seen requests."""
        with self._lock:
            self._script.clear()
            self.bucket_regions.clear()
            self.seen.clear()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        bucket, _, key = environ.get("PATH_INFO", "").lstrip("/").partition("/")
        problem = signature_problem(environ, self.secrets)
        if problem is not None:
            return _error(start_response, 403, "SignatureDoesNotMatch", problem)
        if method in ("GET", "HEAD") and key:
            with self._lock:
                self.seen.append({
                    k[5:].lower().replace("_", "-"): str(v)
                    for k, v in environ.items() if k.startswith("HTTP_")
                })
        m = _AUTH.fullmatch(environ.get("HTTP_AUTHORIZATION", "").strip())
        home = self.bucket_regions.get(bucket)
        if home is not None and m is not None and m["region"] != home:
            return _error(
                start_response, 301, "PermanentRedirect", f"bucket {bucket} is in {home}",
                [("x-amz-bucket-region", home)],
            )
        if method in ("GET", "HEAD") and key:
            with self._lock:
                scripted = self._script.pop(0) if self._script else None
            kind, a, b = scripted or ("pass", None, None)
            if kind == "error":
                return _error(start_response, a, b, "scripted by the test")
            if kind == "cut":
                return _cut(self.app, environ, start_response)
            if kind == "stall":
                time.sleep(a)
        return self.app(environ, start_response)


def _cut(app: Callable[..., Iterable[bytes]], environ: Environ,
         start_response: StartResponse) -> list[bytes]:
    """The app's answer with its headers intact but half its body, and the connection closed."""
    answer: list[Any] = []
    body = b"".join(app(environ, lambda status, headers, *_: answer.extend([status, headers])))
    status, headers = answer
    headers = [(k, v) for k, v in headers if k.lower() != "connection"]
    start_response(status, [*headers, ("Connection", "close")])
    return [body[: len(body) // 2]]


def _error(
    start_response: StartResponse, status: int, code: str, message: str,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()
    reasons = {301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden",
               404: "Not Found", 500: "Internal Server Error", 503: "Slow Down"}
    start_response(
        f"{status} {reasons.get(status, 'Error')}",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body))), *(extra or [])],
    )
    return [body]
