"""Tables (pyarrow, pandas, GeoDataFrame, stac-geoparquet rows) -> records for :mod:`.builder`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from . import _stac

__all__ = ["is_table_like", "records_from_rows", "rows_from_table"]

# Columns of stac-geoparquet (and of our own schema) that are not user columns.
_BOOKKEEPING = frozenset(
    {"type", "stac_version", "stac_extensions", "links", "bbox", "proj:epsg", "crs"}
)


def is_table_like(obj: object) -> bool:
    return isinstance(obj, pa.Table) or hasattr(obj, "to_dict") and hasattr(obj, "columns")


def rows_from_table(source: Any) -> list[dict[str, Any]]:
    """Rows (dicts) from a pyarrow Table, a pandas DataFrame or a GeoDataFrame."""
    if isinstance(source, pa.Table):
        return source.to_pylist()
    geom_name = getattr(source, "_geometry_column_name", None)
    if geom_name is not None:  # GeoDataFrame: footprints in OGC:CRS84
        crs = source.crs
        if crs is not None and not crs.equals("OGC:CRS84"):
            source = source.to_crs("OGC:CRS84")
        if geom_name != "geometry":
            source = source.rename_geometry("geometry")
    return source.to_dict("records")


def _asset_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list):  # a map column comes back as (key, value) pairs
        return dict(value)
    raise TypeError(f"cannot read an 'assets' value of type {type(value).__name__}")


def _geometry(value: Any) -> Any:
    import shapely
    from shapely.geometry import shape

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return shapely.from_wkb(bytes(value))
    if isinstance(value, Mapping):
        return shape(value)
    if isinstance(value, str):
        return shapely.from_wkt(value)
    return value


def records_from_rows(rows: list[dict[str, Any]], bands: list[str] | None) -> list[_stac.Record]:
    records = []
    for row in rows:
        if "id" not in row or "assets" not in row:
            raise ValueError(
                f"a table to build from needs 'id' and 'assets' columns; it has {sorted(row)}"
            )
        assets_in = _asset_dict(row["assets"])
        selected: dict[str, _stac.AssetRef] = {}
        for key in bands if bands is not None else list(assets_in):
            asset = assets_in.get(key)
            if isinstance(asset, str):
                asset = {"href": asset}
            if not asset or not asset.get("href"):
                continue
            if bands is None and not _stac.asset_is_cog(key, asset):
                continue
            bi = asset.get("band_index")
            selected[key] = _stac.AssetRef(
                href=str(asset["href"]),
                band_index=int(bi) if bi is not None else None,
                overrides=_stac.band_overrides(asset),
            )
        props = {
            k: v
            for k, v in row.items()
            if k not in ("id", "datetime", "geometry", "assets")
            and k not in _BOOKKEEPING
            and not k.endswith("_metadata")
        }
        when = row.get("datetime")
        if when is None:
            when = row.get("start_datetime")
        records.append(
            _stac.Record(
                id=str(row["id"]),
                datetime=_stac.parse_datetime(when),
                geometry=_geometry(row.get("geometry")),
                properties=_stac.scalar_properties(props),
                assets=selected,
            )
        )
    return records
