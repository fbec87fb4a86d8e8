"""Registered data sources: band-code mappings and URL rewriting for known catalogues.

A data source lets users ask for bands by their usual codes (``B04``) when a
catalogue names its assets otherwise (Earth Search calls it ``red``), rewrites
asset URLs (``s3://`` to HTTPS) and signs them at read time: Planetary
Computer's sources carry a :class:`PlanetaryComputerSigner`, which appends a
SAS token from its token API to every request's URL (never to the index).

Examples
--------
>>> from xarray_rasteret.data_sources import DataSource, register
>>> register(DataSource("my-archive", band_map={"NIR": "b8"}))  # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from .errors import BandNotFoundError, PermissionDeniedError, ReadFailedError

__all__ = [
    "DEFAULT_SAS_API",
    "DataSource",
    "PlanetaryComputerSigner",
    "assets_for",
    "blob_container",
    "get",
    "infer",
    "register",
    "registered",
    "resolve",
]


@dataclass(frozen=True)
class DataSource:
    """How one catalogue names its bands, where its bytes are, and how requests are signed.

    Parameters
    ----------
    name
        Registry key, e.g. ``"sentinel-2-l2a/earth-search"``.
    band_map
        Band code -> asset key in the collection (``{"B04": "red"}``).
    rewrite_href
        Applied to every asset href when a read is planned (``s3://`` to HTTPS);
        it must not add credentials, which belong in ``sign``.
    collections
        STAC collection ids whose records belong to this source (for inference).
    hosts
        Substrings of asset hrefs that identify this source (for inference).
    sign
        Called as ``sign(href) -> signed href`` on every request at read time
        (a SAS token appended, for one); never applied to the index. It must
        pickle (dask ships it to the workers). An object with an
        ``invalidate(signed_href)`` method has it called when a signed URL is
        refused (HTTP 401/403), before the href is signed again and the
        request retried once.
    """

    name: str
    band_map: Mapping[str, str] = field(default_factory=dict)
    rewrite_href: Callable[[str], str] | None = None
    collections: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    sign: Callable[[str], str] | None = None

    def asset_for(self, band: str, available: list[str]) -> str:
        """The collection's asset key for ``band`` (a code or an asset key).

        Raises
        ------
        BandNotFoundError
            If neither ``band`` nor its mapping is in ``available``.
        """
        if band in available:
            return band
        mapped = self.band_map.get(band)
        if mapped is not None and mapped in available:
            return mapped
        codes = sorted(c for c, a in self.band_map.items() if a in available)
        raise BandNotFoundError(
            f"band {band!r} is not in the collection; bands there are: {sorted(available)}"
            + (f" (or by code, via data source {self.name!r}: {codes})" if codes else "")
        )


def resolve(
    data_source: str | DataSource | None,
    collection_ids: Sequence[str] = (),
    hrefs: Sequence[str] = (),
) -> DataSource | None:
    """The data source asked for by name or object, else the one inferred (or None).

    Parameters
    ----------
    data_source
        A registered name, a :class:`DataSource`, or None to infer one.
    collection_ids, hrefs
        The collection's STAC collection ids and some of its hrefs, for inference.

    Raises
    ------
    KeyError
        For an unknown name (the message lists the registered ones).
    TypeError
        For anything else.

    Examples
    --------
    >>> resolve(None, ["sentinel-2-l2a"], ["s3://sentinel-cogs/a/B04.tif"]).name
    'sentinel-2-l2a/earth-search'
    """
    if isinstance(data_source, DataSource):
        return data_source
    if isinstance(data_source, str):
        return get(data_source)
    if data_source is not None:
        raise TypeError(
            "data_source must be the name of a registered data source "
            f"({registered()}) or a DataSource, not {type(data_source).__name__}"
        )
    return infer(list(collection_ids), list(hrefs))


def assets_for(
    bands: Sequence[str], available: Sequence[str], source: DataSource | None
) -> dict[str, str]:
    """Each requested band (a code or an asset key) -> the collection's asset key.

    Raises
    ------
    BandNotFoundError
        For a band neither the collection nor the source's codes have.

    Examples
    --------
    >>> assets_for(["B04", "nir"], ["red", "nir"], get("sentinel-2-l2a/earth-search"))
    {'B04': 'red', 'nir': 'nir'}
    """
    mapper = source if source is not None else DataSource("collection")
    return {band: mapper.asset_for(band, list(available)) for band in bands}


def _s3_to_https(bucket_host: str) -> Callable[[str], str]:
    def rewrite(href: str) -> str:
        if href.startswith("s3://"):
            bucket, _, key = href[5:].partition("/")
            return f"https://{bucket}.{bucket_host}/{key}"
        return href

    return rewrite


_S2_EARTH_SEARCH = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1",
    "B06": "rededge2", "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09",
    "B11": "swir16", "B12": "swir22", "SCL": "scl", "AOT": "aot", "WVP": "wvp",
}  # fmt: skip
_LANDSAT_C2L2 = {
    "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "nir08",
    "B6": "swir16", "B7": "swir22", "B10": "lwir11", "QA_PIXEL": "qa_pixel",
}  # fmt: skip

_REGISTRY: dict[str, DataSource] = {}


def register(source: DataSource, *, replace: bool = False) -> None:
    """Add ``source`` to the registry.

    Parameters
    ----------
    source
        The data source.
    replace
        Overwrite an entry of the same name (else ValueError).
    """
    if source.name in _REGISTRY and not replace:
        raise ValueError(f"data source {source.name!r} is registered already; pass replace=True")
    _REGISTRY[source.name] = source


def registered() -> list[str]:
    """Names of the registered data sources."""
    return sorted(_REGISTRY)


def get(name: str) -> DataSource:
    """The registered data source called ``name``.

    Raises
    ------
    KeyError
        Naming the registered sources.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown data source {name!r}; registered: {registered()}") from None


def infer(collection_ids: list[str], hrefs: list[str]) -> DataSource | None:
    """Guess the data source of a collection from its STAC collection ids and hrefs."""
    for source in _REGISTRY.values():
        if any(c in source.collections for c in collection_ids):
            if not source.hosts or any(h in href for href in hrefs[:20] for h in source.hosts):
                return source
    for source in _REGISTRY.values():
        # Not by host alone for a source that signs: a stranger's Azure blob must not
        # be sent to Planetary Computer's token API.
        if source.sign is None and source.hosts and any(
            h in href for href in hrefs[:20] for h in source.hosts
        ):
            return source
    return None

# ---------------------------------------------------------------- Planetary Computer SAS

DEFAULT_SAS_API = "https://planetarycomputer.microsoft.com/api/sas/v1"
"""Planetary Computer's SAS token API (``{sas_api}/token/{account}/{container}``)."""

_BLOB_SUFFIX = ".blob.core.windows.net"
_PUBLIC_ACCOUNTS = {"ai4edatasetspublicassets"}  # thumbnails: public, never signed
_SAS_PARAMS = {"sig", "se", "sp", "st"}


@dataclass
class _Token:
    query: str
    refresh_at: float
    """``time.time()`` after which the token is fetched anew (a margin before expiry)."""


# Tokens of every signer in this process, by token URL: a dask worker unpickles the
# signer once per task, and every task must share the token, not fetch its own.
_tokens: dict[str, _Token] = {}
_tokens_lock = threading.Lock()


def _reset_tokens_after_fork() -> None:
    global _tokens_lock
    _tokens_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_tokens_after_fork)


def blob_container(href: str) -> tuple[str, str] | None:
    """``(account, container)`` of an Azure blob URL; None for any other href.

    ``https://ACCOUNT.blob.core.windows.net/CONTAINER/blob``, and the
    path-style ``http://127.0.0.1:10000/ACCOUNT/CONTAINER/blob`` of Azurite and
    other IP-addressed endpoints (Azure's own rule for IP hosts).

    Examples
    --------
    >>> blob_container("https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/a/b.tif")
    ('sentinel2l2a01', 'sentinel2-l2')
    >>> blob_container("s3://bucket/key.tif") is None
    True
    """
    try:
        parts = urlsplit(href)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if parts.scheme not in ("http", "https"):
        return None
    segments = parts.path.lstrip("/").split("/")
    if host.endswith(_BLOB_SUFFIX):
        account = host[: -len(_BLOB_SUFFIX)]
        container, blob = segments[0], segments[1:]
    else:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                return None
        if len(segments) < 3:
            return None
        account, container, blob = segments[0], segments[1], segments[2:]
    if not account or not container or not any(blob):
        return None
    return account, container


def _already_signed(query: str) -> bool:
    return any(part.split("=", 1)[0].lower() in _SAS_PARAMS for part in query.split("&"))


class PlanetaryComputerSigner:
    """Sign Azure blob hrefs with SAS tokens from Planetary Computer's token API.

    ``GET {sas_api}/token/{account}/{container}`` answers
    ``{"token": "sv=...&se=...&sig=...", "msft:expiry": "...Z"}``; the token is
    appended as the URL's query. Tokens are cached per process and token URL
    (so per account and container, and shared by every task of a dask worker)
    until ``margin`` seconds before their expiry (a quarter of their lifetime
    for short-lived ones), and dropped by :meth:`invalidate` when a server
    refuses them. Hrefs that are not Azure blobs, public thumbnails and
    already signed URLs are returned unchanged (as the planetary-computer SDK
    does). The object holds settings only: it pickles, and its tokens never do.

    Parameters
    ----------
    sas_api
        Base URL of the token API; default ``$PC_SDK_SAS_URL`` (the SDK's
        setting: the API's ``/token`` URL) when set, else
        :data:`DEFAULT_SAS_API`.
    subscription_key_env
        Environment variable holding an optional subscription key, sent as
        ``Ocp-Apim-Subscription-Key`` (read when a token is fetched, in the
        process that fetches it; the key is never stored in this object).
    margin
        Seconds before expiry at which a token is renewed.
    timeout
        Seconds one token request may take.
    max_attempts
        Attempts per token request (HTTP 429, 5xx and connection errors are retried).

    Examples
    --------
    >>> sign = PlanetaryComputerSigner()
    >>> sign("https://example.com/a.tif")  # not an Azure blob: unchanged
    'https://example.com/a.tif'
    """

    def __init__(
        self,
        sas_api: str | None = None,
        *,
        subscription_key_env: str = "PC_SDK_SUBSCRIPTION_KEY",
        margin: float = 60.0,
        timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        if sas_api is not None and not str(sas_api).startswith(("http://", "https://")):
            raise ValueError(
                f"sas_api={sas_api!r}: expected the http(s) URL of the SAS token API, "
                f"e.g. {DEFAULT_SAS_API!r}"
            )
        self.sas_api = sas_api.rstrip("/") if sas_api else None
        self.subscription_key_env = subscription_key_env
        self.margin = float(margin)
        self.timeout = float(timeout)
        self.max_attempts = max(int(max_attempts), 1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sas_api={self._token_base().removesuffix('/token')!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash(tuple(sorted(vars(self).items())))

    def _token_base(self) -> str:
        if self.sas_api is not None:
            return f"{self.sas_api}/token"
        return (os.environ.get("PC_SDK_SAS_URL") or f"{DEFAULT_SAS_API}/token").rstrip("/")

    def token_url(self, account: str, container: str) -> str:
        """The URL that issues tokens for ``account``/``container``."""
        return f"{self._token_base()}/{quote(account)}/{quote(container)}"

    def _target(self, href: str) -> str | None:
        """The token URL for ``href``, or None if ``href`` is not signed."""
        found = blob_container(href)
        if found is None or found[0] in _PUBLIC_ACCOUNTS:
            return None
        if _already_signed(urlsplit(href).query):
            return None
        return self.token_url(*found)

    @staticmethod
    def _signed(href: str, token: str) -> str:
        return f"{href}{'&' if '?' in href else '?'}{token}"

    def cached(self, href: str) -> str | None:
        """``href`` signed with a cached, fresh token, without I/O; None if one must be fetched."""
        url = self._target(href)
        if url is None:
            return href
        token = _tokens.get(url)
        if token is None or time.time() >= token.refresh_at:
            return None
        return self._signed(href, token.query)

    def __call__(self, href: str) -> str:
        """``href`` with a SAS token appended (fetched if none is cached and fresh).

        Raises
        ------
        PermissionDeniedError
            The token API refused (HTTP 401/403: a subscription key may be needed).
        ReadFailedError
            The token API failed or answered without a token.
        """
        url = self._target(href)
        if url is None:
            return href
        with _tokens_lock:  # one fetch per token, however many requests want it
            token = _tokens.get(url)
            if token is None or time.time() >= token.refresh_at:
                token = _tokens[url] = self._fetch(url)
        return self._signed(href, token.query)

    def invalidate(self, signed_href: str) -> None:
        """Forget the cached token ``signed_href`` carries (a server refused it).

        A token fetched since (by a concurrent refusal) is kept.
        """
        base, _, query = signed_href.partition("?")
        url = self._target(base)
        if url is None:
            return
        with _tokens_lock:
            token = _tokens.get(url)
            if token is not None and token.query and token.query in query:
                del _tokens[url]

    def _fetch(self, url: str) -> _Token:
        key = os.environ.get(self.subscription_key_env) if self.subscription_key_env else None
        headers = {"Accept": "application/json"}
        if key:
            headers["Ocp-Apim-Subscription-Key"] = key
        cause = ""
        for attempt in range(self.max_attempts):
            if attempt:
                time.sleep(min(0.2 * 2**attempt, 5.0))
            request = urllib.request.Request(url, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    body = resp.read(1 << 20)
                return _parse_token(url, body, self.margin)
            except urllib.error.HTTPError as e:
                e.close()
                if e.code in (401, 403):
                    raise PermissionDeniedError(
                        f"the SAS token API refused a token at {url} (HTTP {e.code}); "
                        f"set ${self.subscription_key_env} to a Planetary Computer "
                        "subscription key, or check sas_api"
                    ) from None
                cause = f"HTTP {e.code}"
                if e.code != 429 and e.code < 500:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                cause = type(e).__name__ + (f": {e.reason}" if hasattr(e, "reason") else "")
        raise ReadFailedError(
            f"no SAS token from {url} ({cause}); check sas_api and the network, or sign "
            "the hrefs yourself with sign="
        )


def _parse_token(url: str, body: bytes, margin: float) -> _Token:
    """The token of a token API answer, renewed ``margin`` (or a quarter of its life) early."""
    try:
        answer = json.loads(body)
        query = str(answer["token"]).lstrip("?")
        expiry = datetime.fromisoformat(str(answer["msft:expiry"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        raise ReadFailedError(
            f"the SAS token API at {url} answered without a token and an ISO 8601 "
            "'msft:expiry'; check sas_api"
        ) from None
    if expiry.tzinfo is None:
        raise ReadFailedError(f"the SAS token API at {url} gave an expiry without a time zone")
    expires_at = expiry.timestamp()
    life = expires_at - time.time()
    return _Token(query, expires_at - min(margin, max(life, 0.0) / 4))


def _builtin(**kwargs: Any) -> None:
    register(DataSource(**kwargs))


_builtin(
    name="sentinel-2-l2a/earth-search",
    band_map=_S2_EARTH_SEARCH,
    collections=("sentinel-2-l2a", "sentinel-2-c1-l2a"),
    hosts=("sentinel-cogs", "e84-earth-search"),
    rewrite_href=_s3_to_https("s3.us-west-2.amazonaws.com"),
)
_builtin(
    name="sentinel-2-l2a/planetary-computer",
    band_map={code: code for code in _S2_EARTH_SEARCH},
    collections=("sentinel-2-l2a",),
    hosts=("blob.core.windows.net",),
    sign=PlanetaryComputerSigner(),
)
_builtin(
    name="landsat-c2-l2/earth-search",
    band_map=_LANDSAT_C2L2,
    collections=("landsat-c2-l2",),
    hosts=("usgs-landsat",),
)
_builtin(
    name="landsat-c2-l2/planetary-computer",
    band_map=_LANDSAT_C2L2,
    collections=("landsat-c2-l2",),
    hosts=("landsateuwest", "blob.core.windows.net"),
    sign=PlanetaryComputerSigner(),
)
