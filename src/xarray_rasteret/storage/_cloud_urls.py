"""Object URLs of Google Cloud Storage and Azure Blob Storage, parsed without their stores.

The router recognises these URLs for every href; the stores themselves (and
aiohttp under them) are imported only when one is made (:mod:`._router`).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from ._retry import redact_url

__all__ = [
    "AZURE_SCHEMES",
    "azure_path",
    "parse_azure_url",
    "parse_gcs_url",
    "split_azure_path",
    "split_gcs_path",
]

_SUFFIXES = (".blob.core.windows.net", ".dfs.core.windows.net")
AZURE_SCHEMES = ("az", "azure", "abfs", "abfss")
"""URL schemes of Azure blobs (adlfs's and obstore's)."""


def split_azure_path(path: str) -> tuple[str, str, str, str]:
    """Split ``account/container/blob[?query]`` into its four parts (query may be "").

    Examples
    --------
    >>> split_azure_path("acct/cont/a/b.tif?sv=2022-11-02&sig=x")
    ('acct', 'cont', 'a/b.tif', 'sv=2022-11-02&sig=x')
    """
    name, _, query = path.partition("?")
    account, _, rest = name.lstrip("/").partition("/")
    container, _, blob = rest.partition("/")
    if not (account and container and blob):
        raise ValueError(f"not an Azure blob path (account/container/blob): {name!r}")
    return account, container, blob, query


def parse_azure_url(url: str) -> str | None:
    """The store path of an ``https://ACCOUNT.blob.core.windows.net/container/blob`` URL.

    ``.dfs.core.windows.net`` (Data Lake) URLs are read at the blob endpoint
    of the same account. The query string (a SAS) is kept.

    Returns
    -------
    str or None
        ``account/container/blob[?query]``, or None for any other URL.

    Examples
    --------
    >>> parse_azure_url("https://acct.blob.core.windows.net/cont/a/b.tif?sv=1&sig=x")
    'acct/cont/a/b.tif?sv=1&sig=x'
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for suffix in _SUFFIXES:
        if host.endswith(suffix) and host != suffix[1:]:
            account = host[: -len(suffix)]
            break
    else:
        return None
    container, _, blob = unquote(parts.path).lstrip("/").partition("/")
    if not container or not blob:
        return None
    return f"{account}/{container}/{blob}" + (f"?{parts.query}" if parts.query else "")


def azure_path(href: str, account_name: str | None) -> str:
    """The store path of ``az://container/blob`` (also ``azure://``, ``abfs://``, ``abfss://``).

    The account is the one in ``container@ACCOUNT.dfs.core.windows.net``, or
    ``account_name`` for ``az://container/blob``; a query string (a SAS) is kept.

    Raises
    ------
    ValueError
        No account (neither in the href nor given), no container or no blob name.

    Examples
    --------
    >>> azure_path("abfs://cont@acct.dfs.core.windows.net/a/b.tif", None)
    'acct/cont/a/b.tif'
    >>> azure_path("az://cont/a/b.tif", "acct")
    'acct/cont/a/b.tif'
    """
    scheme, _, rest = href.partition("://")
    netloc, _, blob = rest.partition("/")
    container, at, host = netloc.partition("@")
    account = host.split(".", 1)[0] if at else account_name
    blob, _, query = blob.partition("?")  # the name as written (literal, as for s3:// and gs://)
    if not container or not blob:
        raise ValueError(
            f"{redact_url(href)!r} names no container and blob; write it as "
            f"{scheme}://CONTAINER/BLOB or {scheme}://CONTAINER@ACCOUNT.dfs.core.windows.net/BLOB"
        )
    if not account:
        raise ValueError(
            f"{redact_url(href)!r} names no storage account: pass storage_options="
            "{'account_name': ...}, or write the href as "
            f"{scheme}://{container}@ACCOUNT.dfs.core.windows.net/... or "
            f"https://ACCOUNT.blob.core.windows.net/{container}/..."
        )
    return f"{account}/{container}/{blob}" + (f"?{query}" if query else "")


_HOSTS = ("storage.googleapis.com", "storage.cloud.google.com")
_JSON_MEDIA = re.compile(r"^/(?:download/)?storage/v1/b/([^/]+)/o/(.+)$")


def split_gcs_path(path: str) -> tuple[str, str]:
    """Split ``gs://bucket/key`` (or ``gcs://``, or ``bucket/key``) into ``(bucket, key)``.

    Examples
    --------
    >>> split_gcs_path("gs://gcp-public-data-landsat/LC08/a.TIF")
    ('gcp-public-data-landsat', 'LC08/a.TIF')
    """
    rest = path.split("://", 1)[1] if "://" in path else path.lstrip("/")
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise ValueError(
            f"not a Google Cloud Storage object path (gs://bucket/key or bucket/key): {path!r}"
        )
    return bucket, key


def parse_gcs_url(url: str) -> tuple[str, str] | None:
    """Recognise a Google Cloud Storage ``https://`` URL of an object.

    Path style (``storage.googleapis.com/bucket/key``), virtual-hosted
    (``bucket.storage.googleapis.com/key``) and the JSON API's media URLs
    (``storage.googleapis.com/storage/v1/b/bucket/o/key?alt=media``) are known.

    Returns
    -------
    tuple of (bucket, key) or None
        None if ``url`` is not one of those, or has a query string (other than
        the JSON API's ``alt=media``) that the plain URL would lose: such URLs
        are read as plain HTTP.

    Examples
    --------
    >>> parse_gcs_url("https://storage.googleapis.com/gcp-public-data-landsat/LC08/a.TIF")
    ('gcp-public-data-landsat', 'LC08/a.TIF')
    >>> parse_gcs_url("https://my-bucket.storage.googleapis.com/a/b.tif")
    ('my-bucket', 'a/b.tif')
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    media = _JSON_MEDIA.match(parts.path)
    if host in _HOSTS and media is not None:
        if parse_qs(parts.query).get("alt") != ["media"]:
            return None
        return unquote(media.group(1)), unquote(media.group(2))
    if parts.query:  # a generation, a userProject, a signature: read the URL as given
        return None
    if host in _HOSTS:
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
    elif host.endswith(".storage.googleapis.com"):
        bucket, key = host[: -len(".storage.googleapis.com")], unquote(parts.path).lstrip("/")
    else:
        return None
    return (bucket, key) if bucket and key else None
