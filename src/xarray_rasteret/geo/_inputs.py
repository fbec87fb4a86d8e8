"""Parsing of each accepted ``geometries=`` input form, for :mod:`.aoi`.

One job: turn one input -- bbox, shapely geometry or sequence, WKB, GeoJSON
mapping, pyarrow array / table (WKB, WKT or GeoArrow, with GeoArrow and
GeoParquet ``geo`` metadata), GeoDataFrame / GeoSeries, DuckDB relation or
Arrow stream -- into ``(geometries, CRS from metadata or None, attributes or
None)`` with :func:`dispatch`. Validation, CRS defaulting and reprojection are
:func:`xarray_rasteret.geo.aoi.normalize_geometries`'s job.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyproj
import shapely
from numpy.typing import NDArray

from ._geometry_errors import (
    EmptyGeometryError,
    GeometryInputError,
    UnsupportedGeometryInputError,
)
from .crs import as_crs, parse_crs

__all__ = ["ACCEPTED_FORMS", "dispatch"]

ACCEPTED_FORMS: Final = (
    "a bbox (xmin, ymin, xmax, ymax); a shapely geometry or a list of them; WKB bytes or "
    "a list of them; a GeoJSON geometry, Feature or FeatureCollection dict; a pyarrow "
    "Array/ChunkedArray of WKB, WKT or GeoArrow; a pyarrow Table/RecordBatch; a "
    "GeoDataFrame/GeoSeries; a DuckDB relation (or any Arrow stream)"
)


_Result = tuple[list[Any], "pyproj.CRS | None", "pa.Table | None"]


def dispatch(obj: Any, geometry_column: str | None) -> _Result:
    """Parse one ``geometries=`` input by its form.

    Returns ``(geometries, CRS from the input's metadata or None, attributes
    table or None)``; the geometries are not validated yet.
    """
    if obj is None:
        raise UnsupportedGeometryInputError(f"geometries is None; accepted: {ACCEPTED_FORMS}")
    if isinstance(obj, shapely.Geometry):
        return [obj], None, None
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return [_from_wkb(bytes(obj), 0)], None, None
    if isinstance(obj, str):
        raise UnsupportedGeometryInputError(
            f"geometries is a string ({obj[:40]!r}); accepted: {ACCEPTED_FORMS}. "
            "Parse WKT with shapely.from_wkt first."
        )
    if isinstance(obj, Mapping):
        return _from_geojson(obj)
    if _is_bbox(obj):
        return [_bbox(obj)], None, None
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        geoms, crs = _from_arrow_array(obj, None)
        return geoms, crs, None
    if isinstance(obj, pa.Table):
        return _from_table(obj, geometry_column)
    if isinstance(obj, pa.RecordBatch):
        return _from_table(pa.Table.from_batches([obj]), geometry_column)
    if isinstance(obj, pa.RecordBatchReader):
        return _from_table(obj.read_all(), geometry_column)
    module = type(obj).__module__ or ""
    if module.startswith("geopandas"):
        return _from_geopandas(obj, geometry_column)
    if module.startswith("duckdb") or hasattr(obj, "__arrow_c_stream__"):
        return _from_table(_to_arrow_table(obj), geometry_column)
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 1:
        obj = obj.tolist()
    if isinstance(obj, (list, tuple)):
        return _from_sequence(obj)
    raise UnsupportedGeometryInputError(
        f"unsupported geometries input of type {type(obj).__module__}.{type(obj).__name__}; "
        f"accepted: {ACCEPTED_FORMS}"
    )


def _is_bbox(obj: Any) -> bool:
    if isinstance(obj, np.ndarray):
        return obj.ndim == 1 and obj.shape[0] == 4 and obj.dtype.kind in "iuf"
    if isinstance(obj, (list, tuple)) and len(obj) == 4:
        return all(isinstance(v, Real) and not isinstance(v, bool) for v in obj)
    return False


def _bbox(obj: Any) -> shapely.Geometry:
    xmin, ymin, xmax, ymax = (float(v) for v in obj)
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        raise GeometryInputError(f"bbox {tuple(obj)!r} has non-finite values")
    if xmin > xmax:
        raise GeometryInputError(
            f"bbox (xmin, ymin, xmax, ymax) = {tuple(obj)!r} has xmin > xmax "
            "(bboxes crossing the antimeridian are not supported: split them in two)"
        )
    if ymin > ymax:
        raise GeometryInputError(f"bbox (xmin, ymin, xmax, ymax) = {tuple(obj)!r} has ymin > ymax")
    if xmin == xmax or ymin == ymax:
        raise EmptyGeometryError(f"bbox {tuple(obj)!r} has zero width or height")
    return shapely.box(xmin, ymin, xmax, ymax)


def _from_wkb(data: bytes, index: int) -> shapely.Geometry:
    try:
        return shapely.from_wkb(data)
    except shapely.errors.GEOSException as exc:
        raise GeometryInputError(f"geometry {index} is not valid WKB: {exc}") from None


def _from_sequence(items: Sequence[Any]) -> _Result:
    if len(items) == 0:
        raise EmptyGeometryError("no geometries given (empty sequence)")
    geoms: list[Any] = []
    props: list[dict[str, Any]] = []
    any_feature = False
    for i, item in enumerate(items):
        if isinstance(item, shapely.Geometry):
            geoms.append(item)
            props.append({})
        elif isinstance(item, (bytes, bytearray, memoryview)):
            geoms.append(_from_wkb(bytes(item), i))
            props.append({})
        elif isinstance(item, Mapping) and item.get("type") == "Feature":
            any_feature = True
            geoms.append(_geojson_geometry(item.get("geometry"), i))
            props.append(dict(item.get("properties") or {}))
        elif isinstance(item, Mapping):
            geoms.append(_geojson_geometry(item, i))
            props.append({})
        elif item is None:
            raise EmptyGeometryError(f"geometry {i} is null (None)")
        else:
            raise UnsupportedGeometryInputError(
                f"geometry {i} is a {type(item).__name__}; a list must hold shapely "
                "geometries, WKB bytes or GeoJSON mappings. "
                f"Accepted inputs: {ACCEPTED_FORMS}"
            )
    attributes = _properties_table(props) if any_feature else None
    return geoms, None, attributes


def _geojson_geometry(obj: Any, index: int) -> shapely.Geometry:
    if obj is None:
        raise EmptyGeometryError(f"geometry {index} is null")
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise GeometryInputError(f"geometry {index} is not a GeoJSON geometry: {obj!r:.80}")
    try:
        return shapely.geometry.shape(obj)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise GeometryInputError(
            f"geometry {index} is not a valid GeoJSON geometry ({exc!r}): {obj!r:.80}"
        ) from None
    except shapely.errors.GEOSException as exc:
        raise GeometryInputError(f"geometry {index} cannot be built: {exc}") from None


def _geojson_crs(obj: Mapping[str, Any]) -> pyproj.CRS | None:
    """CRS of the (pre-RFC 7946) ``crs`` member, if any."""
    crs = obj.get("crs")
    if not isinstance(crs, Mapping):
        return None
    name = (crs.get("properties") or {}).get("name")
    return parse_crs(name, "the GeoJSON 'crs' member", GeometryInputError) if name else None


def _from_geojson(obj: Mapping[str, Any]) -> _Result:
    kind = obj.get("type")
    crs = _geojson_crs(obj)
    if kind == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, Sequence) or len(features) == 0:
            raise EmptyGeometryError("the FeatureCollection has no features")
        geoms, _, attributes = _from_sequence(list(features))
        if attributes is None:
            attributes = _properties_table([{} for _ in geoms])
        return geoms, crs, attributes
    if kind == "Feature":
        geom = _geojson_geometry(obj.get("geometry"), 0)
        return [geom], crs, _properties_table([dict(obj.get("properties") or {})])
    if kind is None:
        raise UnsupportedGeometryInputError(
            f"a mapping without 'type' is not GeoJSON: {dict(obj)!r:.80}; "
            f"accepted: {ACCEPTED_FORMS}"
        )
    return [_geojson_geometry(obj, 0)], crs, None


def _no_columns(num_rows: int) -> pa.Table:
    """Return a table of ``num_rows`` rows and no columns."""
    return pa.Table.from_batches([pa.record_batch({"_": pa.nulls(num_rows)}).select([])])


def _properties_table(props: list[dict[str, Any]]) -> pa.Table:
    keys: dict[str, None] = {}
    for p in props:
        keys.update(dict.fromkeys(p))
    if not keys:
        return _no_columns(len(props))
    rows = [{k: p.get(k) for k in keys} for p in props]
    return pa.Table.from_pylist(rows)


# --------------------------------------------------------------------------- #
# Arrow
# --------------------------------------------------------------------------- #

_EXT_NAME = b"ARROW:extension:name"
_EXT_META = b"ARROW:extension:metadata"
_NATIVE = {
    "geoarrow.point": shapely.GeometryType.POINT,
    "geoarrow.linestring": shapely.GeometryType.LINESTRING,
    "geoarrow.polygon": shapely.GeometryType.POLYGON,
    "geoarrow.multipoint": shapely.GeometryType.MULTIPOINT,
    "geoarrow.multilinestring": shapely.GeometryType.MULTILINESTRING,
    "geoarrow.multipolygon": shapely.GeometryType.MULTIPOLYGON,
}
# Bare storage without an extension name: nesting depth -> the usual type.
_BY_DEPTH = {
    0: shapely.GeometryType.POINT,
    1: shapely.GeometryType.LINESTRING,
    2: shapely.GeometryType.POLYGON,
    3: shapely.GeometryType.MULTIPOLYGON,
}


def _to_arrow_table(obj: Any) -> pa.Table:
    """DuckDB relation (or any Arrow stream exporter) to a pyarrow Table."""
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        method = getattr(obj, name, None)
        if callable(method):
            result = method()
            if isinstance(result, pa.RecordBatchReader):
                result = result.read_all()
            if isinstance(result, (pa.Table, pa.RecordBatch)):
                return pa.table(result)
    if hasattr(obj, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(obj).read_all()
    raise UnsupportedGeometryInputError(
        f"cannot convert {type(obj).__name__} to Arrow; accepted: {ACCEPTED_FORMS}"
    )


def _ext_info(
    arr_type: pa.DataType, field_meta: Mapping[bytes, bytes] | None
) -> tuple[str | None, dict[str, Any]]:
    """GeoArrow extension name and metadata, from a registered type or field metadata."""
    name: str | None = None
    raw: bytes | None = None
    if isinstance(arr_type, pa.ExtensionType):
        name = arr_type.extension_name
        try:
            raw = arr_type.__arrow_ext_serialize__()
        except (AttributeError, NotImplementedError):
            raw = None
    elif field_meta:
        if _EXT_NAME in field_meta:
            name = field_meta[_EXT_NAME].decode()
            raw = field_meta.get(_EXT_META)
    meta: dict[str, Any] = {}
    if raw:
        try:
            meta = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise GeometryInputError(
                f"the {name} extension metadata is not JSON: {raw[:80]!r}"
            ) from None
    return name, meta


def _crs_from_geoarrow_meta(meta: Mapping[str, Any]) -> pyproj.CRS | None:
    crs = meta.get("crs")
    if crs is None or crs == "":
        return None
    if meta.get("crs_type") == "srid":
        crs = f"EPSG:{crs}" if str(crs).isdigit() else crs
    return parse_crs(crs, "the GeoArrow 'crs' metadata", GeometryInputError)


def _from_arrow_array(
    arr: pa.Array | pa.ChunkedArray, field_meta: Mapping[bytes, bytes] | None
) -> tuple[list[Any], pyproj.CRS | None]:
    name, meta = _ext_info(arr.type, field_meta)
    crs = _crs_from_geoarrow_meta(meta)
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage if isinstance(arr, pa.Array) else _chunked_storage(arr)
    if name is not None and not name.startswith("geoarrow."):
        raise UnsupportedGeometryInputError(
            f"Arrow extension type {name!r} is not a GeoArrow geometry type"
        )
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.null_count:
        first = int(np.flatnonzero(~np.asarray(arr.is_valid()))[0])
        raise EmptyGeometryError(f"geometry {first} is null")
    t = arr.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        values = arr.to_numpy(zero_copy_only=False)
        try:
            geoms = shapely.from_wkb(values)
        except shapely.errors.GEOSException as exc:
            raise GeometryInputError(
                f"the Arrow binary geometries are not WKB ({exc}); DuckDB GEOMETRY "
                "columns may need ST_AsWKB(geom)"
            ) from None
        return list(geoms), crs
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        try:
            geoms = shapely.from_wkt(arr.to_numpy(zero_copy_only=False))
        except shapely.errors.GEOSException as exc:
            raise GeometryInputError(f"the Arrow string geometries are not WKT ({exc})") from None
        return list(geoms), crs
    if name in (None, "geoarrow.wkb", "geoarrow.wkt") or name in _NATIVE:
        gtype = _NATIVE.get(name or "") or _BY_DEPTH.get(_depth(t))
        if gtype is not None:
            return _from_native(arr, gtype), crs
    raise UnsupportedGeometryInputError(
        f"cannot read geometries from an Arrow array of type {t}"
        + (f" (extension {name})" if name else "")
        + "; expected WKB (binary), WKT (string) or native GeoArrow"
    )


def _chunked_storage(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array(
        [c.storage for c in arr.chunks],
        type=arr.type.storage_type,
    )


def _depth(t: pa.DataType) -> int:
    depth = 0
    while pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
        depth += 1
    if pa.types.is_struct(t) or pa.types.is_fixed_size_list(t):
        return depth
    return -1


def _from_native(arr: pa.Array, gtype: shapely.GeometryType) -> list[Any]:
    """Decode native GeoArrow storage (list offsets over point coordinates)."""
    offsets: list[NDArray[np.int64]] = []
    level: pa.Array = arr
    while pa.types.is_list(level.type) or pa.types.is_large_list(level.type):
        off = np.asarray(level.offsets, dtype=np.int64)
        offsets.append(off - off[0])
        level = level.values.slice(int(off[0]), int(off[-1] - off[0]))
    coords = _coords(level)
    if gtype == shapely.GeometryType.POINT and offsets:
        raise UnsupportedGeometryInputError("geoarrow.point storage must not be a list")
    if len(offsets) != _expected_depth(gtype):
        raise UnsupportedGeometryInputError(
            f"Arrow storage of type {arr.type} does not match {gtype.name.lower()}"
        )
    # shapely wants the innermost offsets first.
    geoms = shapely.from_ragged_array(gtype, coords, tuple(offsets[::-1]) if offsets else None)
    return list(geoms)


def _expected_depth(gtype: shapely.GeometryType) -> int:
    return {
        shapely.GeometryType.POINT: 0,
        shapely.GeometryType.LINESTRING: 1,
        shapely.GeometryType.MULTIPOINT: 1,
        shapely.GeometryType.POLYGON: 2,
        shapely.GeometryType.MULTILINESTRING: 2,
        shapely.GeometryType.MULTIPOLYGON: 3,
    }[gtype]


def _coords(points: pa.Array) -> NDArray[np.float64]:
    """``(n, 2|3)`` coordinates of a GeoArrow point array (struct or interleaved)."""
    t = points.type
    if pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        keep = [n for n in ("x", "y", "z") if n in names] if "x" in names else names[:2]
        cols = [
            np.asarray(points.field(n).to_numpy(zero_copy_only=False), dtype=np.float64)
            for n in keep
        ]
        return np.column_stack(cols) if cols else np.empty((0, 2))
    if pa.types.is_fixed_size_list(t):
        size = t.list_size
        flat = np.asarray(points.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
        xy = flat.reshape(-1, size)
        return xy[:, : min(size, 3)] if size != 4 else xy[:, :3]
    raise UnsupportedGeometryInputError(f"GeoArrow coordinates of type {t} are not supported")


def _geo_metadata(schema: pa.Schema) -> dict[str, Any] | None:
    meta = schema.metadata or {}
    raw = meta.get(b"geo")
    if raw is None:
        return None
    try:
        geo = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise GeometryInputError("the table's GeoParquet 'geo' metadata is not JSON") from None
    return geo if isinstance(geo, dict) else None


def _pick_column(table: pa.Table, geometry_column: str | None, geo: dict[str, Any] | None) -> str:
    names = table.column_names
    if geometry_column is not None:
        if geometry_column not in names:
            raise GeometryInputError(
                f"geometry_column {geometry_column!r} is not a column of the table; "
                f"columns: {names}"
            )
        return geometry_column
    if geo and geo.get("primary_column") in names:
        return str(geo["primary_column"])
    for field in table.schema:
        name, _ = _ext_info(field.type, field.metadata)
        if name and name.startswith("geoarrow."):
            return field.name
    if "geometry" in names:
        return "geometry"
    raise GeometryInputError(
        "no geometry column found (no GeoParquet 'geo' metadata, no GeoArrow column, "
        f"no column named 'geometry'); pass geometry_column=. Columns: {names}"
    )


def _from_table(table: pa.Table, geometry_column: str | None) -> _Result:
    geo = _geo_metadata(table.schema)
    column = _pick_column(table, geometry_column, geo)
    field = table.schema.field(column)
    geoms, crs = _from_arrow_array(table.column(column), field.metadata)
    if crs is None and geo is not None:
        col_meta = (geo.get("columns") or {}).get(column)
        if isinstance(col_meta, dict):
            if "crs" not in col_meta:
                # GeoParquet: an absent crs means OGC:CRS84 (longitude, latitude).
                crs = as_crs("OGC:CRS84")
            elif col_meta["crs"] is not None:
                crs = parse_crs(
                    col_meta["crs"], "the GeoParquet 'crs' metadata", GeometryInputError
                )
    attributes = table.drop_columns([column]).replace_schema_metadata(None)
    if attributes.num_columns == 0:
        attributes = _no_columns(table.num_rows)
    return geoms, crs, attributes


def _from_geopandas(obj: Any, geometry_column: str | None) -> _Result:
    if hasattr(obj, "geometry") and hasattr(obj, "columns"):  # GeoDataFrame
        if geometry_column is not None:
            if geometry_column not in obj.columns:
                raise GeometryInputError(
                    f"geometry_column {geometry_column!r} is not a column of the "
                    f"GeoDataFrame; columns: {list(obj.columns)}"
                )
            series = obj[geometry_column]
        else:
            series = obj.geometry
        crs = getattr(series, "crs", None) or obj.crs
        others = obj.drop(columns=[series.name])
        geom_cols = [c for c in others.columns if str(others[c].dtype) == "geometry"]
        others = others.drop(columns=geom_cols)
        import pandas as pd

        attributes = pa.Table.from_pandas(
            pd.DataFrame(others), preserve_index=False
        ).replace_schema_metadata(None)
        if attributes.num_columns == 0:
            attributes = _no_columns(len(others))
        geoms = list(np.asarray(series.values, dtype=object))
        return _nonnull(geoms), _crs_or_none(crs), attributes
    geoms = list(np.asarray(obj.values, dtype=object))  # GeoSeries
    return _nonnull(geoms), _crs_or_none(getattr(obj, "crs", None)), None


def _nonnull(geoms: list[Any]) -> list[Any]:
    for i, g in enumerate(geoms):
        if g is None:
            raise EmptyGeometryError(f"geometry {i} is null (None)")
    return geoms


def _crs_or_none(crs: Any) -> pyproj.CRS | None:
    return None if crs is None else as_crs(crs)
