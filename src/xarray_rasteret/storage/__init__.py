"""Async byte-range stores: local files, HTTP(S), S3 and user stores, routed by URL."""

from __future__ import annotations

from typing import Any

from ._base import Store
from ._stats import CountingStore, ReadStats, read_stats, track
from .local import LocalStore, local_path

__all__ = [
    "CountingStore",
    "LocalStore",
    "ReadStats",
    "Store",
    "read_stats",
    "resolve_store",
    "track",
]


def resolve_store(
    href: str, *, storage_options: dict[str, Any] | None = None, backend: Any = None
) -> tuple[Store, str]:
    """Pick the store that serves ``href`` and the path to ask it for.

    Parameters
    ----------
    href
        A local path, ``file://``, ``http(s)://`` or ``s3://`` URL.
    storage_options
        Options for the store (credentials, endpoint, retries, ...).
    backend
        A user store with ``get_range_async``/``get_ranges_async``; used as is.

    Returns
    -------
    tuple of (Store, str)
        The store and the path within it.
    """
    if backend is not None:
        return backend, href
    return LocalStore(), local_path(href)
