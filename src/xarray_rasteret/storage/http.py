"""Byte ranges over HTTP(S) with aiohttp: pooled keep-alive connections, retries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import aiohttp

from ..errors import ReadFailedError, TruncatedFileError
from ._checks import head_dict, normalize_etag
from ._loops import PerLoopClient
from ._ranged import RetriedStore
from ._retry import (
    RetryPolicy,
    TransientError,
    describe_range,
    not_found,
    permission_denied,
    redact_url,
    retry_async,
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

_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")

# Faults of the connection or the body, all worth another attempt.
TRANSIENT_AIOHTTP = (
    aiohttp.ClientConnectionError,  # refused, reset, server disconnected
    aiohttp.ClientPayloadError,  # body shorter than Content-Length, broken chunking
)


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """Return ``(first, last, total)`` of a ``Content-Range`` header (None where absent)."""
    if not value:
        return None, None, None
    m = _CONTENT_RANGE.match(value.strip())
    if m is None:
        return None, None, None
    first, last, total = m.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(total) if total not in (None, "*") else None,
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: leave it to our own backoff
        return None


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


async def range_answer(
    resp: aiohttp.ClientResponse, start: int, end: int
) -> tuple[bytes, int | None, str | None] | None:
    """``(body, object size, etag)`` of a 206 or 200 answer to ``[start, end)``, else None.

    A 200 means the server ignored the Range header: the whole object came
    back and is sliced here. A body shorter than announced is a transient fault.
    """
    etag = normalize_etag(resp.headers.get("ETag"))
    if resp.status == 206:
        body = await resp.read()
        first, last, total = _parse_content_range(resp.headers.get("Content-Range"))
        if first is not None and first != start:
            raise TransientError(f"server sent range starting at {first}")
        want = (last + 1 - start) if last is not None else end - start
        if len(body) != want:
            raise TransientError(f"short read: {len(body)} of {want} bytes")
        return body, total, etag
    if resp.status == 200:
        body = await resp.read()
        length = resp.headers.get("Content-Length")
        if length is not None and len(body) != int(length):
            raise TransientError(f"short read: {len(body)} of {length} bytes")
        return body[start:end], len(body), etag
    return None


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
        _, _, size = _parse_content_range(resp.headers.get("Content-Range"))
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
    words = detail or (resp.reason or "")
    if status == 416:
        _, _, total = _parse_content_range(resp.headers.get("Content-Range"))
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
        Extra request headers (e.g. ``Authorization``); never shown in messages.
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
        return open_session(self.max_connections, self.headers)

    @staticmethod
    async def _close(session: aiohttp.ClientSession) -> None:
        await session.close()

    def __repr__(self) -> str:
        names = ", ".join(sorted(self.headers)) or "none"
        return f"HTTPStore(timeout={self.policy.timeout}, headers=[{names}])"

    # -- one attempt ----------------------------------------------------------------

    async def _fetch(self, url: str, start: int, end: int) -> tuple[bytes, int | None, str | None]:
        """One attempt at ``[start, end)``: ``(body, object size, etag)``, clamped at EOF."""
        session = await self._clients.get()
        headers = {"Range": f"bytes={start}-{end - 1}"}
        try:
            async with session.get(url, headers=headers, allow_redirects=True) as resp:
                got = await range_answer(resp, start, end)
                if got is not None:
                    return got
                await resp.read()  # drain so the connection is reused
                raise answer_error(resp, url, describe_range(start, end))
        except TRANSIENT_AIOHTTP as e:
            raise TransientError(f"{type(e).__name__}: {describe_fault(e, url)}") from None
        except aiohttp.InvalidURL:
            raise ValueError(f"invalid URL: {redact_url(url)}") from None

    def _display(self, path: str) -> str:
        return path

    async def head_async(self, path: str) -> dict[str, Any]:
        """Return obspec-style ``path``/``size``/``e_tag`` from a one-byte ranged GET.

        A GET, not a HEAD, because signed URLs are usually signed for GET only.
        """

        async def attempt() -> dict[str, Any]:
            session = await self._clients.get()
            try:
                async with session.get(path, headers={"Range": "bytes=0-0"}) as resp:
                    await resp.read()
                    if resp.status not in (200, 206, 416):
                        raise answer_error(resp, path, "size and ETag")
                    size, etag = head_answer(resp)
                    if size is None:
                        raise ReadFailedError(
                            f"cannot tell the size of {redact_url(path)} (HTTP {resp.status})"
                        )
                    return head_dict(path, size, etag)
            except TRANSIENT_AIOHTTP as e:
                raise TransientError(f"{type(e).__name__}: {describe_fault(e, path)}") from None

        return await retry_async(attempt, self.policy, url=path, what="size and ETag")


def describe_fault(error: BaseException, url: str) -> str:
    """Describe an aiohttp error without the raw URL it may embed (signed query strings)."""
    text = str(error).replace(url, redact_url(url))
    if redact_url(url) != url:  # aiohttp may print the URL in its own normalized form
        text = re.sub(r"\?\S*", "?<redacted>", text)
    return text
