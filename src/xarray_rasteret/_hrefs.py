"""What an href is: local or remote, a GeoTIFF or a collection, by its spelling alone."""

from __future__ import annotations

import os

__all__ = ["COLLECTION_SUFFIXES", "TIFF_SUFFIXES", "is_local", "suffix_of"]

COLLECTION_SUFFIXES = (".parquet", ".geoparquet", ".pq")
TIFF_SUFFIXES = (".tif", ".tiff", ".gtiff", ".cog")


def is_local(href: str) -> bool:
    """Whether ``href`` is a file-system path or a ``file://`` URL (not a remote URL)."""
    return "://" not in href or href[:7].lower() == "file://"


def suffix_of(href: str) -> str:
    """The lower-case file suffix of ``href``, ignoring a query string and a trailing slash."""
    return os.path.splitext(href.split("?", 1)[0].rstrip("/"))[1].lower()
