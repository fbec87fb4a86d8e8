"""Areas of interest: every geometry input form, normalized to shapely + a CRS.

:func:`normalize_geometries` is the one entry point the read helpers use for
their ``geometries=`` argument. It accepts

* a bbox ``(xmin, ymin, xmax, ymax)`` (tuple, list or 1-D numeric array of 4);
* a shapely geometry, or a list / tuple / object array of them;
* WKB ``bytes`` (or ``bytearray`` / ``memoryview``), or a list of them;
* a GeoJSON geometry, ``Feature`` or ``FeatureCollection`` mapping (feature
  properties become :attr:`AOIs.attributes`), or a list of geometry / Feature
  mappings;
* a ``pyarrow.Array`` / ``ChunkedArray`` of WKB (``binary`` / ``large_binary``),
  WKT (``string``), or native GeoArrow (``geoarrow.point`` / ``linestring`` /
  ``polygon`` / ``multipoint`` / ``multilinestring`` / ``multipolygon``,
  separated or interleaved coordinates), as a registered extension type or as
  bare storage;
* a ``pyarrow.Table`` / ``RecordBatch`` / ``RecordBatchReader`` (the geometry
  column is ``geometry_column``, else the GeoParquet ``geo`` metadata's primary
  column, else a GeoArrow-typed column, else ``geometry``);
* a ``geopandas.GeoDataFrame`` or ``GeoSeries``;
* a DuckDB relation, or anything exporting an Arrow stream
  (``__arrow_c_stream__``).

The CRS of the geometries is ``geometry_crs`` when given. With the default
:data:`AUTO`, it is read from the input's metadata -- GeoArrow extension
metadata (``crs`` key), GeoParquet ``geo`` metadata, a GeoDataFrame's ``.crs``,
an old-style GeoJSON ``crs`` member -- and is EPSG:4326 when the input carries
none. An explicit ``geometry_crs`` always wins over metadata (no warning): it
is how a user fixes wrong metadata.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyproj
import shapely
from numpy.typing import NDArray

from xarray_rasteret.errors import RasteretError

__all__ = [
    "AOIs",
    "AUTO",
    "EmptyGeometryError",
    "GeometryInputError",
    "InvalidGeometryError",
    "UnsupportedGeometryInputError",
    "bounds_in_crs",
    "normalize_geometries",
    "to_crs",
]


class _Auto:
    """Type of :data:`AUTO`: take the CRS from the input's metadata, else EPSG:4326."""

    _instance: _Auto | None = None

    def __new__(cls) -> _Auto:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AUTO"

    def __reduce__(self) -> str:
        return "AUTO"


AUTO: Final = _Auto()
"""Default of ``geometry_crs``: the CRS in the input's metadata, else EPSG:4326."""

_DEFAULT_CRS: Final = pyproj.CRS.from_epsg(4326)

ACCEPTED_FORMS: Final = (
    "a bbox (xmin, ymin, xmax, ymax); a shapely geometry or a list of them; WKB bytes or "
    "a list of them; a GeoJSON geometry, Feature or FeatureCollection dict; a pyarrow "
    "Array/ChunkedArray of WKB, WKT or GeoArrow; a pyarrow Table/RecordBatch; a "
    "GeoDataFrame/GeoSeries; a DuckDB relation (or any Arrow stream)"
)


class GeometryInputError(RasteretError, ValueError):
    """The ``geometries`` argument cannot be used (base of the specific errors)."""


class InvalidGeometryError(GeometryInputError):
    """A geometry is invalid (the message names its index and GEOS's reason)."""


class EmptyGeometryError(GeometryInputError):
    """A geometry is empty or null (the message names its index)."""


class UnsupportedGeometryInputError(RasteretError, TypeError):
    """The ``geometries`` argument is of a type that is not accepted."""


@dataclass(frozen=True)
class AOIs:
    """Normalized areas of interest.

    Attributes
    ----------
    geometries : list of shapely.Geometry
        One geometry per input geometry, in input order; valid and non-empty.
    crs : pyproj.CRS
        CRS of the coordinates of ``geometries``.
    attributes : pyarrow.Table or None
        The input's non-geometry columns, one row per geometry, when the input
        was a table, GeoDataFrame, relation or GeoJSON features; else None.
    """

    geometries: list[shapely.Geometry]
    crs: pyproj.CRS
    attributes: pa.Table | None = None

    def __len__(self) -> int:
        return len(self.geometries)

    def to_crs(self, crs: Any) -> AOIs:
        """Return these AOIs in another CRS (edges densified before transforming).

        Parameters
        ----------
        crs : Any
            Target CRS, anything :meth:`pyproj.CRS.from_user_input` accepts.

        Returns
        -------
        AOIs
            Same attributes, geometries reprojected.

        Examples
        --------
        >>> aois = normalize_geometries((12.0, 52.0, 12.1, 52.1))
        >>> aois.to_crs(32633).crs.to_epsg()
        32633
        """
        dst = pyproj.CRS.from_user_input(crs)
        return AOIs(to_crs(self.geometries, self.crs, dst), dst, self.attributes)


# --------------------------------------------------------------------------- #
# public functions
# --------------------------------------------------------------------------- #


def normalize_geometries(
    geometries: Any,
    *,
    geometry_crs: Any = AUTO,
    geometry_column: str | None = None,
) -> AOIs:
    """Normalize any accepted geometry input to shapely geometries and a CRS.

    Parameters
    ----------
    geometries : Any
        One of the forms listed in the module documentation: bbox tuple,
        shapely geometry (or a list), WKB bytes (or a list), GeoJSON mapping,
        pyarrow array / table, GeoDataFrame, DuckDB relation.
    geometry_crs : Any, default AUTO
        CRS of the geometries: :data:`AUTO` (from the input's metadata, else
        EPSG:4326) or anything :meth:`pyproj.CRS.from_user_input` accepts
        (EPSG int, ``"EPSG:32633"``, WKT, PROJJSON dict, ``pyproj.CRS``). An
        explicit CRS overrides the metadata.
    geometry_column : str, optional
        For tabular inputs: the geometry column. Default: the GeoParquet
        primary column, else the GeoArrow-typed column, else ``"geometry"``.

    Returns
    -------
    AOIs
        Geometries in input order, their CRS and the non-geometry attributes.

    Raises
    ------
    UnsupportedGeometryInputError
        The input type is not one of the accepted forms (a ``TypeError``).
    EmptyGeometryError
        A geometry is empty or null (a ``ValueError``).
    InvalidGeometryError
        A geometry is invalid, e.g. a self-intersecting polygon (a ``ValueError``).
    GeometryInputError
        Other unusable input: a bbox with ``xmin > xmax``, a missing
        ``geometry_column``, undecodable WKB, an unknown CRS (``ValueError``).

    Examples
    --------
    >>> aois = normalize_geometries((12.0, 52.0, 12.1, 52.1))
    >>> aois.geometries[0].bounds, aois.crs.to_epsg()
    ((12.0, 52.0, 12.1, 52.1), 4326)

    >>> import shapely
    >>> aois = normalize_geometries([shapely.Point(500000, 5800000).buffer(100)],
    ...                             geometry_crs="EPSG:32633")
    >>> len(aois), aois.crs.to_epsg()
    (1, 32633)

    >>> fc = {"type": "FeatureCollection", "features": [
    ...     {"type": "Feature", "properties": {"name": "a"},
    ...      "geometry": {"type": "Point", "coordinates": [12.0, 52.0]}}]}
    >>> normalize_geometries(fc).attributes.to_pylist()
    [{'name': 'a'}]
    """
    geoms, meta_crs, attributes = _dispatch(geometries, geometry_column)
    arr = np.asarray(geoms, dtype=object) if geoms else np.empty(0, dtype=object)
    _validate(arr)
    if isinstance(geometry_crs, _Auto):
        crs = meta_crs if meta_crs is not None else _DEFAULT_CRS
    else:
        crs = _parse_crs(geometry_crs, "geometry_crs")
    if attributes is not None and attributes.num_rows != len(geoms):
        raise GeometryInputError(
            f"{attributes.num_rows} attribute rows for {len(geoms)} geometries"
        )
    return AOIs(list(geoms), crs, attributes)


def to_crs(geoms: Sequence[shapely.Geometry], src: Any, dst: Any) -> list[shapely.Geometry]:
    """Reproject geometries, densifying their edges first.

    Every edge is split into pieces no longer than 1/64 of the geometry's
    extent before the vertices are transformed, so a straight edge that
    becomes a curve in ``dst`` is followed closely and bounds stay right.

    Parameters
    ----------
    geoms : sequence of shapely.Geometry
        Geometries in ``src``.
    src, dst : Any
        Source and target CRS (anything :meth:`pyproj.CRS.from_user_input`
        accepts).

    Returns
    -------
    list of shapely.Geometry
        The geometries in ``dst`` (the same objects when the CRSs are equal).
        A polygon made invalid by the projection is repaired with
        :func:`shapely.make_valid`.

    Raises
    ------
    GeometryInputError
        A vertex cannot be transformed (outside the projection's domain).

    Examples
    --------
    >>> import shapely
    >>> [g] = to_crs([shapely.box(12.0, 52.0, 12.1, 52.1)], 4326, 32633)
    >>> [round(v) for v in g.bounds]
    [294071, 5765010, 301378, 5776407]
    """
    src_crs = pyproj.CRS.from_user_input(src)
    dst_crs = pyproj.CRS.from_user_input(dst)
    geoms = list(geoms)
    if not geoms or src_crs == dst_crs:
        return geoms
    arr = _densify(np.asarray(geoms, dtype=object))
    transformer = pyproj.Transformer.from_crs(src_crs, dst_crs, always_xy=True)

    def project(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = transformer.transform(coords[:, 0], coords[:, 1], errcheck=False)
        return np.column_stack([x, y])

    out = shapely.transform(arr, project)
    coords = shapely.get_coordinates(out)
    if not np.isfinite(coords).all():
        raise GeometryInputError(
            f"some vertices cannot be transformed from {src_crs.to_string()} to "
            f"{dst_crs.to_string()} (outside the projection's area of use?)"
        )
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.make_valid(out[bad])
    return list(out)


def bounds_in_crs(geom: shapely.Geometry, src: Any, dst: Any) -> tuple[float, float, float, float]:
    """Bounds of a geometry in another CRS, computed on its densified outline.

    Edges are sampled every 1/1024 of the geometry's extent before
    transforming, so edges that curve in ``dst`` are accounted for.

    Parameters
    ----------
    geom : shapely.Geometry
        A geometry in ``src``.
    src, dst : Any
        Source and target CRS.

    Returns
    -------
    tuple of float
        ``(xmin, ymin, xmax, ymax)`` in ``dst``.

    Examples
    --------
    >>> import shapely
    >>> b = bounds_in_crs(shapely.box(12.0, 52.0, 12.1, 52.1), "EPSG:4326", 32633)
    >>> [round(v) for v in b]
    [294071, 5765010, 301378, 5776407]
    """
    src_crs = pyproj.CRS.from_user_input(src)
    dst_crs = pyproj.CRS.from_user_input(dst)
    if src_crs == dst_crs:
        xmin, ymin, xmax, ymax = shapely.bounds(geom).tolist()
        return (xmin, ymin, xmax, ymax)
    # Only the outline matters; sample it finely (1/1024 of the extent), so the
    # curvature between samples is negligible.
    outline = shapely.boundary(geom) if shapely.get_dimensions(geom) == 2 else geom
    dense = _densify(np.asarray([outline], dtype=object), parts=1024.0)
    [g] = to_crs(list(dense), src_crs, dst_crs)
    xmin, ymin, xmax, ymax = shapely.bounds(g).tolist()
    return (xmin, ymin, xmax, ymax)


# --------------------------------------------------------------------------- #
# dispatch on the input form
# --------------------------------------------------------------------------- #

_Result = tuple[list[Any], "pyproj.CRS | None", "pa.Table | None"]


def _dispatch(obj: Any, geometry_column: str | None) -> _Result:
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
    return _parse_crs(name, "the GeoJSON 'crs' member") if name else None


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
    return _parse_crs(crs, "the GeoArrow 'crs' metadata")


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
                crs = pyproj.CRS.from_user_input("OGC:CRS84")
            elif col_meta["crs"] is not None:
                crs = _parse_crs(col_meta["crs"], "the GeoParquet 'crs' metadata")
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
        return _nonnull(geoms), _as_crs(crs), attributes
    geoms = list(np.asarray(obj.values, dtype=object))  # GeoSeries
    return _nonnull(geoms), _as_crs(getattr(obj, "crs", None)), None


def _nonnull(geoms: list[Any]) -> list[Any]:
    for i, g in enumerate(geoms):
        if g is None:
            raise EmptyGeometryError(f"geometry {i} is null (None)")
    return geoms


def _as_crs(crs: Any) -> pyproj.CRS | None:
    return None if crs is None else pyproj.CRS.from_user_input(crs)


def _parse_crs(value: Any, what: str) -> pyproj.CRS:
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    try:
        return pyproj.CRS.from_user_input(value)
    except (pyproj.exceptions.CRSError, TypeError, ValueError) as exc:
        raise GeometryInputError(
            f"{what} {value!r:.100} is not a CRS pyproj understands: {exc}"
        ) from None


# --------------------------------------------------------------------------- #
# validation and densification
# --------------------------------------------------------------------------- #


def _validate(arr: NDArray[np.object_]) -> None:
    if arr.size == 0:
        raise EmptyGeometryError("no geometries given")
    for i, g in enumerate(arr):
        if g is None:
            raise EmptyGeometryError(f"geometry {i} is null")
        if not isinstance(g, shapely.Geometry):
            raise UnsupportedGeometryInputError(
                f"geometry {i} is a {type(g).__name__}, not a geometry"
            )
    empty = shapely.is_empty(arr)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise EmptyGeometryError(f"geometry {i} is empty ({arr[i].geom_type} EMPTY)")
    valid = shapely.is_valid(arr)
    if not valid.all():
        i = int(np.flatnonzero(~valid)[0])
        reason = shapely.is_valid_reason(arr[i])
        raise InvalidGeometryError(
            f"geometry {i} ({arr[i].geom_type}) is invalid: {reason}. "
            "shapely.make_valid() can repair it."
        )


def _densify(arr: NDArray[np.object_], parts: float = 64.0) -> NDArray[np.object_]:
    """Split edges longer than 1/``parts`` of each geometry's extent."""
    bounds = shapely.bounds(arr)
    extent = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    out = arr.copy()
    ok = extent > 0
    if ok.any():
        out[ok] = shapely.segmentize(arr[ok], extent[ok] / parts)
    return out
