"""Byte ranges from files on the local file system."""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import ObjectNotFoundError, PermissionDeniedError, TruncatedFileError
from ._checks import head_dict
from ._ranged import RangedStore
from ._retry import describe_range

__all__ = ["LocalStore", "local_path"]


def _read(path: str, start: int, end: int) -> tuple[bytes, int]:
    """Return the bytes ``[start, end)`` (clamped at the end of file) and the file size."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if start >= size and end > start:
                raise TruncatedFileError(
                    f"{describe_range(start, end)} starts past the end of {path!r} ({size} bytes)"
                )
            f.seek(start)
            return f.read(end - start), size
    except FileNotFoundError as e:
        raise ObjectNotFoundError(f"no such file: {path!r}; check the path") from e
    except PermissionError as e:
        raise PermissionDeniedError(f"cannot read {path!r}: permission denied") from e


class LocalStore(RangedStore):
    """Read byte ranges of local files in worker threads (paths are absolute or relative).

    Ranges reaching past the end of a file are clamped (as obstore does); a
    range starting past the end raises :class:`~xarray_rasteret.errors.TruncatedFileError`.
    """

    async def _fetch_retried(
        self, path: str, start: int, end: int
    ) -> tuple[bytes, int | None, str | None]:
        # One read in a worker thread (nothing to retry); the size comes from fstat.
        # Not short-circuited for empty ranges: get_range_info_async reports the size.
        data, size = await asyncio.to_thread(_read, path, start, end)
        return data, size, None

    def _display(self, path: str) -> str:
        return path

    async def head_async(self, path: str) -> dict[str, Any]:
        """Return obspec-style metadata: ``path``, ``size``, ``e_tag`` (None locally)."""
        try:
            st = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError as e:
            raise ObjectNotFoundError(f"no such file: {path!r}; check the path") from e
        return head_dict(path, st.st_size, None)

    async def close(self) -> None:
        """Nothing to close (present so every store can be closed alike)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalStore)

    def __hash__(self) -> int:
        return hash(LocalStore)

    def __repr__(self) -> str:
        return "LocalStore()"


def local_path(href: str) -> str:
    """Turn a path or ``file://`` URL into a file-system path.

    Parameters
    ----------
    href
        A local href (see :func:`xarray_rasteret._hrefs.is_local`).

    Returns
    -------
    str
        The path, percent-decoded when ``href`` is a ``file://`` URL.

    Examples
    --------
    >>> local_path("file:///data/a%20b.tif")
    '/data/a b.tif'
    """
    if href.startswith("file://"):
        return unquote(urlparse(href).path)
    return os.fspath(href)
