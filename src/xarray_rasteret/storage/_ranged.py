"""The obspec range methods our stores share, written once over a per-store fetch."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ._checks import check_unchanged, range_end, range_ends
from ._retry import RetryPolicy, describe_range, retry_async

__all__ = ["RangedStore", "RetriedStore", "gather_ranges"]

T = TypeVar("T")


async def gather_ranges(
    get_range: Callable[..., Awaitable[T]],
    path: str,
    starts: Sequence[int],
    ends: Sequence[int] | None,
    lengths: Sequence[int] | None,
) -> list[T]:
    """Read several ranges with ``get_range(path, start=, end=)``, concurrently, in order.

    Parameters
    ----------
    get_range
        An obspec-style ``get_range_async`` (usually a bound method).
    path
        The object to read.
    starts, ends, lengths
        As in obspec's ``get_ranges_async``: ``ends`` or ``lengths`` must be given.

    Returns
    -------
    list
        One result per range, in the order asked.

    Raises
    ------
    ValueError
        Neither ``ends`` nor ``lengths`` given, or a range is invalid.
    """
    stops = range_ends(starts, ends, lengths)
    return list(
        await asyncio.gather(
            *(get_range(path, start=s, end=e) for s, e in zip(starts, stops, strict=True))
        )
    )


class RangedStore(ABC):
    """obspec's range methods over one primitive, :meth:`_fetch_retried`.

    Subclasses implement :meth:`_fetch_retried` (one range, retried where the
    store retries, with the object's size and ETag from the same response) and
    :meth:`_display` (how ``path`` is named in messages). Empty ranges are
    answered with ``b""`` without any I/O, except by :meth:`get_range_info_async`,
    which leaves them to the store.
    """

    @abstractmethod
    async def _fetch_retried(
        self, path: str, start: int, end: int
    ) -> tuple[bytes, int | None, str | None]:
        """Return ``[start, end)`` (clamped at the end), the object's size and its ETag.

        Size and ETag are None where the store does not learn them.
        """

    @abstractmethod
    def _display(self, path: str) -> str:
        """Return the name of ``path`` used in messages (redacted by the message builders)."""

    async def get_range_async(
        self, path: str, *, start: int, end: int | None = None, length: int | None = None
    ) -> bytes:
        """Return bytes ``[start, end)`` (or ``[start, start + length)``) of ``path``.

        Fewer bytes come back if the object ends first.

        Raises
        ------
        ValueError
            Neither ``end`` nor ``length`` given, or an invalid range.
        ObjectNotFoundError
            No such object: HTTP 404/410, no such S3 bucket or key, no such file.
        PermissionDeniedError
            HTTP 401/403, S3 access denied or no credentials, an unreadable file.
        TruncatedFileError
            The range starts past the end of the object (HTTP 416, S3 ``InvalidRange``).
        ReadFailedError
            HTTP and S3: transient faults persisted through every attempt, or an
            unexpected response: another range than asked, a body longer than
            its headers, a server ignoring ``Range`` for a range far into the
            object, a redirect loop, an answer that is not HTTP.
        """
        end = range_end(start, end, length)
        if end == start:
            return b""
        body, _, _ = await self._fetch_retried(path, start, end)
        return body

    async def get_ranges_async(
        self,
        path: str,
        *,
        starts: Sequence[int],
        ends: Sequence[int] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> list[bytes]:
        """Return several byte ranges of ``path``, read concurrently, in the order asked.

        Raises
        ------
        ValueError
            Neither ``ends`` nor ``lengths`` given, or an invalid range.
        ObjectNotFoundError, PermissionDeniedError, TruncatedFileError, ReadFailedError
            As for :meth:`get_range_async`.
        """
        return await gather_ranges(self.get_range_async, path, starts, ends, lengths)

    async def get_range_info_async(
        self, path: str, *, start: int, end: int
    ) -> tuple[bytes, int | None, str | None]:
        """Read ``[start, end)`` and return it with the object's size and ETag.

        The size and ETag come from the same response (HTTP and S3: the
        ``Content-Range`` total; locally: ``fstat``, and no ETag), so indexing
        learns them without an extra request.

        Raises
        ------
        ObjectNotFoundError, PermissionDeniedError, TruncatedFileError, ReadFailedError
            As for :meth:`get_range_async`.
        """
        return await self._fetch_retried(path, start, end)

    async def get_range_checked_async(
        self, path: str, *, start: int, end: int, size: int, etag: str | None = None
    ) -> bytes:
        """Read ``[start, end)`` and check the object still has ``size`` bytes and ``etag``.

        The size and ETag compared are those of the same response, where the
        store learns them; an ETag is compared only when both sides have one
        (local files have none).

        Raises
        ------
        ObjectChangedError
            The object's size or ETag differ from ``size``/``etag``.
        ObjectNotFoundError, PermissionDeniedError, TruncatedFileError, ReadFailedError
            As for :meth:`get_range_async`.
        """
        if end == start:
            return b""
        body, total, got_etag = await self._fetch_retried(path, start, end)
        check_unchanged(
            self._display(path), expected_size=size, expected_etag=etag, size=total, etag=got_etag
        )
        return body


class RetriedStore(RangedStore):
    """A remote :class:`RangedStore`: each range is one :meth:`_fetch`, retried per ``policy``."""

    policy: RetryPolicy

    @abstractmethod
    async def _fetch(self, path: str, start: int, end: int) -> tuple[bytes, int | None, str | None]:
        """One attempt at ``[start, end)``: body, object size and ETag (transient faults raise)."""

    async def _fetch_retried(
        self, path: str, start: int, end: int
    ) -> tuple[bytes, int | None, str | None]:
        if end == start:
            return b"", None, None
        return await retry_async(
            lambda: self._fetch(path, start, end),
            self.policy,
            url=self._display(path),
            what=describe_range(start, end),
        )
