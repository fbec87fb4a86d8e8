"""A store wrapper that counts every request it passes on (see :mod:`._stats`)."""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import Buffer

from ._base import Store
from ._checks import get_range_checked
from ._ranged import gather_ranges
from ._stats import counted

__all__ = ["CountingStore"]


def _itself(data: Buffer) -> Buffer:
    return data


def _first(result: tuple[Buffer, int | None, str | None]) -> Buffer:
    return result[0]


class CountingStore:
    """Wrap any :class:`Store` so its requests show in the counters."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    async def get_range_async(
        self, path: str, *, start: int, end: int | None = None, length: int | None = None
    ) -> Buffer:
        """Read one range through the wrapped store, counting it."""
        read = self.inner.get_range_async(path, start=start, end=end, length=length)
        return await counted(read, _itself)

    async def get_range_info_async(
        self, path: str, *, start: int, end: int
    ) -> tuple[Buffer, int | None, str | None]:
        """Read one range, with the object's size and ETag where the store gives them."""
        return await counted(self._range_info(path, start, end), _first)

    async def _range_info(
        self, path: str, start: int, end: int
    ) -> tuple[Buffer, int | None, str | None]:
        info = getattr(self.inner, "get_range_info_async", None)
        if info is not None:
            data, size, etag = await info(path, start=start, end=end)
            return data, size, etag
        return await self.inner.get_range_async(path, start=start, end=end), None, None

    async def get_range_checked_async(
        self, path: str, *, start: int, end: int, size: int, etag: str | None = None
    ) -> Buffer:
        """Read one range with the wrapped store's staleness check, counting it."""
        read = get_range_checked(self.inner, path, start=start, end=end, size=size, etag=etag)
        return await counted(read, _itself)

    async def get_ranges_async(
        self,
        path: str,
        *,
        starts: Sequence[int],
        ends: Sequence[int] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> Sequence[Buffer]:
        """Read several ranges through the wrapped store, counting each."""
        return await gather_ranges(self.get_range_async, path, starts, ends, lengths)
