"""Async byte-range stores: local files, HTTP(S), S3 and user stores, routed by URL."""

from __future__ import annotations

from ._base import Store
from ._checks import (
    ObjectInfo,
    check_unchanged,
    get_range_checked,
    object_info,
)
from ._counting import CountingStore
from ._retry import RetryPolicy, redact_url
from ._router import parse_s3_url, resolve_store
from ._stats import ReadStats, read_stats, track
from ._whole import read_object_async
from .http import HTTPStore
from .local import LocalStore, local_path
from .s3 import S3Store

__all__ = [
    "CountingStore",
    "HTTPStore",
    "LocalStore",
    "ObjectInfo",
    "ReadStats",
    "RetryPolicy",
    "S3Store",
    "Store",
    "check_unchanged",
    "get_range_checked",
    "local_path",
    "object_info",
    "parse_s3_url",
    "read_object_async",
    "read_stats",
    "redact_url",
    "resolve_store",
    "track",
]
