"""Byte ranges from files on the local file system."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from ..errors import ObjectNotFoundError

__all__ = ["LocalStore"]


def _read(path: str, start: int, end: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(end - start)
    except FileNotFoundError as e:
        raise ObjectNotFoundError(f"no such file: {path!r}") from e


class LocalStore:
    """Read byte ranges of local files in worker threads (paths are absolute or relative)."""

    async def get_range_async(
        self, path: str, *, start: int, end: int | None = None, length: int | None = None
    ) -> bytes:
        """Return bytes ``[start, end)`` of the file at ``path``."""
        if end is None:
            if length is None:
                raise ValueError("get_range_async needs end or length")
            end = start + length
        return await asyncio.to_thread(_read, path, start, end)

    async def get_ranges_async(
        self,
        path: str,
        *,
        starts: Sequence[int],
        ends: Sequence[int] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> list[bytes]:
        """Return several byte ranges of the file at ``path``."""
        if ends is None:
            if lengths is None:
                raise ValueError("get_ranges_async needs ends or lengths")
            ends = [s + n for s, n in zip(starts, lengths, strict=True)]
        return list(
            await asyncio.gather(
                *(self.get_range_async(path, start=s, end=e) for s, e in zip(starts, ends, strict=True))
            )
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalStore)

    def __hash__(self) -> int:
        return hash(LocalStore)


def local_path(href: str) -> str:
    """Turn a path or ``file://`` URL into a file-system path."""
    if href.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(href).path)
    return os.fspath(href)
