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

__all__ = ["HTTPStore"]

_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")

# Faults of the connection or the body, all worth another attempt.
_TRANSIENT_AIOHTTP = (
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
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, limit_per_host=0, ttl_dns_cache=300
        )
        # Timeouts are applied per attempt by the retry loop.
        return aiohttp.ClientSession(
            connector=connector,
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=False,  # byte ranges must arrive exactly as stored
        )

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
                status = resp.status
                if status == 206:
                    body = await resp.read()
                    first, last, total = _parse_content_range(resp.headers.get("Content-Range"))
                    if first is not None and first != start:
                        raise TransientError(f"server sent range starting at {first}")
                    want = (last + 1 - start) if last is not None else end - start
                    if len(body) != want:
                        raise TransientError(f"short read: {len(body)} of {want} bytes")
                    return body, total, normalize_etag(resp.headers.get("ETag"))
                if status == 200:  # Range ignored: the whole object came back
                    body = await resp.read()
                    length = resp.headers.get("Content-Length")
                    if length is not None and len(body) != int(length):
                        raise TransientError(f"short read: {len(body)} of {length} bytes")
                    return body[start:end], len(body), normalize_etag(resp.headers.get("ETag"))
                await resp.read()  # drain so the connection is reused
                if status == 416:
                    _, _, total = _parse_content_range(resp.headers.get("Content-Range"))
                    raise TruncatedFileError(
                        f"{describe_range(start, end)} starts past the end of "
                        f"{redact_url(url)}" + (f" ({total} bytes)" if total is not None else "")
                    )
                if status == 404 or status == 410:
                    raise not_found(url)
                if status in (401, 403):
                    raise permission_denied(url, f"HTTP {status}")
                if status == 429 or status >= 500:
                    raise TransientError(
                        f"HTTP {status} {resp.reason or ''}".strip(), _retry_after(resp.headers)
                    )
                raise ReadFailedError(
                    f"reading {describe_range(start, end)} of {redact_url(url)} failed: "
                    f"HTTP {status} {resp.reason or ''}".strip()
                )
        except _TRANSIENT_AIOHTTP as e:
            raise TransientError(f"{type(e).__name__}: {_safe(e, url)}") from None
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
                    etag = normalize_etag(resp.headers.get("ETag"))
                    if resp.status in (206, 416):
                        _, _, total = _parse_content_range(resp.headers.get("Content-Range"))
                        if total is not None:
                            return head_dict(path, total, etag)
                    elif resp.status == 200 and resp.content_length is not None:
                        return head_dict(path, resp.content_length, etag)
                    elif resp.status in (404, 410):
                        raise not_found(path)
                    elif resp.status in (401, 403):
                        raise permission_denied(path, f"HTTP {resp.status}")
                    elif resp.status == 429 or resp.status >= 500:
                        raise TransientError(f"HTTP {resp.status}", _retry_after(resp.headers))
                    raise ReadFailedError(
                        f"cannot tell the size of {redact_url(path)} (HTTP {resp.status})"
                    )
            except _TRANSIENT_AIOHTTP as e:
                raise TransientError(f"{type(e).__name__}: {_safe(e, path)}") from None

        return await retry_async(attempt, self.policy, url=path, what="size and ETag")


def _safe(error: BaseException, url: str) -> str:
    """Describe an aiohttp error without the raw URL it may embed (signed query strings)."""
    text = str(error).replace(url, redact_url(url))
    if redact_url(url) != url:  # aiohttp may print the URL in its own normalized form
        text = re.sub(r"\?\S*", "?<redacted>", text)
    return text
