"""Byte ranges over HTTP(S) with aiohttp: pooled keep-alive connections, retries.

Redirects are followed by :func:`._redirects.follow` (custom headers go only to
the origin asked, netrc logins only to the host they name), bodies are read by
:func:`._bodies.range_answer` (never more than the range asked, checked against
``Content-Range``), and every aiohttp exception becomes one of the package's
errors with the URL redacted. :class:`HTTPStore` is also the base of the GCS
and Azure stores, which change only where a path is sent and how refusals read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp

from ..errors import PermissionDeniedError, RasteretError, ReadFailedError, TruncatedFileError
from ._bodies import drain, parse_content_range, range_answer
from ._checks import head_dict, normalize_etag
from ._loops import PerLoopClient
from ._netrc import NetrcSetting, load_logins
from ._ranged import RetriedStore
from ._redirects import TRANSIENT_AIOHTTP, client_error, follow
from ._retry import (
    RetryPolicy,
    TransientError,
    describe_range,
    not_found,
    permission_denied,
    redact_url,
    retry_async,
    scrub,
)

__all__ = [
    "TRANSIENT_AIOHTTP",
    "HTTPStore",
    "answer_error",
    "bearer_headers",
    "describe_fault",
    "head_answer",
    "open_session",
    "range_answer",
]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:  # an HTTP date: leave it to our own backoff
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None


def open_session(
    max_connections: int, headers: Mapping[str, str] | None = None, ssl: Any = True
) -> aiohttp.ClientSession:
    """A pooled keep-alive session for byte ranges: no total timeout, bodies kept as sent.

    Timeouts are applied per attempt by the retry loop; ``auto_decompress`` is
    off because byte ranges must arrive exactly as stored.
    """
    connector = aiohttp.TCPConnector(
        limit=max_connections, limit_per_host=0, ttl_dns_cache=300, ssl=ssl
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers=dict(headers or {}),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=False,
    )


def head_answer(resp: aiohttp.ClientResponse) -> tuple[int | None, str | None]:
    """Return the object's ``(size, etag)`` that an answer's headers state.

    The one reading of a HEAD-like answer shared by every store's
    ``head_async`` (an HTTP one-byte GET, an S3 ``HEAD``).

    Parameters
    ----------
    resp
        A 2xx or 416 answer.

    Returns
    -------
    tuple of (int or None, str or None)
        The size (the ``Content-Range`` total of a 206 or 416, else
        ``Content-Length``; None when the header is absent) and the ETag,
        normalized with :func:`~._checks.normalize_etag`.
    """
    if resp.status in (206, 416):
        _, _, size = parse_content_range(resp.headers.get("Content-Range"))
    else:
        size = resp.content_length
    return size, normalize_etag(resp.headers.get("ETag"))


_HTTP_HINT = (
    "check the credentials: storage_options 'headers' or 'bearer_token', or a netrc entry "
    "for the login host the server redirects to (NASA Earthdata: urs.earthdata.nasa.gov); "
    "for signed URLs, whether the signature has expired"
)


def answer_error(
    resp: aiohttp.ClientResponse,
    url: str,
    what: str,
    *,
    detail: str = "",
    s3: bool = False,
    hint: str = _HTTP_HINT,
) -> Exception:
    """The error to raise for an answer that is not 200/206 (or a :class:`TransientError`).

    ``detail`` names the failure in the service's own words (an S3 error code);
    ``hint`` says what to check when access is refused (not for S3, whose hint
    names its own options).
    """
    status = resp.status
    words = detail or (resp.reason or "")[:100]  # the server's words: keep them short
    if status == 416:
        _, _, total = parse_content_range(resp.headers.get("Content-Range"))
        return TruncatedFileError(
            f"{what} starts past the end of {redact_url(url)}"
            + (f" ({total} bytes)" if total is not None else "")
        )
    if status in (404, 410):
        return not_found(url)
    if status in (401, 403):
        status_words = f"HTTP {status}" + (f" {detail}" if detail else "")
        if s3:
            return permission_denied(url, status_words, s3=True)
        return PermissionDeniedError(
            f"access to {redact_url(url)} was refused ({status_words}); {hint}"
        )
    if status == 429 or status >= 500:
        return TransientError(f"HTTP {status} {words}".strip(), _retry_after(resp.headers))
    return ReadFailedError(
        f"reading {what} of {redact_url(url)} failed: HTTP {status} {words}".strip()
    )


def bearer_headers(
    headers: Mapping[str, str] | None, bearer_token: str | None
) -> dict[str, str]:
    """``headers`` with ``Authorization: Bearer <bearer_token>`` added, if a token is given.

    Raises
    ------
    ValueError
        Both a token and an ``Authorization`` header are given, or the token is not a string.
    """
    out = dict(headers or {})
    if bearer_token is None:
        return out
    if not isinstance(bearer_token, str) or not bearer_token.strip():
        raise ValueError(
            "storage_options['bearer_token'] must be a non-empty string (the token itself, "
            f"without 'Bearer '), not {type(bearer_token).__name__}"
        )
    if any(k.lower() == "authorization" for k in out):
        raise ValueError(
            "storage_options give both 'bearer_token' and an Authorization header in "
            "'headers'; give one of them"
        )
    token = bearer_token.strip()
    out["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
    return out


class HTTPStore(PerLoopClient, RetriedStore):
    """Read byte ranges of HTTP(S) URLs; the path given to each method is the full URL.

    One :class:`aiohttp.ClientSession` (with a pooled keep-alive connector and a
    cookie jar) is made lazily per event loop and closed when that loop shuts
    down; the store itself holds only options, so it pickles (for dask) and is
    shared.

    Parameters
    ----------
    headers
        Extra request headers (e.g. ``Authorization``); never shown in messages,
        and on a redirect to another origin (scheme, host, port) not sent.
    bearer_token
        Sent as ``Authorization: Bearer <token>`` to the URL's own origin only (a
        NASA Earthdata user token, for one); not with an ``Authorization`` header.
    netrc
        Basic-auth logins for the hosts a redirect chain passes through (NASA
        Earthdata's ``urs.earthdata.nasa.gov``): True reads ``$NETRC``, else
        ``~/.netrc`` if it exists; a path reads that file; False reads none. A
        login goes only to the host its entry names, over HTTPS (or HTTP to a
        loopback host); ``default`` entries are not used.
    timeout
        Seconds one attempt may take, body included; a stalled attempt is retried.
    max_attempts
        Attempts per range, the first included.
    backoff
        Base of the exponential backoff, in seconds (full jitter).
    max_backoff
        Longest single wait between attempts, in seconds.
    max_connections
        Size of the connection pool per event loop (0: unbounded). Callers bound
        concurrency themselves; keep this above their bound.

    Examples
    --------
    >>> store = HTTPStore(timeout=10)
    >>> url = "https://example.com/a.tif"
    >>> await store.get_range_async(url, start=0, end=16384)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        bearer_token: str | None = None,
        netrc: NetrcSetting = True,
        timeout: float | None = 30.0,
        max_attempts: int = 5,
        backoff: float = 0.1,
        max_backoff: float = 10.0,
        max_connections: int = 256,
    ) -> None:
        if not isinstance(netrc, (bool, str, os.PathLike)):
            raise ValueError(
                "storage_options['netrc'] must be True, False or the path of a netrc file, "
                f"not {type(netrc).__name__}"
            )
        self.headers = bearer_headers(headers, bearer_token)
        self.netrc = netrc
        self.policy = RetryPolicy(max_attempts, backoff, max_backoff, timeout)
        self.max_connections = max_connections
        self._start_clients()

    # -- session per loop -----------------------------------------------------------

    async def _open(self) -> aiohttp.ClientSession:
        # No default headers: :func:`._redirects.follow` decides per hop which go.
        return open_session(self.max_connections)

    @staticmethod
    async def _close(session: aiohttp.ClientSession) -> None:
        await session.close()

    def __repr__(self) -> str:
        names = ", ".join(sorted(self.headers)) or "none"
        return f"{type(self).__name__}(timeout={self.policy.timeout}, headers=[{names}])"

    # -- what a subclass (a cloud store) changes --------------------------------------

    def _target(self, path: str) -> str:
        """The URL to request for ``path`` (here the path itself)."""
        return path

    def _origin_headers(self, path: str) -> dict[str, str]:
        """Headers for the origin of :meth:`_target` (credentials included)."""
        return self.headers

    def _secrets(self, path: str) -> list[str]:
        """Values that must not appear in messages about ``path``."""
        return list(self.headers.values())

    def _refusal(
        self, resp: aiohttp.ClientResponse, path: str, what: str, body: bytes
    ) -> Exception:
        """The error for an answer other than 200/206 (``body``: its first bytes)."""
        return answer_error(resp, self._display(path), what)

    def _display(self, path: str) -> str:
        return path

    # -- one attempt ----------------------------------------------------------------

    async def _get(self, path: str, byte_range: str, what: str, read: Any) -> Any:
        """GET ``path`` for ``byte_range`` (redirects followed) and return ``await read(resp)``.

        Every aiohttp exception becomes one of the package's errors (or a
        :class:`TransientError`), raised outside the ``except`` so that no
        exception quoting the raw URL is chained to it.
        """
        url = self._target(path)
        session = await self._clients.get()
        logins = load_logins(self.netrc)  # re-read only when the file changes
        # identity: the bytes as stored (a server gzipping a range on the fly would
        # otherwise hand back other bytes, as auto_decompress is off).
        headers = {"Accept-Encoding": "identity", **self._origin_headers(path), "Range": byte_range}
        login = logins.authorization if logins is not None else None
        try:
            async with follow(session, url, headers, login=login) as resp:
                return await read(resp)
        except RasteretError:
            raise
        except (aiohttp.ClientError, ValueError, UnicodeError) as e:
            secrets = self._secrets(path) + (logins.secrets() if logins else [])
            error = client_error(e, url, what, secrets, shown=self._display(path))
        raise error

    async def _fetch(self, path: str, start: int, end: int) -> tuple[bytes, int | None, str | None]:
        """One attempt at ``[start, end)``: ``(body, object size, etag)``, clamped at EOF."""
        what = describe_range(start, end)

        async def read(resp: aiohttp.ClientResponse) -> tuple[bytes, int | None, str | None]:
            got = await range_answer(resp, start, end, self._display(path))
            if got is not None:
                return got
            body = await drain(resp)  # a bounded read of the error document
            raise self._refusal(resp, path, what, body)

        result: tuple[bytes, int | None, str | None] = await self._get(
            path, f"bytes={start}-{end - 1}", what, read
        )
        return result

    async def head_async(self, path: str) -> dict[str, Any]:
        """Return obspec-style ``path``/``size``/``e_tag`` from a one-byte ranged GET.

        A GET, not a HEAD, because signed URLs are usually signed for GET only.
        """
        shown = self._display(path)

        async def read(resp: aiohttp.ClientResponse) -> dict[str, Any]:
            body = await drain(resp)  # one byte asked; a server ignoring Range may send it all
            if resp.status not in (200, 206, 416):
                raise self._refusal(resp, path, "size and ETag", body)
            size, etag = head_answer(resp)
            if resp.status == 416 and size:
                raise ReadFailedError(
                    f"{redact_url(shown)} answered a request for its first byte with HTTP 416 "
                    f"(nothing to send) yet says it has {size} bytes; the server does not "
                    "answer byte-range requests correctly"
                )
            if size is None:
                raise ReadFailedError(
                    f"cannot tell the size of {redact_url(shown)} (HTTP {resp.status} without "
                    "Content-Range or Content-Length); the server does not answer byte-range "
                    "requests correctly"
                )
            return head_dict(path, size, etag)

        async def attempt() -> dict[str, Any]:
            result: dict[str, Any] = await self._get(path, "bytes=0-0", "size and ETag", read)
            return result

        return await retry_async(attempt, self.policy, url=shown, what="size and ETag")



def describe_fault(error: BaseException, url: str, secrets: Iterable[str] = ()) -> str:
    """Describe an aiohttp error without the raw URL it may embed (signed query strings)."""
    return scrub(str(error), url, secrets)
