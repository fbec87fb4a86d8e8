"""AOI reads onto a target CRS (the helpers' ``target_crs``), with the engine's warp code.

Per geometry, a north-up grid in the target CRS covers the geometry's bounds
at the finest resolution its records have there (GDAL's suggested warp
resolution), on the lattice of whole multiples of that resolution. Each
(geometry, record) pair whose record is not on that grid's lattice is planned
as a one-member :class:`~xarray_rasteret._warp_array.MosaicArray` on that grid
(a record on the lattice is read straight into the output): its read
tasks join those of every other pair in one concurrent read, and each pair is
resampled (nearest, as GDAL's default) into its output as soon as its own
tiles are in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyproj
from affine import Affine

from .._lazy.mosaic import Member, MosaicArray, PositionBudget
from .._read.tasks import Group, ReadOptions, ReadTask
from .._types import Window
from ..geo.aoi import AOIs, to_crs
from ..geo.crs import as_crs, epsg_code
from ..geo.grid import RasterGrid
from ..geo.target import default_resolution, target_grid
from ._reads import BandRead

__all__ = ["Regridded", "regrid_pairs", "warp_tasks"]


def _crs_label(crs: pyproj.CRS) -> str:
    """The record-CRS label of a target CRS: its EPSG code where it has one, else WKT."""
    epsg = epsg_code(crs)
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


@dataclass
class Regridded:
    """One (pair, band) put on a grid of the target CRS (its output not yet read)."""

    pair: Any
    band: str
    grid: RasterGrid
    source_grid: RasterGrid


def regrid_pairs(pairs: list[Any], aois: AOIs, target_crs: Any) -> list[Regridded]:
    """Put every band of ``pairs`` (from ``plan_pairs``) on a grid of ``target_crs``, in place.

    Each pair's geometry and CRS label become the target CRS's, and each band's
    output an unread ``np.empty`` array on the grid around the geometry (it may
    then be replaced by a slice of a stacked array, before :func:`warp_tasks`).
    """
    dst = as_crs(target_crs)
    label = _crs_label(dst)
    by_geometry: dict[int, list[Any]] = defaultdict(list)
    for pair in pairs:
        by_geometry[pair.geometry_index].append(pair)
    out: list[Regridded] = []
    for gi, group in by_geometry.items():
        geom = to_crs([aois.geometries[gi]], aois.crs, dst)[0]
        for band in group[0].bands:
            grids = [
                RasterGrid.of(s)
                for s in (p.bands[band].source for p in group)
            ]
            rx, ry = default_resolution(grids, dst)
            grid = target_grid(dst, (rx, ry), geom.bounds)
            lattice = Affine(rx, 0.0, 0.0, 0.0, -ry, 0.0)
            offset = (round(-grid.transform.f / ry), round(grid.transform.c / rx))
            for pair, src_grid in zip(group, grids, strict=True):
                old = pair.bands[band]
                data = np.empty(grid.shape, old.source.dtype)
                pair.bands[band] = BandRead(
                    old.source, old.window, grid.transform, data, old.fill, lattice, offset
                )
                out.append(Regridded(pair, band, grid, src_grid))
        for pair in group:
            pair.geometry, pair.crs = geom, label
    return out


def warp_tasks(
    regridded: list[Regridded], options: ReadOptions | None
) -> tuple[list[Group], Callable[[], list[Group]]]:
    """The read tasks of each regridded (pair, band), and a function planning the rest.

    Both write into the band's current output. A record on the grid's lattice
    is read straight into it: those groups come first (function None). The
    function returned plans every other record as a one-member
    :class:`~xarray_rasteret._warp_array.MosaicArray` (source windows, no I/O)
    and returns its groups: tasks and the function resampling them.
    """
    options = options or ReadOptions()
    direct: list[Group] = []
    warped: list[Regridded] = []
    for item in regridded:
        r = item.pair.bands[item.band]
        paste = _paste_offset(item.grid, item.source_grid)
        if paste is None:
            warped.append(item)
            continue
        (ro, co), (h, w) = paste, item.grid.shape
        window = Window(-ro, h - ro, -co, w - co)
        direct.append(([ReadTask(r.source, 0, window, r.data, fill=r.fill)], None))
    return direct, partial(_plan_warps, warped, options)


def _plan_warps(warped: list[Regridded], options: ReadOptions) -> list[Group]:
    groups: list[Group] = []
    budget = PositionBudget()
    for item in warped:
        r = item.pair.bands[item.band]
        array = MosaicArray([[Member(r.source, 0)]], item.grid, r.source.dtype, r.fill,
                            "nearest", options)
        # The output's pages are first touched (filled) while the tiles travel.
        out, box, jobs, ts, _ = array.plan((slice(None),) * 3, out=r.data[None], fill_out=False)
        assemble = partial(array.assemble, out, box, jobs)
        groups.append((ts[0], array.staged(assemble, jobs, budget, unfilled=out)))
    return groups


def _paste_offset(grid: RasterGrid, src: RasterGrid) -> tuple[int, int] | None:
    """Where ``src`` lies on ``grid`` if it is on the same lattice (then pasted, not resampled)."""
    if not grid.is_aligned_with(src):
        return None
    w = grid.window_of(src)
    return (w.row_start, w.col_start)
