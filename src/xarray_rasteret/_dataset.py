"""Assemble a lazy ``xarray.Dataset`` from a collection: grid, coords, CF attrs, encoding."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from xarray.core import indexing

from ._array import Placement, RasteretArray
from ._decode import check_supported
from ._fetch import ReadOptions
from ._types import RasterSource
from .errors import AOIOutsideDataError, ReprojectionRequiredError
from .geo.grid import RasterGrid, union_grid

if TYPE_CHECKING:
    from .collection import Collection

__all__ = ["DatasetRequest", "build_dataset", "spatial_ref_attrs"]


@dataclass(frozen=True)
class DatasetRequest:
    """What to open: the selection and layout options of ``open_dataset``."""

    bands: tuple[str, ...] | None = None
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: Any = "EPSG:4326"
    time: tuple[Any, Any] | None = None
    filters: dict[str, Any] | None = None
    overview_level: int | None = None
    mask_and_scale: bool = False


def spatial_ref_attrs(grid: RasterGrid) -> dict[str, Any]:
    """CF grid-mapping attributes that rioxarray and odc-geo read.

    Parameters
    ----------
    grid
        The output grid.

    Returns
    -------
    dict
        ``crs_wkt``, ``spatial_ref`` and ``GeoTransform`` (GDAL order), plus
        the CF projection parameters pyproj derives.
    """
    t = grid.transform
    attrs: dict[str, Any] = {}
    if grid.crs is not None:
        from pyproj import CRS

        crs = CRS.from_user_input(grid.crs)
        attrs.update(crs.to_cf())
        wkt = crs.to_wkt()
        attrs["crs_wkt"] = wkt
        attrs["spatial_ref"] = wkt
    attrs["GeoTransform"] = " ".join(repr(float(v)) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    return attrs


def _record_grid(src: RasterSource, level: int) -> RasterGrid:
    lv = src.levels[level]
    return RasterGrid(src.crs, src.level_transform(level), lv.width, lv.height)


def _level_for(src: RasterSource, level: int | None, record: str, band: str) -> int:
    if level is None:
        return 0
    if not 0 <= level < len(src.levels):
        raise ValueError(
            f"overview_level={level} is not available for band {band!r} of record {record!r}: "
            f"it has {len(src.levels) - 1} overview level(s) (0 = full resolution)"
        )
    return level


def _clip_to_bbox(grid: RasterGrid, request: DatasetRequest) -> RasterGrid:
    if request.bbox is None:
        return grid
    from .geo.aoi import bounds_in_crs

    import pyproj
    import shapely

    src_crs = pyproj.CRS.from_user_input(request.bbox_crs)
    dst_crs = pyproj.CRS.from_user_input(grid.crs) if grid.crs else src_crs
    bounds = bounds_in_crs(shapely.box(*request.bbox), src_crs, dst_crs)
    window = grid.clip(grid.window_for_bounds(bounds))
    if window is None:
        raise AOIOutsideDataError(
            f"bbox {request.bbox} ({request.bbox_crs}) does not intersect the data "
            f"(bounds {grid.bounds} in {grid.crs})"
        )
    return grid.crop(window)


def build_dataset(
    collection: Collection, request: DatasetRequest, options: ReadOptions
) -> xr.Dataset:
    """Open ``collection`` as a lazy Dataset: a variable per band, dims ``(time, y, x)``.

    Parameters
    ----------
    collection
        The index to read.
    request
        Selection (bands, bbox, time, filters) and layout options.
    options
        Storage and concurrency options handed to every read.

    Returns
    -------
    xarray.Dataset
        Lazy: no pixel is read until values are asked for.
    """
    col = collection
    if request.time is not None or request.filters or request.bbox is not None:
        col = col.filter(
            bbox=request.bbox,
            bbox_crs=request.bbox_crs,
            time=request.time,
            **(request.filters or {}),
        )
    if len(col) == 0:
        if request.bbox is not None:
            raise AOIOutsideDataError(
                f"bbox {request.bbox} ({request.bbox_crs}) does not intersect any record "
                f"of the collection (after the time and filter selection)"
            )
        raise ValueError("no record of the collection matches the time and filter selection")
    col = _sorted_by_time(col)
    bands = list(request.bands) if request.bands is not None else list(col.bands)
    ids = [str(i) for i in col.ids]

    per_band = {band: col.sources(band) for band in bands}
    grids: dict[str, RasterGrid] = {}
    levels: dict[str, list[int]] = {}
    for band, sources in per_band.items():
        levels[band] = [
            _level_for(s, request.overview_level, rid, band)
            for s, rid in zip(sources, ids, strict=True)
        ]
        record_grids = [_record_grid(s, lv) for s, lv in zip(sources, levels[band], strict=True)]
        grids[band] = union_grid(record_grids, [f"record {rid!r}" for rid in ids])
    grid = _common_grid(grids)
    if grid.crs is None:
        warnings.warn(
            "the raster has no georeferencing: coordinates are pixel indices and there is no CRS",
            UserWarning,
            stacklevel=4,
        )
    grid = _clip_to_bbox(grid, request)

    data_vars = {}
    for band, sources in per_band.items():
        data_vars[band] = _band_variable(band, sources, levels[band], grid, request, options)
    coords = _coords(col, grid)
    ds = xr.Dataset(data_vars, coords=coords)
    if request.mask_and_scale:
        ds = xr.decode_cf(ds, mask_and_scale=True, decode_times=False, decode_coords=False)
    # The helpers accept this Dataset in place of its collection.
    ds.encoding["rasteret_collection"] = col
    return ds


def _sorted_by_time(col: Collection) -> Collection:
    times = np.asarray(col.datetimes, dtype="datetime64[ns]")
    order = np.argsort(times, kind="stable")
    if np.array_equal(order, np.arange(len(order))):
        return col
    return type(col)(col.table.take(order))


def _common_grid(grids: dict[str, RasterGrid]) -> RasterGrid:
    names = list(grids)
    first = grids[names[0]]
    for name in names[1:]:
        g = grids[name]
        if not (first.is_aligned_with(g) and g.shape == first.shape):
            raise ReprojectionRequiredError(
                f"bands {names[0]!r} and {name!r} are on different grids "
                f"(resolution {first.resolution} vs {g.resolution}, shape {first.shape} vs "
                f"{g.shape}); open them separately (bands=[...]) or pass a target grid"
            )
    return first


def _band_variable(
    band: str,
    sources: Sequence[RasterSource],
    levels: Sequence[int],
    grid: RasterGrid,
    request: DatasetRequest,
    options: ReadOptions,
) -> xr.Variable:
    for enc in {s.encoding for s in sources}:
        check_supported(enc)
    placements = []
    for src, lv in zip(sources, levels, strict=True):
        w = grid.window_of(_record_grid(src, lv))
        placements.append(Placement(src, lv, w.row_start, w.col_start))
    dtype = np.result_type(*(s.dtype for s in sources))
    first = sources[0]
    nodata = first.nodata
    fill = nodata if nodata is not None else 0
    array = RasteretArray(placements, (len(sources), grid.height, grid.width), dtype, fill, options)
    layout = first.levels[levels[0]]
    attrs: dict[str, Any] = {"grid_mapping": "spatial_ref"}
    encoding: dict[str, Any] = {
        "preferred_chunks": {"time": 1, "y": layout.tile_height, "x": layout.tile_width},
        "dtype": dtype,
    }
    if nodata is not None:
        attrs["nodata"] = nodata
    if request.mask_and_scale:
        if nodata is not None:
            attrs["_FillValue"] = nodata
        if first.scale != 1.0:
            attrs["scale_factor"] = first.scale
        if first.offset != 0.0:
            attrs["add_offset"] = first.offset
    elif nodata is not None:
        encoding["_FillValue"] = nodata
    if first.scale != 1.0 or first.offset != 0.0:
        attrs.setdefault("scale_factor", first.scale)
        attrs.setdefault("add_offset", first.offset)
    var = xr.Variable(("time", "y", "x"), indexing.LazilyIndexedArray(array), attrs)
    var.encoding = encoding
    return var


def _coords(col: Collection, grid: RasterGrid) -> dict[str, Any]:
    x, y = grid.xy_coords()
    coords: dict[str, Any] = {
        "time": ("time", np.asarray(col.datetimes, dtype="datetime64[ns]")),
        "y": ("y", y),
        "x": ("x", x),
        "spatial_ref": ((), np.int64(0), spatial_ref_attrs(grid)),
        "id": ("time", np.asarray([str(i) for i in col.ids], dtype=object)),
    }
    table = col.table
    for name in col.user_columns():
        values = table.column(name).to_numpy(zero_copy_only=False)
        coords[name] = ("time", values)
    return coords
