"""STAC API searches for :func:`~xarray_rasteret.build`: any API, or a registered catalogue id.

The search runs through pystac-client (the optional ``stac`` extra), which
follows the API's ``next`` links page by page (GET ``?token=`` links and POST
links with a body alike); items arrive as plain dicts and go on to the same
record builder as items passed in. A catalogue id
(:mod:`xarray_rasteret.catalogues`) fixes the API, the collection, the band
codes and fixed href rewrites; ``stac_api=`` still overrides its URL.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import catalogues
from ..storage import canonical_options, redact_url
from . import _stac

__all__ = ["SEARCH_KEYWORDS", "Search", "plan", "search_items_async"]

SEARCH_KEYWORDS = (
    "collections",
    "bbox",
    "datetime",
    "date_range",
    "query",
    "filter",
    "max_items",
    "stac_options",
)
"""build()'s keywords that only a STAC API search takes."""

# stac_options keys: where each goes in pystac-client.
_OPEN_OPTIONS = ("headers", "parameters", "modifier", "request_modifier", "timeout")
_SEARCH_OPTIONS = ("method", "limit", "sortby", "fields", "ids", "intersects")
# Items per page unless stac_options says otherwise: fewer round trips than the
# APIs' defaults (10 on Earth Search), within every public API's maximum.
_DEFAULT_LIMIT = 250
_TIMEOUT = 60.0  # seconds per request to the API, unless stac_options gives "timeout"


@dataclass(frozen=True)
class Search:
    """One STAC API search, checked, ready for pystac-client."""

    url: str
    """The API root."""
    params: dict[str, Any]
    """Keywords of ``Client.search`` (collections, bbox, datetime, query, filter, ...)."""
    open_options: dict[str, Any] = field(default_factory=dict)
    """Keywords of ``Client.open`` (headers, parameters, modifier, timeout)."""
    catalogue: catalogues.Catalogue | None = None
    """The registered catalogue searched, if the source was its id."""

    def signer(self) -> Any:
        """The signer of the catalogue's data source (``sign``), or None."""
        if self.catalogue is None or self.catalogue.data_source is None:
            return None
        from .. import data_sources

        return getattr(data_sources.get(self.catalogue.data_source), "sign", None)

    def storage_options(self, given: dict[str, Any] | None) -> dict[str, Any] | None:
        """``given`` over the catalogue's defaults (requester pays, region)."""
        if self.catalogue is None or not self.catalogue.storage_options:
            return given
        return {**self.catalogue.storage_options, **canonical_options(given)}


def _given(values: Mapping[str, Any]) -> list[str]:
    return [k for k in SEARCH_KEYWORDS if values.get(k) is not None]


def _looks_like_an_id(source: str) -> bool:
    """A string that is no file but reads ``namespace/name`` of a registered namespace."""
    if "://" in source or os.path.exists(source):
        return False
    return source.split("/", 1)[0] in catalogues.namespaces() and source.count("/") == 1


def plan(source: Any, stac_api: str | None, search: Mapping[str, Any]) -> Search | None:
    """The search ``build(source, stac_api=..., **search)`` asks for, or None for no search.

    Raises
    ------
    ValueError
        ``source`` and ``stac_api`` together (unless ``source`` is a catalogue
        id), search keywords without a search, bad keyword values.
    KeyError
        ``source`` reads as a catalogue id that is not registered (the message
        lists the ids).
    """
    given = _given(search)
    catalogue = None
    if isinstance(source, str) and source in catalogues.registered():
        catalogue = catalogues.get(source)
        if search.get("collections") is not None:
            raise ValueError(
                f"catalogue {source!r} searches collection {catalogue.collection!r}; drop "
                "collections= (or search with stac_api= and collections= and no catalogue id)"
            )
    elif source is not None:
        if isinstance(source, str) and (
            _looks_like_an_id(source)
            or (given and "://" not in source and "." not in os.path.basename(source))
        ):
            if not os.path.exists(source):
                catalogues.get(source)  # raises, listing the registered ids
        if stac_api is not None:
            raise ValueError(
                "source and stac_api= are exclusive: pass items, paths or a table as source, "
                "or stac_api= (with collections=, bbox=, ...) to search a STAC API; a "
                "catalogue id as source takes stac_api= to override its URL"
            )
        if given:
            raise ValueError(
                f"{', '.join(k + '=' for k in given)} apply to a STAC API search (stac_api= "
                f"or a catalogue id as source); the source here is a "
                f"{type(source).__name__}, built as it is"
            )
        return None
    elif stac_api is None:
        raise ValueError(
            "build() needs a source (COG paths, STAC items, a table, a catalogue id such as "
            f"{catalogues.registered()[0]!r}) or stac_api= to search a STAC API"
        )
    url = stac_api or (catalogue.stac_api if catalogue else "")
    if not isinstance(url, str) or not url:
        raise ValueError(f"stac_api must be the URL of a STAC API root, not {url!r}")
    params, open_options = _search_params(search)
    if catalogue is not None:
        params["collections"] = [catalogue.collection]
    return Search(url, params, open_options, catalogue)


def _search_params(search: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the search keywords; (Client.search keywords, Client.open keywords)."""
    params: dict[str, Any] = {}
    collections = search.get("collections")
    if collections is not None:
        params["collections"] = [collections] if isinstance(collections, str) else list(collections)
    bbox = search.get("bbox")
    if bbox is not None:
        box = list(bbox) if isinstance(bbox, Sequence) and not isinstance(bbox, str) else None
        if box is None or len(box) != 4 or box[1] > box[3]:
            raise ValueError(
                f"bbox must be (west, south, east, north) in lon/lat with south <= north, "
                f"got {bbox!r}"
            )
        params["bbox"] = [float(v) for v in box]
    when, date_range = search.get("datetime"), search.get("date_range")
    if when is not None and date_range is not None:
        raise ValueError("pass datetime= or date_range= (rasteret's name), not both")
    if date_range is not None:
        if isinstance(date_range, str) or len(date_range) != 2:
            raise ValueError(
                f"date_range must be (start, end), e.g. ('2024-06-01', '2024-06-30'); "
                f"None or '..' for an open end; got {date_range!r}"
            )
        when = "/".join(".." if v in (None, "") else str(v) for v in date_range)
    if when is not None:
        params["datetime"] = when
    query = search.get("query")
    max_items = search.get("max_items")
    if isinstance(query, Mapping) and "max_items" in query:
        # rasteret 0.4.1 takes max_items inside query; it is no STAC query term.
        query = {k: v for k, v in query.items() if k != "max_items"}
        if max_items is not None and max_items != search["query"]["max_items"]:
            raise ValueError("max_items= and query['max_items'] differ; pass one")
        max_items = search["query"]["max_items"]
    if query:
        params["query"] = query
    flt = search.get("filter")
    if flt is not None:
        if not isinstance(flt, Mapping | str):
            raise TypeError(
                f"filter must be a CQL2-JSON dict or a CQL2-text string, got {type(flt).__name__}"
            )
        params["filter"] = dict(flt) if isinstance(flt, Mapping) else flt
        params["filter_lang"] = "cql2-json" if isinstance(flt, Mapping) else "cql2-text"
    if max_items is not None:
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"max_items must be a positive integer, got {max_items!r}")
        params["max_items"] = max_items
    options = dict(search.get("stac_options") or {})
    unknown = sorted(set(options) - {*_OPEN_OPTIONS, *_SEARCH_OPTIONS})
    if unknown:
        valid = sorted({*_OPEN_OPTIONS, *_SEARCH_OPTIONS})
        raise ValueError(
            f"unknown stac_options {unknown}; valid keys: {valid} (Client.open's "
            "headers/parameters/modifier/timeout, search's method/limit/...)"
        )
    params.update({k: v for k, v in options.items() if k in _SEARCH_OPTIONS})
    params.setdefault("limit", min(_DEFAULT_LIMIT, params.get("max_items") or _DEFAULT_LIMIT))
    opening = {k: v for k, v in options.items() if k in _OPEN_OPTIONS}
    opening.setdefault("timeout", _TIMEOUT)  # pystac-client waits forever without one
    return params, opening


def _client_class() -> Any:
    try:
        from pystac_client import Client
    except ImportError as e:
        raise ImportError(
            "searching a STAC API needs pystac-client, which is not installed: "
            'pip install "xarray-rasteret[stac]" (or pip install pystac-client)'
        ) from e
    return Client


def _run(search: Search) -> list[dict[str, Any]]:
    """The search's items as dicts, every page followed (blocking: runs in a thread)."""
    client_class = _client_class()
    try:
        client = client_class.open(search.url, **search.open_options)
        return list(client.search(**search.params).items_as_dicts())
    except Exception as e:
        shown = {k: v for k, v in search.params.items() if k != "limit"}
        e.add_note(f"while searching the STAC API {redact_url(search.url)} with {shown}")
        raise


async def search_items_async(
    search: Search, bands: Sequence[str] | None, base_href: str | None
) -> tuple[list[tuple[dict[str, Any], str | None]], list[str] | None]:
    """Run ``search``: (items with the base their relative hrefs resolve against, bands).

    A catalogue's items come back with its band codes as asset keys and its
    href rewrites applied; ``bands`` (codes or asset keys) come back as codes.

    Raises
    ------
    ValueError
        If the search found nothing, naming the API and the search.
    """
    items = await asyncio.to_thread(_run, search)
    if not items:
        shown = {k: v for k, v in search.params.items() if k != "limit"}
        raise ValueError(
            f"the STAC API {redact_url(search.url)} found no items for {shown}; widen the "
            "search (bbox, datetime, query, filter) or check the collection id"
        )
    band_list = list(bands) if bands is not None else None
    if search.catalogue is not None:
        items, band_list = _coded(items, search.catalogue, band_list)
    # Relative hrefs resolve against an item's self link; without one, against the
    # search endpoint the item came from (never the working directory).
    fallback = search.url.rstrip("/") + "/search"
    return [(it, _stac._base_of(it, fallback, base_href)) for it in items], band_list


def _coded(
    items: list[dict[str, Any]], catalogue: catalogues.Catalogue, bands: list[str] | None
) -> tuple[list[dict[str, Any]], list[str] | None]:
    """Items with the catalogue's band codes as asset keys and its href prefixes rewritten."""
    band_map = dict(catalogue.band_map)
    codes: list[str] | None = None
    if band_map:
        by_key = {key: code for code, key in band_map.items()}
        if bands is None:
            codes = list(band_map)
        else:
            codes = []
            for b in bands:
                code = b if b in band_map else by_key.get(b)
                if code is None:
                    raise ValueError(
                        f"band {b!r} is not in catalogue {catalogue.id!r}; its bands are "
                        f"{list(band_map)} (or their asset keys {list(by_key)})"
                    )
                codes.append(code)
    out = []
    for item in items:
        assets = item.get("assets") or {}
        if codes is not None:
            assets = {c: assets[band_map[c]] for c in codes if band_map[c] in assets}
        out.append(dict(item, assets={k: _rewritten(a, catalogue) for k, a in assets.items()}))
    if codes is not None and not any(it["assets"] for it in out):
        found = sorted({k for it in items for k in it.get("assets") or {}})
        raise ValueError(
            f"none of the {len(items)} items has an asset catalogue {catalogue.id!r} maps "
            f"{codes} to ({[band_map[c] for c in codes]}); the items' assets are {found}: "
            "is the STAC API the catalogue's?"
        )
    return out, (codes if bands is not None else None)


def _rewritten(asset: Mapping[str, Any], catalogue: catalogues.Catalogue) -> dict[str, Any]:
    href = str(asset.get("href") or "")
    for prefix, replacement in catalogue.href_prefixes.items():
        if href.startswith(prefix):
            return dict(asset, href=replacement + href[len(prefix) :])
    return dict(asset)
