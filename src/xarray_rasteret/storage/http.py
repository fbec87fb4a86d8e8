"""Byte ranges over HTTP(S) with aiohttp: pooled keep-alive connections, retries.

Redirects are followed by :func:`._redirects.follow` (custom headers go only to
the origin asked), bodies are read by :func:`._bodies.range_answer` (never more
than the range asked, checked against ``Content-Range``), and every aiohttp
exception becomes one of the package's errors with the URL redacted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp

from ..errors import RasteretError, ReadFailedError, TruncatedFileError
from ._bodies import drain, parse_content_range, range_answer
from ._checks import head_dict, normalize_etag
from ._loops import PerLoopClient
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


def answer_error(
    resp: aiohttp.ClientResponse, url: str, what: str, *, detail: str = "", s3: bool = False
) -> Exception:
    """The error to raise for an answer that is not 200/206 (or a :class:`TransientError`).

    ``detail`` names the failure in the service's own words (an S3 error code).
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
        return permission_denied(url, f"HTTP {status}" + (f" {detail}" if detail else ""), s3=s3)
    if status == 429 or status >= 500:
        return TransientError(f"HTTP {status} {words}".strip(), _retry_after(resp.headers))
    return ReadFailedError(
        f"reading {what} of {redact_url(url)} failed: HTTP {status} {words}".strip()
    )


class HTTPStore(PerLoopClient, RetriedStore):
    """Read byte ranges of HTTP(S) URLs; the path given to each method is the full URL.

    One :class:`aiohttp.ClientSession` (with a pooled keep-alive connector) is
    made lazily per event loop and closed when that loop shuts down; the store
    itself holds only options, so it pickles (for dask) and is shared.

    Parameters
    ----------
    headers
        Extra request headers (e.g. ``Authorization``); never shown in messages,
        and on a redirect to another origin (scheme, host, port) not sent.
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
        timeout: float | None = 30.0,
        max_attempts: int = 5,
        backoff: float = 0.1,
        max_backoff: float = 10.0,
        max_connections: int = 256,
    ) -> None:
        self.headers = dict(headers or {})
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
        return f"HTTPStore(timeout={self.policy.timeout}, headers=[{names}])"

    # -- one attempt ----------------------------------------------------------------

    async def _get(self, url: str, byte_range: str, what: str, read: Any) -> Any:
        """GET ``url`` for ``byte_range`` (redirects followed) and return ``await read(resp)``.

        Every aiohttp exception becomes one of the package's errors (or a
        :class:`TransientError`), raised outside the ``except`` so that no
        exception quoting the raw URL is chained to it.
        """
        session = await self._clients.get()
        # identity: the bytes as stored (a server gzipping a range on the fly would
        # otherwise hand back other bytes, as auto_decompress is off).
        headers = {"Accept-Encoding": "identity", **self.headers, "Range": byte_range}
        try:
            async with follow(session, url, headers) as resp:
                return await read(resp)
        except RasteretError:
            raise
        except (aiohttp.ClientError, ValueError, UnicodeError) as e:
            error = client_error(e, url, what, self.headers.values())
        raise error

    async def _fetch(self, url: str, start: int, end: int) -> tuple[bytes, int | None, str | None]:
        """One attempt at ``[start, end)``: ``(body, object size, etag)``, clamped at EOF."""
        what = describe_range(start, end)

        async def read(resp: aiohttp.ClientResponse) -> tuple[bytes, int | None, str | None]:
            got = await range_answer(resp, start, end, url)
            if got is not None:
                return got
            await drain(resp)  # a bounded read of the error document
            raise answer_error(resp, url, what)

        result: tuple[bytes, int | None, str | None] = await self._get(
            url, f"bytes={start}-{end - 1}", what, read
        )
        return result

    def _display(self, path: str) -> str:
        return path

    async def head_async(self, path: str) -> dict[str, Any]:
        """Return obspec-style ``path``/``size``/``e_tag`` from a one-byte ranged GET.

        A GET, not a HEAD, because signed URLs are usually signed for GET only.
        """

        async def read(resp: aiohttp.ClientResponse) -> dict[str, Any]:
            await drain(resp)  # one byte asked; a server ignoring Range may send it all
            if resp.status not in (200, 206, 416):
                raise answer_error(resp, path, "size and ETag")
            size, etag = head_answer(resp)
            if resp.status == 416 and size:
                raise ReadFailedError(
                    f"{redact_url(path)} answered a request for its first byte with HTTP 416 "
                    f"(nothing to send) yet says it has {size} bytes; the server does not "
                    "answer byte-range requests correctly"
                )
            if size is None:
                raise ReadFailedError(
                    f"cannot tell the size of {redact_url(path)} (HTTP {resp.status} without "
                    "Content-Range or Content-Length); the server does not answer byte-range "
                    "requests correctly"
                )
            return head_dict(path, size, etag)

        async def attempt() -> dict[str, Any]:
            result: dict[str, Any] = await self._get(path, "bytes=0-0", "size and ETag", read)
            return result

        return await retry_async(attempt, self.policy, url=path, what="size and ETag")


def describe_fault(error: BaseException, url: str, secrets: Iterable[str] = ()) -> str:
    """Describe an aiohttp error without the raw URL it may embed (signed query strings)."""
    return scrub(str(error), url, secrets)
