"""Read-time URL signing: a store that signs each request's href, then routes the signed URL.

Signed URLs (Planetary Computer's SAS tokens, presigned S3 URLs) expire, so they
are made per request, never at build time, and never stored: the index, the
planned reads and the pickled dask tasks hold the plain href and the signer.
A refusal (HTTP 401/403) of a signed URL means its token expired or was
revoked: the signer forgets it (``invalidate``), the href is signed again and
the request retried once. A second refusal is an error naming the object,
with no token in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from typing_extensions import Buffer

from ..errors import PermissionDeniedError, RasteretError
from ._checks import get_range_checked
from ._ranged import gather_ranges
from ._retry import redact_url, scrub
from ._router import resolve_store

__all__ = ["SigningStore"]

T = TypeVar("T")


def _label(sign: Any) -> str:
    """How to name the signer in messages (never its state)."""
    if hasattr(sign, "__self__") or not hasattr(sign, "__qualname__"):
        return type(sign).__name__
    return str(sign.__qualname__)


def _query_secrets(url: str) -> list[str]:
    """The signed query of ``url`` and each of its values: none may be shown."""
    query = url.partition("?")[2]
    values = [part.partition("=")[2] for part in query.split("&")]
    return [query, *(v for v in values if len(v) >= 8)] if query else []


def _like(error: RasteretError, message: str) -> RasteretError:
    """An error of ``error``'s type with ``message`` (the root type if it will not take one)."""
    try:
        return type(error)(message)
    except TypeError:
        return RasteretError(message)


class SigningStore:
    """Read hrefs through the store their signed URL routes to; re-sign once when refused.

    Paths handed to this store are the unsigned hrefs. Each request signs its
    href with ``sign`` (a cached token needs no I/O: a signer's
    ``cached(href)`` is tried first; else ``sign`` runs in a worker thread, as
    it may fetch a token), then reads the signed URL through
    :func:`~._router.resolve_store` with ``storage_options`` and ``backend``.

    Parameters
    ----------
    sign
        ``sign(href) -> signed href``; optional methods ``cached(href) -> str | None``
        (the signed href if no I/O is needed) and ``invalidate(signed_href)``.
    storage_options, backend
        As for :func:`~._router.resolve_store`.
    """

    def __init__(
        self,
        sign: Callable[[str], str],
        *,
        storage_options: dict[str, Any] | None = None,
        backend: Any = None,
    ) -> None:
        self.sign = sign
        self.storage_options = storage_options
        self.backend = backend

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sign={_label(self.sign)})"

    async def _sign(self, href: str) -> str:
        cached = getattr(self.sign, "cached", None)
        url = cached(href) if cached is not None else None
        if url is None:
            loop = asyncio.get_running_loop()
            try:
                url = await loop.run_in_executor(None, self.sign, href)
            except Exception as e:
                e.add_note(f"while signing {redact_url(href)} with {_label(self.sign)}")
                raise
        if not isinstance(url, str):
            raise TypeError(
                f"the signer {_label(self.sign)} returned {type(url).__name__} for "
                f"{redact_url(href)}; sign= must return the signed href as a str"
            )
        return url

    async def _signed_call(self, href: str, op: Callable[[Any, str], Awaitable[T]]) -> T:
        """Run ``op(store, path)`` on the signed URL of ``href``; re-sign once if refused."""
        url = await self._sign(href)
        try:
            return await self._call(op, href, url)
        except PermissionDeniedError:
            pass  # expired or revoked: sign again, once
        invalidate = getattr(self.sign, "invalidate", None)
        if invalidate is not None:
            invalidate(url)
        fresh = await self._sign(href)
        try:
            return await self._call(op, href, fresh)
        except PermissionDeniedError:
            raise PermissionDeniedError(
                f"access to {redact_url(href)} was refused with a signed URL, and again "
                f"after signing it anew: the signer {_label(self.sign)} gives URLs the "
                "server does not accept (an expired, revoked or wrong token); check the "
                "signer (sign= or the data source's), the account and container it signs "
                "for and, for Planetary Computer, $PC_SDK_SUBSCRIPTION_KEY"
            ) from None

    async def _call(self, op: Callable[[Any, str], Awaitable[T]], href: str, url: str) -> T:
        store, path = resolve_store(url, storage_options=self.storage_options, backend=self.backend)
        try:
            return await op(store, path)
        except RasteretError as e:
            message = str(e)
            cleaned = scrub(message, url, _query_secrets(url))
            if cleaned == message:
                raise
            error = _like(e, cleaned)  # the signed query, shown by a store that missed it
        raise error from None

    async def get_range_async(
        self, path: str, *, start: int, end: int | None = None, length: int | None = None
    ) -> Buffer:
        """Read ``[start, end)`` (or ``length`` bytes) of the href ``path``, signed."""

        async def op(store: Any, p: str) -> Buffer:
            data: Buffer = await store.get_range_async(p, start=start, end=end, length=length)
            return data

        return await self._signed_call(path, op)

    async def get_ranges_async(
        self,
        path: str,
        *,
        starts: Sequence[int],
        ends: Sequence[int] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> Sequence[Buffer]:
        """Read several ranges of the href ``path``, each request signed."""
        return await gather_ranges(self.get_range_async, path, starts, ends, lengths)

    async def get_range_info_async(
        self, path: str, *, start: int, end: int
    ) -> tuple[Buffer, int | None, str | None]:
        """Read one range with the object's size and ETag where the store gives them."""

        async def op(store: Any, p: str) -> tuple[Buffer, int | None, str | None]:
            info = getattr(store, "get_range_info_async", None)
            if info is None:
                return await store.get_range_async(p, start=start, end=end), None, None
            data, size, etag = await info(p, start=start, end=end)
            return data, size, etag

        return await self._signed_call(path, op)

    async def get_range_checked_async(
        self, path: str, *, start: int, end: int, size: int, etag: str | None = None
    ) -> Buffer:
        """Read one range with the routed store's staleness check (size, ETag)."""

        async def op(store: Any, p: str) -> Buffer:
            return await get_range_checked(store, p, start=start, end=end, size=size, etag=etag)

        return await self._signed_call(path, op)

    async def head_async(self, path: str) -> dict[str, Any]:
        """The routed store's ``head_async`` of the signed href, ``path`` reported unsigned."""

        async def op(store: Any, p: str) -> dict[str, Any]:
            meta: dict[str, Any] = dict(await store.head_async(p))
            return meta

        meta = await self._signed_call(path, op)
        meta["path"] = path
        return meta
