"""Async byte-range stores: local files, HTTP(S), S3, GCS, Azure and user stores, routed by URL."""

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
from ._router import canonical_options, parse_s3_url, resolve_store
from ._stats import ReadFailure, ReadStats, read_stats, record_failure, track
from ._whole import read_object_async
from .azure import AzureStore
from .gcs import GCSStore
from .http import HTTPStore
from .local import LocalStore, local_path
from .s3 import S3Store

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
    "record_failure",
    "redact_url",
    "resolve_store",
    "track",
]
