"""Async byte-range stores: local files, HTTP(S), S3, GCS, Azure and user stores, routed by URL."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._base import Store
from ._checks import (
    ObjectInfo,
    check_unchanged,
    get_range_checked,
    object_info,
)
from ._counting import CountingStore
from ._retry import RetryPolicy, redact_url
from ._router import canonical_options, parse_s3_url, resolve_store
from ._stats import ReadFailure, ReadStats, read_stats, record_decode, record_failure, track
from ._whole import read_object_async
from .local import LocalStore, local_path

if TYPE_CHECKING:
    from .azure import AzureStore
    from .gcs import GCSStore
    from .http import HTTPStore
    from .s3 import S3Store

# The network stores import aiohttp: loaded on first use (PEP 562), so that
# importing the package, or reading local files, does not.
_LAZY = {"AzureStore": "azure", "GCSStore": "gcs", "HTTPStore": "http", "S3Store": "s3"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "AzureStore",
    "CountingStore",
    "GCSStore",
    "HTTPStore",
    "LocalStore",
    "ObjectInfo",
    "ReadFailure",
    "ReadStats",
    "RetryPolicy",
    "S3Store",
    "Store",
    "canonical_options",
    "check_unchanged",
    "get_range_checked",
    "local_path",
    "object_info",
    "parse_s3_url",
    "read_object_async",
    "read_stats",
    "record_decode",
    "record_failure",
    "redact_url",
    "resolve_store",
    "track",
]
