"""Pick the store that serves an href, and the path to ask it for.

Routing
-------
==========================================================  ===========  ====================
href                                                        store        path handed to it
==========================================================  ===========  ====================
``/data/a.tif``, ``a.tif``, ``file:///data/a.tif``          LocalStore   file-system path
``s3://bucket/key``                                         S3Store      ``bucket/key``
``https://bucket.s3.amazonaws.com/key``,                    S3Store      ``bucket/key`` (region
``https://bucket.s3.REGION.amazonaws.com/key``,                          taken from the host)
``https://bucket.s3-REGION.amazonaws.com/key``,
``https://s3.REGION.amazonaws.com/bucket/key``
``http(s)://`` under ``storage_options["endpoint_url"]``    S3Store      ``bucket/key`` (path
                                                                         style)
``gs://bucket/key``, ``gcs://bucket/key``,                  GCSStore     ``bucket/key``
``https://storage.googleapis.com/bucket/key``,
``https://bucket.storage.googleapis.com/key``,
``https://storage.googleapis.com/storage/v1/b/bucket/o/``
``key?alt=media``
``az://container/blob`` (also ``azure://``, ``abfs://``,    AzureStore   ``account/container/``
``abfss://``; account from ``account_name``),                            ``blob``
``az://container@ACCOUNT.dfs.core.windows.net/blob``,
``https://ACCOUNT.blob.core.windows.net/container/blob``    AzureStore   the same, with the
(or ``.dfs.``), with or without a SAS query string                       URL's query (its SAS)
any other ``http(s)://`` URL; S3 and GCS URLs with a        HTTPStore    the full URL
signed query string (``X-Amz-Signature``,
``X-Goog-Signature``); all S3 URLs when
``s3_urls_as_http=True``
==========================================================  ===========  ====================

With ``backend=`` the given object is used as is. The path handed to it is the
key relative to its root for obstore ``LocalStore`` (its ``prefix``),
``HTTPStore`` (its ``url``) and ``S3Store``/``GCSStore`` (bucket and
``prefix``); an href outside that root is a :class:`ValueError`. A relative
href is handed unchanged, and so is every href for any other kind of backend.

storage_options
---------------
Common to HTTP and S3:
``timeout`` (30.0, seconds per attempt, None: no limit), ``max_attempts`` (5),
``backoff`` (0.1, base seconds of exponential backoff with full jitter),
``max_backoff`` (10.0), ``max_connections`` (256, pool size per event loop).

HTTP, GCS and Azure: ``headers`` (dict of extra request headers; sent to the
URL's own origin only, never through a redirect to another), ``bearer_token``
(sent as ``Authorization: Bearer``, to the URL's own origin only: a NASA
Earthdata token, a Google OAuth2 access token, an Azure AD token).

HTTP only: ``netrc`` (True: basic-auth logins from ``$NETRC`` or ``~/.netrc``
for the hosts a redirect chain passes through, each sent only to the host its
entry names, over HTTPS or to a loopback host; a path: that file; False: none).

S3 only: ``anon`` (False; unsigned requests), ``profile``, ``region_name``,
``key``, ``secret``, ``token`` (explicit credentials), ``requester_pays``
(False), ``addressing_style`` (``"auto"``, ``"virtual"``, ``"path"``),
``client_kwargs`` (``{"verify": False}`` or ``{"verify": ca_bundle_path}``).

S3, GCS and Azure: ``endpoint_url``, where the store of the href's scheme
sends its requests (an S3-compatible service; a GCS emulator:
``{endpoint_url}/{bucket}/{key}``; Azurite: ``{endpoint_url}/{account}/{container}/{blob}``).

Azure only: ``account_name`` (the account of ``az://container/blob`` hrefs),
``sas_token`` (a shared access signature for hrefs without one of their own).

Routing: ``s3_urls_as_http`` (False): read ``https://`` S3 URLs with plain HTTP
(public buckets behind a CDN, or when no request should be signed).

boto3's, obstore's and fsspec's names are accepted for the same options
(``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``,
``region``/``aws_region``, ``aws_endpoint``, ``skip_signature``,
``google_bearer_token``, ``google_base_url``, ``azure_storage_account_name``,
``azure_storage_sas_token``/``azure_storage_sas_key``, ``azure_storage_token``,
``azure_storage_endpoint``, ...); see :data:`ALIASES`. Credentials of kinds
the stores do not use (service-account files, account keys) are refused with
what to give instead.

Options that do not apply to an href's store are ignored (one dict may serve a
collection that mixes local, HTTP and S3 hrefs); unknown keys are an error.
Stores are cached per kind and options, so every call with the same options
shares one connection pool per event loop.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

from .._hrefs import is_local
from ._base import Store
from ._cloud_urls import AZURE_SCHEMES, azure_path, parse_azure_url, parse_gcs_url
from .local import LocalStore, local_path

__all__ = ["ALIASES", "backend_path", "canonical_options", "parse_s3_url", "resolve_store"]

_COMMON = {"timeout", "max_attempts", "backoff", "max_backoff", "max_connections"}
_HTTP = _COMMON | {"headers", "bearer_token", "netrc"}
_S3 = _COMMON | {
    "anon",
    "profile",
    "region_name",
    "endpoint_url",
    "key",
    "secret",
    "token",
    "requester_pays",
    "addressing_style",
    "client_kwargs",
}
_GCS = _COMMON | {"headers", "bearer_token", "endpoint_url"}
_AZURE = _COMMON | {"headers", "bearer_token", "endpoint_url", "sas_token"}
_ROUTING = {"s3_urls_as_http", "account_name"}
_KNOWN = _HTTP | _S3 | _GCS | _AZURE | _ROUTING
# The network stores, by module: imported when the first is made, so that a
# read of local files never imports aiohttp (over 100 ms before a first read).
_STORES = {
    "http": ("http", "HTTPStore"),
    "s3": ("s3", "S3Store"),
    "gcs": ("gcs", "GCSStore"),
    "azure": ("azure", "AzureStore"),
}
ALIASES = {
    # boto3, obstore (aws_*), fsspec/s3fs
    "aws_access_key_id": "key",
    "aws_secret_access_key": "secret",
    "aws_session_token": "token",
    "session_token": "token",
    "region": "region_name",
    "aws_region": "region_name",
    "aws_endpoint": "endpoint_url",
    "aws_endpoint_url": "endpoint_url",
    "endpoint": "endpoint_url",
    "skip_signature": "anon",
    "aws_skip_signature": "anon",
    "aws_profile": "profile",
    "request_payer": "requester_pays",
    "aws_request_payer": "requester_pays",
    # obstore's GCS and Azure names (object_store's config keys)
    "google_bearer_token": "bearer_token",
    "google_base_url": "endpoint_url",
    "azure_storage_account_name": "account_name",
    "azure_storage_sas_token": "sas_token",
    "azure_storage_sas_key": "sas_token",
    "sas_key": "sas_token",
    "azure_storage_token": "bearer_token",
    "azure_storage_endpoint": "endpoint_url",
    "azure_endpoint": "endpoint_url",
}
"""The names users bring from boto3, obstore and fsspec, for the same options as ours."""
_UNSUPPORTED = {
    name: "Google service-account credentials are not read; pass an OAuth2 access token as "
    "bearer_token (e.g. `gcloud auth print-access-token`, or google.auth credentials' .token)"
    for name in (
        "google_service_account",
        "google_service_account_key",
        "google_service_account_path",
        "google_application_credentials",
        "service_account",
        "service_account_key",
        "application_credentials",
    )
} | {
    name: "Azure account keys (shared-key signing) are not supported; pass a SAS as "
    "sas_token, or an Azure AD access token as bearer_token"
    for name in (
        "account_key",
        "azure_storage_account_key",
        "azure_storage_access_key",
        "access_key",
        "connection_string",
    )
}

def canonical_options(storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """``storage_options`` with boto3/obstore/fsspec names (``aws_region``, ...) as ours.

    Raises
    ------
    TypeError
        For an unknown key (the message lists the valid ones), a kind of
        credentials the stores do not take (the message says what to give),
        or an option given under two names with different values.
    """
    out: dict[str, Any] = {}
    for key, value in (storage_options or {}).items():
        name = ALIASES.get(key, key)
        if name in _UNSUPPORTED:
            raise TypeError(f"storage_options [{key!r}] is not supported: {_UNSUPPORTED[name]}")
        if name not in _KNOWN:
            raise TypeError(
                f"unknown storage_options [{key!r}]; valid keys: {sorted(_KNOWN)} "
                f"(also accepted: {sorted(ALIASES)})"
            )
        if name in out and out[name] != value:
            raise TypeError(
                f"storage_options give {name!r} twice with different values (as {key!r} "
                "and under another name); give it once"
            )
        out[name] = value
    return out

_REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d+$")
_SIGNED = re.compile(
    r"(?:^|&)(?:x-amz-signature|signature|x-amz-credential|x-goog-signature)=", re.IGNORECASE
)

_cache: dict[tuple[str, Any], Store] = {}
_cache_lock = threading.Lock()


def parse_s3_url(url: str) -> tuple[str, str, str | None] | None:
    """Recognise an AWS S3 ``https://`` URL (virtual-hosted or path style).

    Parameters
    ----------
    url
        An ``http(s)://`` URL.

    Returns
    -------
    tuple of (bucket, key, region) or None
        ``region`` is None for the global endpoint; None if not an S3 API URL
        (S3 website endpoints are plain HTTP).

    Examples
    --------
    >>> parse_s3_url("https://sentinel-cogs.s3.us-west-2.amazonaws.com/a/b.tif")
    ('sentinel-cogs', 'a/b.tif', 'us-west-2')
    >>> parse_s3_url("https://s3.amazonaws.com/bucket/k.tif")
    ('bucket', 'k.tif', None)
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for suffix in (".amazonaws.com", ".amazonaws.com.cn"):
        if host.endswith(suffix):
            labels = host[: -len(suffix)].split(".")
            break
    else:
        return None
    # The service label is the rightmost "s3"/"s3-REGION" followed only by
    # region or dualstack labels; everything left of it is the bucket.
    for i in range(len(labels) - 1, -1, -1):
        label, tail = labels[i], labels[i + 1 :]
        if label != "s3" and not (label.startswith("s3-") and _REGION.match(label[3:])):
            continue
        if not all(t == "dualstack" or _REGION.match(t) for t in tail):
            continue
        regions = [t for t in tail if t != "dualstack"] + (
            [label[3:]] if label.startswith("s3-") else []
        )
        region = regions[0] if regions else None
        path = unquote(parts.path).lstrip("/")
        if i > 0:
            bucket, key = ".".join(labels[:i]), path
        else:
            bucket, _, key = path.partition("/")
        return (bucket, key, region) if bucket and key else None
    return None


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _cached(kind: str, options: dict[str, Any]) -> Store:
    try:
        key = (kind, _freeze(options))
        hash(key)
    except TypeError:  # unhashable option values: a store of its own
        key = None
    if key is not None:
        with _cache_lock:
            cached = _cache.get(key)
            if cached is not None:
                return cached
    module, name = _STORES[kind]
    store: Store = getattr(importlib.import_module(f".{module}", __package__), name)(**options)
    if key is not None:
        with _cache_lock:
            store = _cache.setdefault(key, store)
    return store


def _pick(options: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in keys}


def _under_endpoint(href: str, endpoint: str | None) -> tuple[str, str] | None:
    """Split a path-style URL of an S3-compatible endpoint into ``(bucket, key)``."""
    if not endpoint or not href.startswith(endpoint.rstrip("/") + "/"):
        return None
    rest = unquote(urlsplit(href[len(endpoint.rstrip("/")) :]).path)
    bucket, _, key = rest.lstrip("/").partition("/")
    return (bucket, key) if bucket and key else None


_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")


def _account_name(value: Any) -> str | None:
    """``storage_options['account_name']``, checked against Azure's rule for account names."""
    if value is None or (isinstance(value, str) and _ACCOUNT.match(value)):
        return value
    raise ValueError(
        f"storage_options['account_name'] must be an Azure storage account name (3 to 24 "
        f"lower-case letters and digits), not {value!r}"
    )


def resolve_store(
    href: str, *, storage_options: dict[str, Any] | None = None, backend: Any = None
) -> tuple[Store, str]:
    """Pick the store that serves ``href`` and the path to ask it for.

    Parameters
    ----------
    href
        A local path, ``file://``, ``http(s)://``, ``s3://``, ``gs://`` or
        ``az://`` (``abfs://``) URL.
    storage_options
        Options for the store (see the module docstring for every key).
    backend
        A user store with ``get_range_async``/``get_ranges_async`` (an obstore
        store, for one); used as is (see the module docstring for its path).

    Returns
    -------
    tuple of (Store, str)
        The store and the path within it.

    Raises
    ------
    TypeError
        An unknown ``storage_options`` key.
    ValueError
        ``href`` lies outside the root of an obstore ``backend``; an ``az://``
        href without an account; an option value a store refuses.

    Examples
    --------
    >>> store, path = resolve_store("s3://sentinel-cogs/a.tif", storage_options={"anon": True})
    >>> type(store).__name__, path
    ('S3Store', 'sentinel-cogs/a.tif')
    """
    href = os.fspath(href)
    if backend is not None:
        return backend, backend_path(backend, href)
    options = canonical_options(storage_options)
    if is_local(href):
        return LocalStore(), local_path(href)
    scheme = href.split("://", 1)[0].lower()
    if scheme == "s3":
        return _cached("s3", _pick(options, _S3)), href[5:]
    if scheme in ("gs", "gcs"):
        return _cached("gcs", _pick(options, _GCS)), href.split("://", 1)[1]
    if scheme in AZURE_SCHEMES:
        path = azure_path(href, _account_name(options.get("account_name")))
        return _cached("azure", _pick(options, _AZURE)), path
    if scheme in ("http", "https"):
        signed = bool(_SIGNED.search(urlsplit(href).query))
        if not signed:
            gcs = parse_gcs_url(href)
            if gcs is not None:
                return _cached("gcs", _pick(options, _GCS)), "/".join(gcs)
        blob = parse_azure_url(href)
        if blob is not None:
            return _cached("azure", _pick(options, _AZURE)), blob
        if not options.get("s3_urls_as_http") and not signed:
            in_endpoint = _under_endpoint(href, options.get("endpoint_url"))
            if in_endpoint is not None:
                return _cached("s3", _pick(options, _S3)), "/".join(in_endpoint)
            parsed = parse_s3_url(href)
            if parsed is not None:
                bucket, key, region = parsed
                s3_options = _pick(options, _S3)
                if region is not None:
                    s3_options.setdefault("region_name", region)
                return _cached("s3", s3_options), f"{bucket}/{key}"
        return _cached("http", _pick(options, _HTTP)), href
    raise ValueError(f"unsupported URL scheme {scheme!r} in {href.split('?')[0]!r}")


def _s3_bucket_key(href: str) -> tuple[str, str] | None:
    if href.startswith(("s3://", "gs://")):
        bucket, _, key = href[5:].partition("/")
        return bucket, key
    parsed = parse_s3_url(href) if href.startswith(("http://", "https://")) else None
    return (parsed[0], parsed[1]) if parsed else None


def _relative(href: str, root: str, backend: Any) -> str:
    root = root.rstrip("/")
    if root and href != root and not href.startswith(root + "/"):
        raise ValueError(f"{href.split('?')[0]!r} is not under the root {root!r} of {backend!r}")
    return href[len(root) :].lstrip("/")


def backend_path(backend: Any, href: str) -> str:
    """Return the path to hand a user ``backend`` for ``href``.

    obstore stores are rooted (a directory, a URL, a bucket and prefix); they
    get the key relative to that root. Other backends, and relative hrefs, get
    ``href`` unchanged.

    Examples
    --------
    >>> import obstore.store  # doctest: +SKIP
    >>> backend_path(obstore.store.HTTPStore.from_url("https://h/d/"), "https://h/d/a.tif")
    ... # doctest: +SKIP
    'a.tif'
    """
    kind = type(backend).__name__
    if not type(backend).__module__.startswith("obstore"):
        return href
    is_url = not is_local(href)
    if kind == "LocalStore":
        if is_url:
            raise ValueError(f"an obstore LocalStore cannot read {href.split('?')[0]!r}")
        if not href.startswith(("/", "file://")):
            return href
        path = os.path.abspath(local_path(href))
        prefix = getattr(backend, "prefix", None)
        return _relative(path, os.path.abspath(str(prefix)) if prefix else "", backend)
    if not is_url:
        return href
    if kind == "HTTPStore":
        return _relative(href, str(backend.url), backend)
    if kind in ("S3Store", "GCSStore"):
        bucket_key = _s3_bucket_key(href)
        config = getattr(backend, "config", {}) or {}
        bucket = config.get("bucket") or config.get("aws_bucket") or config.get("google_bucket")
        if bucket_key is None or bucket_key[0] != bucket:
            raise ValueError(
                f"{href.split('?')[0]!r} is not in the bucket {bucket!r} of {backend!r}"
            )
        return _relative(bucket_key[1], str(getattr(backend, "prefix", None) or ""), backend)
    return href
