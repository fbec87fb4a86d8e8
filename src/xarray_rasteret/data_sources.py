"""Registered data sources: band-code mappings and URL rewriting for known catalogues.

A data source lets users ask for bands by their usual codes (``B04``) when a
catalogue names its assets otherwise (Earth Search calls it ``red``), and
rewrites asset URLs (``s3://`` to HTTPS, or a signing hook).

Examples
--------
>>> from xarray_rasteret.data_sources import DataSource, register
>>> register(DataSource("my-archive", band_map={"NIR": "b8"}))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import BandNotFoundError

__all__ = ["DataSource", "get", "infer", "register", "registered"]


@dataclass(frozen=True)
class DataSource:
    """How one catalogue names its bands and where its bytes are.

    Parameters
    ----------
    name
        Registry key, e.g. ``"sentinel-2-l2a/earth-search"``.
    band_map
        Band code -> asset key in the collection (``{"B04": "red"}``).
    rewrite_href
        Called on every asset href before reading (URL rewriting, signing).
    collections
        STAC collection ids whose records belong to this source (for inference).
    hosts
        Substrings of asset hrefs that identify this source (for inference).
    """

    name: str
    band_map: Mapping[str, str] = field(default_factory=dict)
    rewrite_href: Callable[[str], str] | None = None
    collections: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

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
        if source.hosts and any(h in href for href in hrefs[:20] for h in source.hosts):
            return source
    return None


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
)
