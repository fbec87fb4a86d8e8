"""Pixels for the user's own geometries: get_xarray, get_gdf, get_numpy, sample_points.

Thin layers over the engine's read path (:mod:`._aoi_read` -> :mod:`._fetch`):
every band and record of one call is fetched together, and a tile shared by
several geometries is read once. Names and defaults follow rasteret.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import xarray as xr

from .._lazy.bands import signed_options
from .._lazy.dataset import spatial_ref_attrs, variable_attrs
from ..collection import Collection
from ..data_sources import DataSource
from ..errors import ReprojectionRequiredError
from ..geo.aoi import AUTO, AOIs, normalize_geometries, to_crs
from ..geo.grid import RasterGrid
from ..ingest import as_collection
from ._nearest import NearestSearch
from ._pairs import _CRS84, band_sources, read_aois, read_options, resolve_bands, run_reads
from ._points import plan_point_reads, points_table, record_column, xy_points
from ._reads import PairRead

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["get_gdf", "get_numpy", "get_xarray", "sample_points"]

_COMBINE = ("combine_first", "merge", "merge_override")


def _prepare(
    collection: Any, geometries: Any, geometry_crs: Any, geometry_column: str | None,
    filters: dict[str, Any], storage_options: dict[str, Any] | None = None, backend: Any = None,
) -> tuple[Collection, AOIs]:
    col = as_collection(collection, storage_options=storage_options, backend=backend)
    if filters:
        col = col.filter(**filters)
    aois = normalize_geometries(
        geometries, geometry_crs=geometry_crs, geometry_column=geometry_column
    )
    return col, aois


def _read(
    collection: Any, geometries: Any, bands: Sequence[str], *, data_source: Any,
    sign: Callable[[str], str] | None,
    max_concurrent: int, backend: Any, target_crs: Any, geometry_crs: Any,
    geometry_column: str | None, all_touched: bool, progress: bool, filters: dict[str, Any],
    storage_options: dict[str, Any] | None = None, stack: bool = False, densify: bool = False,
    on_error: str = "raise",
) -> tuple[Collection, AOIs, list[PairRead], np.ndarray | None]:
    col, aois = _prepare(
        collection, geometries, geometry_crs, geometry_column, filters, storage_options, backend
    )
    pairs, stacked = read_aois(
        col, aois.densified() if densify else aois, bands, data_source=data_source, sign=sign,
        all_touched=all_touched, options=read_options(
            max_concurrent, backend, storage_options, on_error
        ),
        progress=progress, target_crs=target_crs, stack=stack,
    )
    return col, aois, pairs, stacked


def get_numpy(
    collection: Any, *, geometries: Any, bands: Sequence[str],
    data_source: str | DataSource | None = None, sign: Callable[[str], str] | None = None,
    max_concurrent: int = 64, backend: object | None = None, target_crs: Any = None,
    geometry_crs: Any = AUTO, geometry_column: str | None = None, all_touched: bool = False,
    progress: bool = False, storage_options: dict[str, Any] | None = None,
    densify: bool = False, on_error: str = "raise", **filters: Any,
) -> np.ndarray:
    """Pixels of ``bands`` inside each geometry, for each record it intersects, as one array.

    Parameters
    ----------
    collection
        A Collection, the path/URL of one, or a Dataset opened with the engine.
    geometries
        bbox tuple, shapely geometry (or list), WKB, GeoJSON, Arrow array/table,
        GeoDataFrame or DuckDB relation.
    bands
        Band codes or asset keys.
    data_source
        A registered data source's name (``xarray_rasteret.data_sources.registered()``)
        or a :class:`~xarray_rasteret.data_sources.DataSource`: band codes, URL
        rewriting and signing (inferred from the collection if None).
    sign
        ``sign(href) -> signed href``, called on every request at read time
        (``planetary_computer.sign_url``, or
        :class:`~xarray_rasteret.data_sources.PlanetaryComputerSigner`); never
        applied to the collection. Default: the data source's signer, if any. A
        refused (401/403) signed URL is signed again and retried once. Must
        pickle to be used under dask.
    max_concurrent
        Most requests in flight.
    backend
        A user store (obspec-shaped) for every read.
    target_crs
        Resample every record (nearest) onto a grid of this CRS around each
        geometry, at the finest resolution its records have there; the same
        reprojection code as ``open_dataset(crs=...)``.
    geometry_crs
        CRS of the geometries; AUTO takes it from metadata, else EPSG:4326.
    geometry_column
        Geometry column of a table input.
    all_touched
        Keep every pixel the geometry touches (rasterio semantics), not only centres inside.
    progress
        Show a progress bar over tiles.
    storage_options
        Options for remote stores (credentials, ``endpoint_url``, ...).
    densify
        Split long edges before projecting the geometries to the records' CRS
        (lon/lat boxes over large areas). Default False: the vertices are
        projected, as GDAL's ``transform_geom`` and rasteret do, so masks equal
        ``rasterio.mask.mask``'s.
    on_error
        ``"raise"`` (default): a tile that cannot be read fails the call, naming
        the object. ``"nodata"``: tiles that still fail after the retries read as
        the band's nodata (NaN for floats without one, 0 for integers without
        one); a ``ReadFailureWarning`` names the objects and
        ``xarray_rasteret.read_stats().failures`` lists every failed range.
    **filters
        Record selection, e.g. ``datetime=("2024-01-01", "2024-02-01")``, ``cloud_cover_lt=20``.

    Returns
    -------
    numpy.ndarray
        ``[N, H, W]`` for one band, ``[N, C, H, W]`` for several; N runs over
        (record, geometry) pairs, record-major (as rasteret). Outside the geometry: nodata, else 0.

    Raises
    ------
    ValueError
        If windows differ in shape (use get_xarray or get_gdf, or equal-size AOIs).

    Examples
    --------
    >>> arr = get_numpy(col, geometries=(16.0, 45.0, 16.01, 45.01), bands=["B04"])  # doctest: +SKIP
    >>> arr.shape  # doctest: +SKIP
    (4, 112, 79)
    """
    *_, stacked = _read(
        collection, geometries, bands, data_source=data_source, sign=sign,
        max_concurrent=max_concurrent,
        backend=backend, target_crs=target_crs, geometry_crs=geometry_crs,
        geometry_column=geometry_column, all_touched=all_touched, progress=progress,
        filters=filters, storage_options=storage_options, stack=True, densify=densify,
        on_error=on_error,
    )
    assert stacked is not None
    return stacked[:, 0] if len(stacked) and stacked.shape[1] == 1 else stacked


def get_gdf(
    collection: Any, *, geometries: Any, bands: Sequence[str],
    data_source: str | DataSource | None = None, sign: Callable[[str], str] | None = None,
    max_concurrent: int = 64, backend: object | None = None, target_crs: Any = None,
    geometry_crs: Any = AUTO, geometry_column: str | None = None, all_touched: bool = False,
    progress: bool = False, storage_options: dict[str, Any] | None = None,
    densify: bool = False, on_error: str = "raise", **filters: Any,
) -> gpd.GeoDataFrame:
    """One row per (record, geometry, band): the band's pixels in the geometry's window.

    Parameters are those of :func:`get_numpy`.

    Returns
    -------
    geopandas.GeoDataFrame
        rasteret 0.4's rows and columns: by record, then geometry, then band;
        ``record_id``, ``datetime``, ``cloud_cover`` (the record's
        ``eo:cloud_cover``), ``collection`` (its STAC collection, else empty),
        ``geometry_id`` (1-based, the geometry's position in the input),
        ``geometry`` (the input geometry, in ``target_crs`` if given, else in the
        geometries' CRS), ``band``, ``data`` (2-D array, native dtype),
        ``transform`` (the window's ``Affine``); then ours: ``crs`` (the
        window's CRS), then the user's columns of a table input (suffix ``_user``
        on a clash).

    Examples
    --------
    >>> gdf = get_gdf(col, geometries=polygons, bands=["B04", "B08"])  # doctest: +SKIP
    """
    import geopandas as gpd
    import pandas as pd

    col, aois, pairs, _ = _read(
        collection, geometries, bands, data_source=data_source, sign=sign,
        max_concurrent=max_concurrent,
        backend=backend, target_crs=target_crs, geometry_crs=geometry_crs,
        geometry_column=geometry_column, all_touched=all_touched, progress=progress,
        filters=filters, storage_options=storage_options, densify=densify,
        on_error=on_error,
    )
    band_list = [bands] if isinstance(bands, str) else list(bands)
    pairs = sorted(pairs, key=lambda p: (p.record_index, p.geometry_index))
    rows = [(p, b) for p in pairs for b in band_list]
    record = [p.record_index for p, _ in rows]
    geometry = [p.geometry_index for p, _ in rows]
    ids = col.ids
    times = pd.DatetimeIndex(np.asarray(col.datetimes, "datetime64[us]"))
    cloud = record_column(col, "eo:cloud_cover", np.nan)
    collections = record_column(col, "collection", "")
    columns: dict[str, Any] = {
        "record_id": [ids[r] for r in record],
        "datetime": times[record],
        "cloud_cover": np.asarray([cloud[r] for r in record], np.float64),
        "collection": [collections[r] for r in record],
        "geometry_id": np.asarray(geometry, np.int64) + 1,
        "band": [b for _, b in rows],
        "data": [p.bands[b].data for p, b in rows],
        "transform": [p.bands[b].transform for p, b in rows],
        "crs": [p.crs for p, _ in rows],
    }
    _add_user_columns(columns, aois, geometry, as_pandas=True)
    out_aois = aois.to_crs(target_crs) if target_crs is not None else aois
    geoms = [out_aois.geometries[g] for g in geometry]
    gdf = gpd.GeoDataFrame(columns, geometry=geoms, crs=out_aois.crs)
    order = ["record_id", "datetime", "cloud_cover", "collection", "geometry_id", "geometry"]
    return gdf[order + [c for c in gdf.columns if c not in order]]


def _add_user_columns(
    columns: dict[str, Any], aois: AOIs, index: Sequence[int] | pa.ChunkedArray,
    *, as_pandas: bool = False,
) -> None:
    """Add the user's attribute columns of the geometries at ``index`` (one row each).

    They keep their Arrow types (an int32 column stays int32), as pandas Series
    when ``as_pandas``.
    """
    if aois.attributes is None:
        return
    if not isinstance(index, pa.ChunkedArray):
        index = pa.array(index, pa.int64())
    taken = aois.attributes.take(index)
    for name in taken.column_names:
        key = name if name not in columns and name != "geometry" else f"{name}_user"
        values = taken.column(name)
        columns[key] = values.to_pandas() if as_pandas else values


def get_xarray(
    collection: Any, *, geometries: Any, bands: Sequence[str],
    data_source: str | DataSource | None = None, sign: Callable[[str], str] | None = None,
    max_concurrent: int = 64, backend: object | None = None, target_crs: Any = None,
    geometry_crs: Any = AUTO, geometry_column: str | None = None, all_touched: bool = False,
    progress: bool = False, xr_combine: str = "combine_first",
    storage_options: dict[str, Any] | None = None, densify: bool = False,
    on_error: str = "raise", **filters: Any,
) -> xr.Dataset:
    """Pixels inside the geometries as one Dataset: a variable per band, as rasteret 0.4.

    Parameters are those of :func:`get_numpy`, plus:

    xr_combine
        How per-(geometry, record) Datasets merge, in (record, geometry) order:
        ``"combine_first"`` (the first pixel that is not nodata wins, the
        default), ``"merge"`` (``xarray.merge``: overlapping pixels must agree,
        nodata padding included) or ``"merge_override"`` (``xarray.merge`` with
        ``compat="override"``). Areas no part covers are nodata (else 0), so
        the dtype stays native.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, geometry, y, x)`` (``geometry``: the 1-based position of
        the geometry in the input, rasteret's ``geometry_id``), native dtypes
        (rasteret gives float32 where geometries' windows differ), a CF
        ``spatial_ref`` coordinate.

    Raises
    ------
    ValueError
        For an unknown ``xr_combine``.
    ReprojectionRequiredError
        If the records intersected are in different CRSs.

    Examples
    --------
    >>> ds = get_xarray(col, geometries=(16.0, 45.0, 16.01, 45.01), bands=["B04"])  # doctest: +SKIP
    """
    if xr_combine not in _COMBINE:
        raise ValueError(f"xr_combine must be one of {_COMBINE}, got {xr_combine!r}")
    col, _, pairs, _ = _read(
        collection, geometries, bands, data_source=data_source, sign=sign,
        max_concurrent=max_concurrent,
        backend=backend, target_crs=target_crs, geometry_crs=geometry_crs,
        geometry_column=geometry_column, all_touched=all_touched, progress=progress,
        filters=filters, storage_options=storage_options, densify=densify,
        on_error=on_error,
    )
    crss = {p.crs for p in pairs}
    if len(crss) > 1:
        raise ReprojectionRequiredError(
            f"the geometries intersect records in {len(crss)} CRSs; pass target_crs=... or "
            "select records of one CRS with filters"
        )
    band_list = [bands] if isinstance(bands, str) else list(bands)
    parts = [_pair_dataset(col, p, band_list) for p in pairs]
    # Fill values typed like the data: xarray would upcast to float for 0.0 on uint16.
    fills = {b: pairs[0].bands[b].data.dtype.type(pairs[0].bands[b].fill) for b in band_list}
    return _combine(parts, fills, xr_combine)


def _combine(parts: list[xr.Dataset], fills: dict[str, Any], how: str) -> xr.Dataset:
    """Merge per-(geometry, record) Datasets, padding with nodata so dtypes stay native."""
    if len(parts) == 1:
        return parts[0]
    north_up = bool(parts[0].y.size < 2 or parts[0].y.values[0] > parts[0].y.values[-1])
    if how == "combine_first":
        aligned = xr.align(*parts, join="outer", fill_value=fills)
        out = aligned[0]
        for nxt in aligned[1:]:
            for name, fill in fills.items():
                have = out[name]
                missing = have.isnull() if _is_nan(fill) else have == fill
                out[name] = have.where(~missing, nxt[name])
    else:
        if how == "merge_override":
            out = xr.merge(
                parts, compat="override", join="outer", fill_value=fills, combine_attrs="override"
            )
        else:
            out = xr.merge(
                parts, compat="no_conflicts", join="outer", fill_value=fills,
                combine_attrs="override",
            )
    return out.sortby("y", ascending=not north_up).sortby("x").sortby("time").sortby("geometry")


def _is_nan(value: Any) -> bool:
    return bool(np.issubdtype(type(value), np.floating) and np.isnan(value))


def _pair_dataset(col: Collection, pair: PairRead, bands: list[str]) -> xr.Dataset:
    first = pair.bands[bands[0]]
    # Coordinates from lattice indices, so windows of one grid share exact values.
    x, y = first.xy_coords()
    h, w = first.data.shape
    grid = RasterGrid(pair.crs, first.transform, w, h)
    time = np.asarray(col.datetimes, dtype="datetime64[ns]")[[pair.record_index]]
    data_vars = {}
    for b in bands:
        r = pair.bands[b]
        attrs, encoding = variable_attrs(r.source, r.data.dtype, mask_and_scale=False)
        var = xr.Variable(("time", "geometry", "y", "x"), r.data[None, None], attrs)
        var.encoding = encoding
        data_vars[b] = var
    coords = {
        "time": time,
        "geometry": np.array([pair.geometry_index + 1], np.int64),
        "y": y,
        "x": x,
        "spatial_ref": ((), np.int64(0), spatial_ref_attrs(grid)),
    }
    return xr.Dataset(data_vars, coords=coords)


# Long because its docstring documents rasteret's whole keyword surface; the work
# is in ._points and ._nearest.
def sample_points(
    collection: Any, *, points: Any, bands: Sequence[str],
    data_source: str | DataSource | None = None, sign: Callable[[str], str] | None = None,
    max_concurrent: int = 64, backend: object | None = None, geometry_crs: Any = AUTO,
    geometry_column: str | None = None, x_column: str | None = None,
    y_column: str | None = None, max_distance_pixels: int = 0, progress: bool = False,
    storage_options: dict[str, Any] | None = None, on_error: str = "raise", **filters: Any,
) -> pa.Table:
    """Values of ``bands`` at each point, for every record whose footprint holds it.

    The pixel containing the point is sampled (rasterio ``sample``). As in
    rasteret 0.4, a point has rows for the records whose footprint holds it
    (none if no footprint does); one that falls off a record's raster, or on its
    nodata, is flagged (``outside``, ``nodata``), not dropped.

    Parameters
    ----------
    collection
        A Collection, the path/URL of one, or a Dataset opened with the engine.
    points
        Point geometries in any form :func:`get_numpy` accepts.
    bands
        Band codes or asset keys.
    data_source, sign, max_concurrent, backend, geometry_crs, geometry_column, progress
        As in :func:`get_numpy`.
    x_column, y_column
        Take the points from these coordinate columns of a table (pyarrow Table,
        pandas DataFrame, any Arrow stream); without them, a table with no
        geometry column uses ``x``/``y``, ``lon``/``lat``, ``longitude``/``latitude``
        or ``lng``/``lat`` (rasteret's defaults). ``geometry_crs`` gives their CRS
        (default EPSG:4326).
    max_distance_pixels
        Where the pixel holding a point is nodata, take the nearest valid pixel
        within this many pixels (Chebyshev rings; in the first ring with one,
        the pixel closest to the point), as rasteret 0.4. 0 (default): no search.
    storage_options, on_error, **filters
        As in :func:`get_numpy`. Under ``on_error="nodata"``, a point in a failed
        tile is flagged ``nodata`` (but for an integer band without nodata: 0).

    Returns
    -------
    pyarrow.Table
        rasteret 0.4's columns: ``point_index``, ``point_x``, ``point_y``,
        ``point_crs`` (EPSG code, int32), ``record_id``, ``datetime``,
        ``collection`` (the record's STAC collection, else empty), ``band``,
        ``value`` (float64; null when outside), ``raster_crs`` (EPSG code); then
        ours: ``point_crs_wkt``/``raster_crs_wkt`` (the WKT of a CRS without an
        EPSG code), ``outside``, ``nodata``, then the user's columns (suffix
        ``_user`` on a clash). Rows are ordered by record, then band, then point
        (as rasteret).

    Examples
    --------
    >>> pts = [shapely.Point(16.0, 45.0)]
    >>> tbl = sample_points(col, points=pts, bands=["B04"])  # doctest: +SKIP
    """
    import shapely


    if not isinstance(max_distance_pixels, int) or max_distance_pixels < 0:
        raise ValueError(
            f"max_distance_pixels={max_distance_pixels!r}: it must be an integer >= 0 "
            "(0: no search for a valid pixel around a point on nodata)"
        )
    points, geometry_column = xy_points(points, x_column, y_column, geometry_column)
    col, aois = _prepare(
        collection, points, geometry_crs, geometry_column, filters, storage_options, backend
    )
    non_points = [i for i, g in enumerate(aois.geometries) if g.geom_type != "Point"]
    if non_points:
        raise ValueError(
            f"sample_points takes points; geometries {non_points[:5]} are not points "
            "(use get_gdf for areas)"
        )
    assets, source = resolve_bands(col, bands, data_source)
    band_list = [bands] if isinstance(bands, str) else list(bands)
    tree = shapely.STRtree(list(col.geometries))
    p_idx, r_idx = tree.query(to_crs(aois.geometries, aois.crs, _CRS84), predicate="intersects")
    per_band = band_sources(col, assets, source)
    samples, tasks = plan_point_reads(aois, (p_idx, r_idx), per_band)
    options = signed_options(
        read_options(max_concurrent, backend, storage_options, on_error), sign, source
    )
    run_reads([(tasks, None)], options, progress=progress, what="points")
    samples.pick()
    if max_distance_pixels and samples.values.size:
        nodata = np.array(
            [[np.nan if s.nodata is None else s.nodata for s in per_band[b]] for b in band_list]
        )[samples.band_index, samples.record_index]
        search, more = NearestSearch.plan(
            samples, [per_band[b] for b in band_list], nodata, max_distance_pixels
        )
        run_reads([(more, None)], options, progress=progress, what="nearest pixels")
        search.apply(samples)
    table = points_table(col, aois, samples, band_list, per_band)
    user: dict[str, Any] = {}
    _add_user_columns(user, aois, table.column("point_index"))
    for name, vals in user.items():
        key = name if name not in table.column_names else f"{name}_user"
        table = table.append_column(key, vals)
    return table


