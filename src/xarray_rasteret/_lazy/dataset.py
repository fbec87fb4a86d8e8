"""Assemble a lazy ``xarray.Dataset`` from a collection: grid, coords, CF attrs, encoding."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr
from xarray.core import indexing

from .._read.decode import check_supported
from .._read.tasks import ReadOptions
from .._types import RasterSource, Window
from ..collection import Collection
from ..data_sources import DataSource
from ..errors import AOIOutsideDataError, NoRecordSelectedError, ReprojectionRequiredError
from ..geo.aoi import bounds_in_crs
from ..geo.crs import as_crs
from ..geo.grid import RasterGrid, union_grid
from ..geo.overviews import choose_overview, reprojection_factor
from ..geo.reproject import check_resampling
from ..geo.target import (
    as_resolution,
    default_crs,
    default_resolution,
    grid_bounds_in,
    records_bounds,
    suggested_grid,
    target_grid,
)
from .attrs import axis_attrs, column_coordinate, spatial_ref_attrs, variable_attrs
from .bands import band_sources
from .chunking import default_chunks, with_chunking_variables
from .groups import group_keys, group_steps
from .internal_masks import has_masks, honoured
from .masks import MaskRule
from .messages import grid_mismatch, no_match
from .methods import Method, method_output, method_params
from .mosaic import Member, MosaicArray
from .native import Placement, RasteretArray
from .periods import is_period
from .raster_index import Coords, with_raster_index
from .records import DecodedArray, StepParams, decoded_dtype, per_record_coords, step_params

__all__ = [
    "DatasetRequest",
    "build_dataset",
    "spatial_ref_attrs",
    "variable_attrs",
]


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
    crs: Any = None
    """Target CRS; with ``resolution`` or ``align`` it asks for a common grid."""
    resolution: float | tuple[float, float] | None = None
    """Target pixel size in target CRS units."""
    align: tuple[float, float] | None = None
    """A point on a pixel corner of the target grid (default ``(0, 0)``)."""
    resampling: str = "nearest"
    """Resampling onto the target grid."""
    groupby: str | None = None
    """``"solar_day"``, a period (``"P1M"``) or a column: records of a group form one step."""
    progress: bool = False
    """A tqdm bar over the tiles of each read without dask."""
    assets: dict[str, str] | None = None
    """Variable name -> the collection's asset key (band codes of a data source)."""
    data_source: DataSource | None = None
    """Rewrites the hrefs of the reads (its signer is in the ReadOptions)."""
    method: Method = "first"
    """How the records of a group merge (:mod:`.methods`)."""
    sortby: str | None = None
    """A column ordering the records of a group (``-name``: descending), before time."""
    mask: MaskRule | None = None
    """A band of the same records whose values drop pixels before the merge (its
    ``band`` an asset key of the collection)."""
    coords: Coords = "arrays"
    """x/y as explicit arrays, or through rasterix's ``RasterIndex`` (:mod:`.raster_index`)."""

    @property
    def wants_target_grid(self) -> bool:
        """Whether a common target grid was asked for."""
        return self.crs is not None or self.resolution is not None or self.align is not None


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
    import shapely


    src_crs = as_crs(request.bbox_crs)
    dst_crs = as_crs(grid.crs) if grid.crs else src_crs
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
        raise NoRecordSelectedError(no_match(collection, request.time, request.filters))
    check_resampling(request.resampling)
    col = _sorted_by_time(col)
    bands = list(request.bands) if request.bands is not None else list(col.bands)
    ids = [str(i) for i in col.ids]
    assets = {band: (request.assets or {}).get(band, band) for band in bands}
    per_band = band_sources(col, assets, request.data_source)
    per_band = {b: honoured(s, request.mask_and_scale) for b, s in per_band.items()}
    steps = group_steps(col, request.groupby, request.sortby)
    # Each band's records' mask band (none for the mask band itself).
    masks: dict[str, list[RasterSource] | None] = dict.fromkeys(per_band)
    if request.mask is not None:
        mask_band = request.mask.band
        of_mask = band_sources(col, {mask_band: mask_band}, request.data_source)[mask_band]
        masks = {b: None if assets[b] == mask_band else of_mask for b in per_band}

    if request.wants_target_grid:
        grid = _target_grid(col, per_band, request)
        data_vars = {
            band: _mosaic_variable(band, sources, steps, grid, request, options, ids, masks[band])
            for band, sources in per_band.items()
        }
    else:
        grid, data_vars = _native_variables(col, per_band, steps, ids, request, options, masks)

    coords = _coords(col, grid, steps, request.groupby)
    coords.update(_record_coords(data_vars, request))
    ds = xr.Dataset(data_vars, coords=coords, attrs=_dataset_attrs(col, bands))
    if request.mask_and_scale:
        ds = xr.decode_cf(ds, mask_and_scale=True, decode_times=False, decode_coords=False)
    # Dask chunks that carry only their own records; index columns that stay numpy.
    ds = with_chunking_variables(ds)
    if request.coords == "raster_index":  # after chunking, which reads ds.indexes
        ds = with_raster_index(ds, grid)
    # The helpers accept this Dataset in place of its collection.
    ds.encoding["rasteret_collection"] = col
    return ds


def _native_variables(
    col: Collection,
    per_band: dict[str, list[RasterSource]],
    steps: Sequence[Sequence[int]],
    ids: Sequence[str],
    request: DatasetRequest,
    options: ReadOptions,
    masks: dict[str, list[RasterSource] | None],
) -> tuple[RasterGrid, dict[str, xr.Variable]]:
    """The records' own grid (no target grid) and a variable per band on it."""
    grids: dict[str, RasterGrid] = {}
    levels: dict[str, list[int]] = {}
    for band, sources in per_band.items():
        levels[band] = [
            _level_for(s, request.overview_level, rid, band)
            for s, rid in zip(sources, ids, strict=True)
        ]
        record_grids = [
            RasterGrid.of(s, lv) for s, lv in zip(sources, levels[band], strict=True)
        ]
        if not all(record_grids[0].is_aligned_with(g) for g in record_grids):
            raise ReprojectionRequiredError(
                grid_mismatch(f"the records of band {band!r}", record_grids, ids,
                              _epsg_codes(col))
            )
        grids[band] = union_grid(record_grids, [f"record {rid!r}" for rid in ids])
    grid = _common_grid(grids)
    if grid.crs is None:
        warnings.warn(
            "the raster has no georeferencing: coordinates are pixel indices and there is "
            "no CRS",
            UserWarning,
            stacklevel=5,
        )
    grid = _clip_to_bbox(grid, request)
    data_vars = {}
    for band, sources in per_band.items():
        if request.groupby is None and masks[band] is None and not has_masks(sources):
            data_vars[band] = _band_variable(
                band, sources, levels[band], grid, request, options
            )
        else:  # merged (or masked) step by step
            members = _masked(
                [[_aligned_member(grid, sources[i], levels[band][i]) for i in step]
                 for step in steps],
                steps, masks[band], grid,
            )
            data_vars[band] = _wrap_variable(
                band, sources, members, grid, request, options, "nearest"
            )
    return grid, data_vars


def _record_coords(data_vars: dict[str, xr.Variable], request: DatasetRequest) -> dict[str, Any]:
    """Per-record scale/offset/nodata coordinates of native variables whose records differ."""
    coords: dict[str, Any] = {}
    for name, var in data_vars.items():
        mine = var.encoding.pop("rasteret_record_coords", {})
        coords.update(mine)
        if mine and not request.mask_and_scale:
            warnings.warn(
                f"the records of band {name!r} have different scale, offset or nodata: "
                f"its values are native and carry no scale_factor/add_offset/_FillValue "
                f"that would be wrong for some records; the per-record values are the "
                f"coordinates {sorted(mine)} along time. Pass mask_and_scale=True to get "
                f"each record decoded with its own",
                UserWarning,
                stacklevel=5,
            )
    return coords


def _dataset_attrs(col: Collection, bands: Sequence[str]) -> dict[str, Any]:
    """A short description of what was opened (CF global attributes)."""
    attrs: dict[str, Any] = {}
    if col.name:
        attrs["title"] = col.name
    attrs["source"] = (
        f"{len(col)} record(s), band(s) {', '.join(bands)}, read lazily by xarray-rasteret "
        f'(engine="rasteret")'
    )
    return attrs


# -- target grid -----------------------------------------------------------------


def _target_grid(
    col: Collection, per_band: dict[str, list[RasterSource]], request: DatasetRequest
) -> RasterGrid:
    full = [RasterGrid.of(s, 0) for sources in per_band.values() for s in sources]
    if any(g.crs is None for g in full):
        raise ReprojectionRequiredError(
            "a target grid (crs=, resolution=, align=) needs georeferenced records; "
            "some have no CRS"
        )
    crs = request.crs if request.crs is not None else default_crs([g.crs for g in full])
    crs_wkt = as_crs(crs).to_wkt()
    if request.resolution is not None:
        res = as_resolution(request.resolution)
    else:
        res = default_resolution(full, crs_wkt)
    if request.bbox is not None:
        import shapely


        bounds = bounds_in_crs(shapely.box(*request.bbox), request.bbox_crs, crs_wkt)
    else:
        bounds = records_bounds(full, crs_wkt)
        if request.resolution is None and request.align is None:
            return suggested_grid(crs_wkt, res, bounds)  # what gdalwarp -t_srs gives
    return target_grid(crs_wkt, res, bounds, align=request.align)


def _auto_level(src: RasterSource, grid: RasterGrid, resampling: str) -> int:
    """The level GDAL's warper reads for ``grid`` (``OVERVIEW_LEVEL=AUTO``)."""
    if len(src.levels) == 1:
        return 0

    factor = reprojection_factor(
        src.transform, src.crs, grid.shape, grid.transform, grid.crs
    )
    sizes = [(lv.width, lv.height) for lv in src.levels]
    return choose_overview(sizes, factor, resampling=resampling)


def _aligned_member(grid: RasterGrid, src: RasterSource, level: int) -> Member:
    w = grid.window_of(RasterGrid.of(src, level))
    return Member(src, level, (w.row_start, w.col_start))


# Output pixels around a record's footprint that may still receive its values
# (kernels reaching past the edge, GDAL's exact retry of positions just outside).
_FOOTPRINT_MARGIN = 2


def _warp_member(grid: RasterGrid, src: RasterSource, level: int) -> Member:
    g = RasterGrid.of(src, level)
    if grid.is_aligned_with(g):
        return _aligned_member(grid, src, level)

    w = grid.window_for_bounds(grid_bounds_in(g, grid.crs))
    m = _FOOTPRINT_MARGIN
    footprint = Window(w.row_start - m, w.row_stop + m, w.col_start - m, w.col_stop + m)
    return Member(src, level, None, footprint)


def _mosaic_variable(
    band: str,
    sources: Sequence[RasterSource],
    steps: Sequence[Sequence[int]],
    grid: RasterGrid,
    request: DatasetRequest,
    options: ReadOptions,
    ids: Sequence[str],
    masks: Sequence[RasterSource] | None = None,
) -> xr.Variable:
    members = []
    for step in steps:
        row = []
        for i in step:
            src = sources[i]
            if request.overview_level is not None:
                level = _level_for(src, request.overview_level, ids[i], band)
            else:
                level = _auto_level(src, grid, request.resampling)
            row.append(_warp_member(grid, src, level))
        members.append(row)
    members = _masked(members, steps, masks, grid)
    return _wrap_variable(band, sources, members, grid, request, options, request.resampling)


def _masked(
    members: list[list[Member]],
    steps: Sequence[Sequence[int]],
    masks: Sequence[RasterSource] | None,
    grid: RasterGrid,
) -> list[list[Member]]:
    """``members`` with their record's mask band attached, read on ``grid`` (nearest)."""
    if masks is None:
        return members
    out = []
    for step, row in zip(steps, members, strict=True):
        attached = []
        for i, member in zip(step, row, strict=True):
            src = masks[i]
            level = _auto_level(src, grid, "nearest")
            on_grid = grid.is_aligned_with(RasterGrid.of(src, level))
            mask = (_aligned_member if on_grid else _warp_member)(grid, src, level)
            attached.append(replace(member, mask=mask))
        out.append(attached)
    return out


def _wrap_variable(
    band: str,
    sources: Sequence[RasterSource],
    members: Sequence[Sequence[Member]],
    grid: RasterGrid,
    request: DatasetRequest,
    options: ReadOptions,
    resampling: str,
) -> xr.Variable:
    for enc in {s.encoding for s in sources}:
        check_supported(enc)
    dtype = np.result_type(*(s.dtype for s in sources))
    first = sources[0]
    params = step_params(band, [[m.source for m in step] for step in members])
    label = band if request.progress else None
    method = request.method
    # Internal masks (kept only with mask_and_scale) mask to NaN as nodata does.
    if (not params.uniform or has_masks(sources)) and request.mask_and_scale and method in (
        "first", "last", "min", "max"
    ):
        # Merged as float with NaN where nothing valid lands (each member masked
        # by its own nodata), then scaled per step: no first-record nodata applies.
        merged = np.dtype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)
        array = MosaicArray(members, grid, merged, np.nan, resampling, options, label, method,
                            request.mask)
        params = replace(params, nodata=(None,) * len(params.nodata))
    else:
        out_dtype, fill = method_output(method, dtype, first.fill)
        array = MosaicArray(members, grid, out_dtype, fill, resampling, options, label, method,
                            request.mask)
        first, params = method_params(method, first, params)
        dtype = out_dtype
    layout = first.levels[0]
    chunks = default_chunks(
        layout.tile_height, layout.tile_width, array.shape, dtype, request.mask_and_scale
    )
    return _variable(band, array, first, dtype, chunks, request, params)


def _sorted_by_time(col: Collection) -> Collection:
    times = np.asarray(col.datetimes, dtype="datetime64[ns]")
    order = np.argsort(times, kind="stable")
    if np.array_equal(order, np.arange(len(order))):
        return col
    return type(col)(col.table.take(order), name=col.name)


def _common_grid(grids: dict[str, RasterGrid]) -> RasterGrid:
    names = list(grids)
    first = grids[names[0]]
    for name in names[1:]:
        g = grids[name]
        if not first.is_aligned_with(g):
            raise ReprojectionRequiredError(
                grid_mismatch(f"bands {names[0]!r} and {name!r}", [first, g], [names[0], name],
                              [None, None])
            )
        if g.shape != first.shape:
            raise ReprojectionRequiredError(
                f"bands {names[0]!r} and {name!r} share a pixel grid but cover different "
                f"extents ({first.width} x {first.height} vs {g.width} x {g.height} pixels, "
                f"bounds {first.bounds} vs {g.bounds}); open them separately (bands=[...]), "
                f"or pass a target grid (crs=, resolution=, and bbox= for one extent)"
            )
    return first


def _epsg_codes(col: Collection) -> list[Any]:
    if "proj:epsg" not in col.table.column_names:
        return [None] * len(col)
    return list(col.table.column("proj:epsg").to_pylist())


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
        w = grid.window_of(RasterGrid.of(src, lv))
        placements.append(Placement(src, lv, w.row_start, w.col_start))
    dtype = np.result_type(*(s.dtype for s in sources))
    first = sources[0]
    fill = first.fill
    array = RasteretArray(placements, (len(sources), grid.height, grid.width), dtype, fill,
                          options, band if request.progress else None)
    layout = first.levels[levels[0]]
    chunks = default_chunks(
        layout.tile_height, layout.tile_width, array.shape, dtype, request.mask_and_scale
    )
    params = step_params(band, [[s] for s in sources])
    return _variable(band, array, first, dtype, chunks, request, params)


def _variable(
    band: str,
    array: RasteretArray | MosaicArray,
    first: RasterSource,
    dtype: np.dtype,
    chunks: dict[str, int],
    request: DatasetRequest,
    params: StepParams,
) -> xr.Variable:
    """The band's variable; see :mod:`.records` for records that differ."""
    attrs, encoding = variable_attrs(first, dtype, mask_and_scale=request.mask_and_scale)
    data: Any = array
    record_coords: dict[str, Any] = {}
    # Complex nodata masks by the real part (GDAL), which xr.decode_cf does not do.
    complex_nodata = np.dtype(dtype).kind == "c" and any(v is not None for v in params.nodata)
    if not params.uniform or (request.mask_and_scale and complex_nodata):
        if request.mask_and_scale:
            out = decoded_dtype(dtype, params)
            data = DecodedArray(array, params, out)
            attrs = {"grid_mapping": attrs["grid_mapping"]}
            encoding = {"dtype": out}
        else:
            record_coords = per_record_coords(band, params)
            for key in ("scale_factor", "add_offset") if not params.same_scale else ():
                attrs.pop(key, None)
            for key in ("_FillValue", "nodata") if not params.same_nodata else ():
                attrs.pop(key, None)
    var = xr.Variable(("time", "y", "x"), indexing.LazilyIndexedArray(data), attrs)
    var.encoding = {"preferred_chunks": chunks, **encoding}
    if record_coords:
        var.encoding["rasteret_record_coords"] = record_coords
    return var


def _coords(
    col: Collection, grid: RasterGrid, steps: Sequence[Sequence[int]], groupby: str | None
) -> dict[str, Any]:
    x, y = grid.xy_coords()
    x_attrs, y_attrs = axis_attrs(grid.crs)
    # A group's time, id and column values are those of its first member.
    firsts = [step[0] for step in steps]
    times = np.asarray(col.datetimes, dtype="datetime64[ns]")[firsts]
    ids = [str(i) for i in col.ids]
    coords: dict[str, Any] = {
        "time": ("time", times),
        "y": ("y", y, y_attrs),
        "x": ("x", x, x_attrs),
        "spatial_ref": ((), np.int64(0), spatial_ref_attrs(grid)),
        "id": column_coordinate([ids[i] for i in firsts]),
    }
    table = col.table
    for name in col.user_columns():
        values = table.column(name).to_numpy(zero_copy_only=False)[firsts]
        coords[name] = column_coordinate(values)
    if groupby is not None and (is_period(groupby) or groupby not in coords):
        keys = np.asarray(group_keys(col, groupby))
        # A period's time is its start, as xarray's resample labels its bins.
        coords["time" if is_period(groupby) else groupby] = ("time", keys[firsts])
    return coords
