"""The byte-range store protocol every backend implements (obspec shape)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from typing_extensions import Buffer

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """An object that reads byte ranges asynchronously.

    The method names and keywords are those of obspec's ``GetRangeAsync`` and
    ``GetRangesAsync``, so obstore stores can be passed wherever a store is
    expected, and our stores can be handed to async-tiff. ``end`` is exclusive.
    """

    async def get_range_async(
        self, path: str, *, start: int, end: int | None = None, length: int | None = None
    ) -> Buffer:
        """Return the bytes ``[start, end)`` (or ``[start, start + length)``) of ``path``."""
        ...

    async def get_ranges_async(
        self,
        path: str,
        *,
        starts: Sequence[int],
        ends: Sequence[int] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> Sequence[Buffer]:
        """Return several byte ranges of ``path``, in the order asked."""
        ...
