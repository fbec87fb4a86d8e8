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

Each input form is parsed in :mod:`xarray_rasteret.geo._inputs`; this module
validates the result, resolves the CRS and reprojects.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyproj
import shapely
from numpy.typing import NDArray

from ._geometry_errors import (
    EmptyGeometryError,
    GeometryInputError,
    InvalidGeometryError,
    InvalidGeometryWarning,
    UnsupportedGeometryInputError,
)
from ._inputs import dispatch
from .crs import as_crs, crs_label, parse_crs, transformer

__all__ = [
    "AOIs",
    "AUTO",
    "EmptyGeometryError",
    "GeometryInputError",
    "InvalidGeometryError",
    "InvalidGeometryWarning",
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

_DEFAULT_CRS: Final = as_crs(4326)


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

    def densified(self) -> AOIs:
        """These AOIs with every edge split into pieces of at most 1/64 of its geometry's extent.

        Projected afterwards, a long straight edge (a lon/lat box's) is followed
        as the curve it becomes, instead of as the chord between its vertices.
        """
        dense = _densify(np.asarray(self.geometries, dtype=object))
        return AOIs(list(dense), self.crs, self.attributes)

    def to_crs(self, crs: Any, *, densify: bool = False) -> AOIs:
        """Return these AOIs in another CRS.

        Parameters
        ----------
        crs : Any
            Target CRS, anything :meth:`pyproj.CRS.from_user_input` accepts.
        densify : bool
            Split long edges before transforming (see :func:`to_crs`).

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
        dst = as_crs(crs)
        return AOIs(to_crs(self.geometries, self.crs, dst, densify=densify), dst, self.attributes)


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
    GeometryInputError
        Other unusable input: a bbox with ``xmin > xmax``, a missing
        ``geometry_column``, undecodable WKB, an unknown CRS (``ValueError``).

    Warns
    -----
    InvalidGeometryWarning
        A geometry is invalid, e.g. a self-intersecting polygon: it is used as
        given (GDAL's and rasteret's rule), the warning naming it.

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
    geoms, meta_crs, attributes = dispatch(geometries, geometry_column)
    arr = np.asarray(geoms, dtype=object) if geoms else np.empty(0, dtype=object)
    _validate(arr)
    if isinstance(geometry_crs, _Auto):
        crs = meta_crs if meta_crs is not None else _DEFAULT_CRS
    else:
        crs = parse_crs(geometry_crs, "geometry_crs", GeometryInputError)
    if attributes is not None and attributes.num_rows != len(geoms):
        raise GeometryInputError(
            f"{attributes.num_rows} attribute rows for {len(geoms)} geometries"
        )
    return AOIs(list(geoms), crs, attributes)


def to_crs(
    geoms: Sequence[shapely.Geometry], src: Any, dst: Any, *, densify: bool = False
) -> list[shapely.Geometry]:
    """Reproject geometries: their vertices, as GDAL's ``transform_geom`` and rasteret.

    Masks made from them then equal ``rasterio.mask.mask`` of the same geometry
    (boundary pixels included). With ``densify``, every edge is first split into
    pieces no longer than 1/64 of the geometry's extent, so a straight edge that
    becomes a curve in ``dst`` is followed closely (long lon/lat edges).

    Parameters
    ----------
    geoms : sequence of shapely.Geometry
        Geometries in ``src``.
    src, dst : Any
        Source and target CRS (anything :meth:`pyproj.CRS.from_user_input`
        accepts).
    densify : bool
        Split long edges before transforming (default False).

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
    src_crs = as_crs(src)
    dst_crs = as_crs(dst)
    geoms = list(geoms)
    if not geoms or src_crs == dst_crs:
        return geoms
    arr = np.asarray(geoms, dtype=object)
    if densify:
        arr = _densify(arr)
    proj = transformer(src_crs, dst_crs)

    def project(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = proj.transform(coords[:, 0], coords[:, 1], errcheck=False)
        return np.column_stack([x, y])

    out = shapely.transform(arr, project)
    coords = shapely.get_coordinates(out)
    if not np.isfinite(coords).all():
        raise GeometryInputError(
            f"some vertices cannot be transformed from {crs_label(src_crs)} to "
            f"{crs_label(dst_crs)} (outside the projection's area of use?)"
        )
    # Repair only what the projection broke: a ring invalid as given stays as given.
    bad = ~shapely.is_valid(out) & shapely.is_valid(arr)
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
    src_crs = as_crs(src)
    dst_crs = as_crs(dst)
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
        # GDAL and rasteret rasterize the rings as given, and self-intersecting field
        # boundaries are common: one such geometry must not fail a call over thousands.
        bad = np.flatnonzero(~valid)
        i = int(bad[0])
        reason = shapely.is_valid_reason(arr[i])
        more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
        warnings.warn(
            f"geometry {i} ({arr[i].geom_type}) is invalid: {reason}{more}; it is "
            "rasterized as given, as GDAL does (shapely.make_valid() would repair it)",
            InvalidGeometryWarning,
            stacklevel=4,
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
