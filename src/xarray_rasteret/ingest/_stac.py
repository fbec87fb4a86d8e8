"""STAC items (dicts, JSON files, ItemCollections) -> plain records for :mod:`.ingest`.

No STAC client is needed: items are read as JSON. Relative asset hrefs are
resolved against the item's ``self`` link or, failing that, the JSON file the
item was read from.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlparse

__all__ = [
    "AssetRef",
    "Record",
    "asset_is_cog",
    "band_overrides",
    "is_stac_like",
    "parse_datetime",
    "read_items",
    "read_items_async",
    "records_from_items",
    "resolve_href",
]

# Property names the collection schema owns; an item property of the same name
# is not copied into a user column.
_SCHEMA_NAMES = frozenset({"id", "datetime", "geometry", "assets", "bbox", "proj:epsg", "crs"})
_NON_DATA_ROLES = frozenset({"thumbnail", "overview", "metadata"})


@dataclass
class AssetRef:
    """One asset of a record: where the file is and what STAC says about its samples."""

    href: str
    band_index: int | None = None
    """The sample of the file this band is, when the source says so."""
    overrides: list[dict[str, float | None]] = field(default_factory=list)
    """Per sample: ``nodata``/``scale``/``offset`` from ``raster:bands`` (file values win)."""
    resolved_from: str | None = None
    """For a relative href: what it was and what it was resolved against (for messages)."""


@dataclass
class Record:
    """A record before its headers are parsed."""

    id: str
    datetime: _dt.datetime | None
    geometry: Any = None
    """A shapely geometry in OGC:CRS84, or None to compute it from the raster bounds."""
    properties: dict[str, Any] = field(default_factory=dict)
    """Scalar user columns."""
    assets: dict[str, AssetRef] = field(default_factory=dict)


def is_stac_like(obj: object) -> bool:
    """Whether ``obj`` looks like a STAC Item, ItemCollection or FeatureCollection."""
    if hasattr(obj, "to_dict") and type(obj).__module__.startswith("pystac"):
        return True
    return isinstance(obj, Mapping) and obj.get("type") in ("Feature", "FeatureCollection")


def parse_datetime(value: object) -> _dt.datetime | None:
    """Parse an ISO 8601 string (or datetime) into an aware UTC datetime; None stays None."""
    if value is None or value == "" or value != value:  # None, empty, NaN/NaT
        return None
    if isinstance(value, _dt.datetime):
        d = value
    elif isinstance(value, _dt.date):
        d = _dt.datetime(value.year, value.month, value.day)
    else:
        s = str(value).strip()
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        d = _dt.datetime.fromisoformat(s)
    if d.tzinfo is None:
        return d.replace(tzinfo=_dt.UTC)
    return d.astimezone(_dt.UTC)


def resolve_href(href: str, base: str | None) -> str:
    """Resolve a possibly relative ``href`` against ``base`` (a file path or URL of the item)."""
    if not base or _is_absolute(href):
        return href
    if "://" in base:
        if urlparse(base).scheme.lower() in ("http", "https", "file"):
            return urljoin(base, href)
        # urljoin leaves s3://, gs://, az:// bases alone: join their paths by hand.
        parts = urlparse(base)
        path = posixpath.normpath(posixpath.join(posixpath.dirname(parts.path), href))
        return f"{parts.scheme}://{parts.netloc}{path}"
    if base.endswith(os.sep):  # a folder given as base_href
        return os.path.normpath(os.path.join(base, href))
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(base)), href))


def _origin(href: str, base: str | None) -> str:
    if base:
        from ..storage import redact_url

        against = repr(redact_url(base)) if "://" in base else repr(base)
    else:
        against = f"the working directory {os.getcwd()!r} (the item has no self link or file)"
    # A relative href's query may be a signature too; redact_url only knows absolute URLs.
    shown = href.split("?", 1)[0] + ("?<redacted>" if "?" in href else "")
    return f"the relative href {shown!r} resolved against {against}"


def _is_absolute(href: str) -> bool:
    return bool(urlparse(href).scheme and len(urlparse(href).scheme) > 1) or os.path.isabs(href)


ITEM_SUFFIXES = (".json", ".geojson", ".ndjson", ".jsonl", ".geojsonl")
"""File suffixes read as STAC items: JSON (an item, a list, a FeatureCollection) or NDJSON."""
_LINE_SUFFIXES = (".ndjson", ".jsonl", ".geojsonl")
# A STAC file is read whole; a catalogue dump larger than this is more likely a mistake
# (a GeoTIFF with a .json name, a wrong URL) than items.
_MAX_ITEM_BYTES = 512 * 2**20


def is_item_file(obj: object) -> bool:
    """Whether ``obj`` is a path/URL whose suffix says it holds STAC items."""
    if not isinstance(obj, str | os.PathLike):
        return False
    return os.fspath(obj).split("?", 1)[0].lower().endswith(ITEM_SUFFIXES)


def parse_item_text(text: str, where: str) -> list[Any]:
    """The JSON values of a STAC file: one JSON document, or one per line (NDJSON).

    Raises
    ------
    ValueError
        Naming ``where`` and the line that is not JSON.
    """
    stripped = text.lstrip("\ufeff").strip()
    if not stripped:
        raise ValueError(f"{where} is empty: expected STAC items as JSON or NDJSON")
    lines = where.split("?", 1)[0].lower().endswith(_LINE_SUFFIXES)
    if not lines:
        try:
            return [json.loads(stripped)]
        except json.JSONDecodeError as e:
            # "Extra data" after a first value: one item per line under a .json name.
            if not e.msg.startswith("Extra data"):
                raise ValueError(f"{where} is not JSON ({e}); expected STAC items") from None
    out = []
    for n, line in enumerate(stripped.splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{where} line {n} is not JSON ({e}); an NDJSON file holds one STAC "
                    "item per line"
                ) from None
    return out


def flatten_items(
    values: Iterable[Any], base: str | None, where: str
) -> list[tuple[dict[str, Any], str | None]]:
    """Items (with the location their relative hrefs resolve against) of parsed values.

    A value is an item, a FeatureCollection/ItemCollection, a pystac object, or a
    list of these.
    """
    out: list[tuple[dict[str, Any], str | None]] = []
    todo = list(values)
    while todo:
        obj = todo.pop(0)
        if hasattr(obj, "to_dict") and not isinstance(obj, Mapping):
            obj = obj.to_dict()
        if isinstance(obj, list | tuple):
            todo[:0] = list(obj)
            continue
        if not isinstance(obj, Mapping):
            raise TypeError(
                f"expected a STAC item or FeatureCollection in {where}, got {type(obj).__name__}"
            )
        if obj.get("type") == "FeatureCollection" or "features" in obj:
            todo[:0] = list(obj.get("features") or [])
            continue
        kind = obj.get("type")
        if kind not in (None, "Feature") or (kind is None and "assets" not in obj):
            raise ValueError(
                f"{where} holds a {obj.get('type') or 'JSON object'} that is not a STAC item "
                "(no 'assets'); pass items, a FeatureCollection, or NDJSON of items"
            )
        out.append((dict(obj), base))
    return out


async def read_items_async(
    source: Any,
    *,
    base_href: str | None = None,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
) -> list[tuple[dict[str, Any], str | None]]:
    """Collect STAC item dicts, each with the location its relative hrefs resolve against.

    Parameters
    ----------
    source
        An item dict, a FeatureCollection dict, a pystac object, a path or URL of
        a file holding items (a JSON item, list of items or FeatureCollection, or
        NDJSON with one item per line), or a list of any of these.
    base_href
        Resolve relative asset hrefs against this folder/URL instead of the item's
        ``self`` link or the file it was read from.
    storage_options, backend
        How to reach remote item files (read whole, at most 512 MiB).

    Returns
    -------
    list of (dict, str or None)
        Each item and its base: ``base_href``, else its ``self`` link, else its file.
    """
    from ..storage import read_object_async

    out: list[tuple[dict[str, Any], str | None]] = []
    stack = list(source) if isinstance(source, list | tuple) else [source]
    for obj in stack:
        if isinstance(obj, str | os.PathLike) and not isinstance(obj, Mapping):
            where = os.fspath(obj)
            if where[:7].lower() == "file://":
                where = where[7:]
            try:
                if "://" in where:
                    data = await read_object_async(
                        where,
                        storage_options=storage_options,
                        backend=backend,
                        max_bytes=_MAX_ITEM_BYTES,
                    )
                else:
                    with open(where, "rb") as f:
                        data = f.read()
            except FileNotFoundError as e:  # ObjectNotFoundError is one too
                from ..errors import ObjectNotFoundError
                from ..storage import redact_url

                status = " (HTTP 404)" if "HTTP 404" in str(e) else ""
                raise ObjectNotFoundError(
                    f"no such STAC item file: {redact_url(where)!r}{status}; check the path or URL"
                ) from None
            values = parse_item_text(data.decode("utf-8"), where)
            items = flatten_items(values, where, where)
        else:
            items = flatten_items([obj], None, "the items passed")
        for item, base in items:
            out.append((item, _base_of(item, base, base_href)))
    return out


def read_items(
    source: Any, *, base_href: str | None = None
) -> list[tuple[dict[str, Any], str | None]]:
    """Synchronous :func:`read_items_async` for local files and in-memory items."""
    from .._sync import sync

    return sync(read_items_async(source, base_href=base_href))


def _base_of(item: Mapping[str, Any], file: str | None, base_href: str | None) -> str | None:
    if base_href is not None:
        base = os.fspath(base_href)
        # A folder (or a URL prefix) as the base: hrefs resolve inside it.
        if "://" in base:
            return base if base.endswith("/") else base + "/"
        return os.path.join(os.path.abspath(base), "")
    return _self_href(item) or file


def _self_href(item: Mapping[str, Any]) -> str | None:
    for link in item.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == "self" and link.get("href"):
            return str(link["href"])
    return None


def asset_is_cog(key: str, asset: Mapping[str, Any]) -> bool:
    """Whether a STAC asset looks like a (cloud-optimized) GeoTIFF holding data."""
    media = str(asset.get("type") or "").lower()
    href = str(asset.get("href") or "")
    if media:
        if "tiff" not in media:
            return False
    elif not href.lower().split("?")[0].endswith((".tif", ".tiff")):
        return False
    roles = set(asset.get("roles") or [])
    return not (roles and roles <= _NON_DATA_ROLES)


def _num(value: object) -> float | None:
    if value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def band_overrides(asset: Mapping[str, Any]) -> list[dict[str, float | None]]:
    """Get ``nodata``/``scale``/``offset`` per sample from ``raster:bands`` or ``bands``."""
    bands = asset.get("raster:bands") or asset.get("bands") or []
    out: list[dict[str, float | None]] = []
    for b in bands:
        if not isinstance(b, Mapping):
            out.append({})
            continue
        out.append(
            {
                "nodata": _num(b.get("nodata")),
                "scale": _num(b.get("scale", b.get("raster:scale"))),
                "offset": _num(b.get("offset", b.get("raster:offset"))),
            }
        )
    return out


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | bool | int | float)


def scalar_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the scalar entries of a properties mapping that are not schema columns."""
    out = {}
    for k, v in props.items():
        if k in _SCHEMA_NAMES or not _is_scalar(v):
            continue
        if isinstance(v, float) and math.isnan(v):
            v = None
        out[k] = v
    return out


def records_from_items(
    items: Iterable[tuple[dict[str, Any], str | None]], bands: list[str] | None
) -> list[Record]:
    """Turn STAC item dicts into records, selecting assets by key or by COG media type."""
    from shapely.geometry import shape

    records = []
    for item, base in items:
        props = item.get("properties") or {}
        when = props.get("datetime") or props.get("start_datetime")
        record_id = item.get("id")
        if record_id is None:
            raise ValueError(f"STAC item without an id (from {base or 'memory'})")
        assets_in = item.get("assets") or {}
        selected: dict[str, AssetRef] = {}
        keys = bands if bands is not None else list(assets_in)
        for key in keys:
            asset = assets_in.get(key)
            if asset is None:
                if bands is not None:
                    continue  # missing in this item: the band is null for this record
                continue
            if bands is None and not asset_is_cog(key, asset):
                continue
            bi = asset.get("band_index")
            raw = str(asset["href"])
            selected[key] = AssetRef(
                href=resolve_href(raw, base),
                band_index=int(bi) if bi is not None else None,
                overrides=band_overrides(asset),
                resolved_from=None if _is_absolute(raw) else _origin(raw, base),
            )
        user = scalar_properties(props)
        if item.get("collection") is not None and "collection" not in user:
            user["collection"] = item["collection"]
        geom = item.get("geometry")
        records.append(
            Record(
                id=str(record_id),
                datetime=parse_datetime(when),
                geometry=shape(geom) if geom else None,
                properties=user,
                assets=selected,
            )
        )
    return records
