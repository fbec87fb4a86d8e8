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
        return urljoin(base, href)
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(base)), href))


def _is_absolute(href: str) -> bool:
    return bool(urlparse(href).scheme and len(urlparse(href).scheme) > 1) or os.path.isabs(href)


def read_items(source: Any) -> list[tuple[dict[str, Any], str | None]]:
    """Collect STAC item dicts, each with the location its relative hrefs resolve against.

    ``source`` is an item dict, a FeatureCollection dict, a pystac object, a path
    to a JSON file holding either, or a list of any of these.
    """
    out: list[tuple[dict[str, Any], str | None]] = []
    stack = list(source) if isinstance(source, list | tuple) else [source]
    for obj in stack:
        base: str | None = None
        if isinstance(obj, str | os.PathLike) and not isinstance(obj, Mapping):
            base = os.fspath(obj)
            with open(base, encoding="utf-8") as f:
                obj = json.load(f)
        elif hasattr(obj, "to_dict"):
            obj = obj.to_dict()
        if not isinstance(obj, Mapping):
            raise TypeError(f"expected a STAC item or FeatureCollection, got {type(obj).__name__}")
        features = obj.get("features") if obj.get("type") == "FeatureCollection" else [obj]
        for item in features or []:
            out.append((dict(item), _self_href(item) or base))
    return out


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
            selected[key] = AssetRef(
                href=resolve_href(str(asset["href"]), base),
                band_index=int(bi) if bi is not None else None,
                overrides=band_overrides(asset),
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
