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
from functools import partial
from typing import Any

import numpy as np
import pyproj
from affine import Affine

from ._fetch import ReadOptions, ReadTask
from ._types import Window
from ._warp_array import Member, MosaicArray
from .geo.aoi import AOIs, to_crs
from .geo.crs import as_crs
from .geo.grid import RasterGrid
from .geo.target import default_resolution, target_grid

__all__ = ["warp_pairs"]


def _crs_label(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def warp_pairs(
    pairs: list[Any], aois: AOIs, target_crs: Any, options: ReadOptions | None
) -> list[tuple[list[ReadTask], Callable[[], None] | None]]:
    """Re-plan ``pairs`` (from ``plan_pairs``) onto ``target_crs``, in place.

    Returns
    -------
    list of (tasks, resample)
        Per pair and band, its read tasks and the function that resamples
        them into the pair's output once they are read (None for a record on
        the target grid's lattice: its window is read straight into the output).
    """
    from ._aoi_read import BandRead

    dst = as_crs(target_crs)
    label = _crs_label(dst)
    options = options or ReadOptions()
    by_geometry: dict[int, list[Any]] = defaultdict(list)
    for pair in pairs:
        by_geometry[pair.geometry_index].append(pair)
    groups: list[tuple[list[ReadTask], Callable[[], None] | None]] = []
    for gi, group in by_geometry.items():
        geom = to_crs([aois.geometries[gi]], aois.crs, dst)[0]
        for band in group[0].bands:
            grids = [
                RasterGrid(s.crs, s.transform, s.levels[0].width, s.levels[0].height)
                for s in (p.bands[band].source for p in group)
            ]
            rx, ry = default_resolution(grids, dst)
            grid = target_grid(dst, (rx, ry), geom.bounds)
            lattice = Affine(rx, 0.0, 0.0, 0.0, -ry, 0.0)
            offset = (round(-grid.transform.f / ry), round(grid.transform.c / rx))
            for pair, src_grid in zip(group, grids, strict=True):
                old = pair.bands[band]
                paste = _paste_offset(grid, src_grid)
                if paste is not None:
                    # On the grid's lattice: the record's window is read straight into
                    # the output, as without target_crs (fill outside the image).
                    data = np.empty(grid.shape, old.source.dtype)
                    (ro, co), (h, w) = paste, grid.shape
                    window = Window(-ro, h - ro, -co, w - co)
                    groups.append(([ReadTask(old.source, 0, window, data, fill=old.fill)], None))
                else:
                    array = MosaicArray([[Member(old.source, 0)]], grid, old.source.dtype,
                                        old.fill, "nearest", options)
                    out, box, jobs, ts, _ = array.plan((slice(None),) * 3)
                    groups.append((ts, partial(array.assemble, out, box, jobs)))
                    data = out[0]
                pair.bands[band] = BandRead(
                    old.source, old.window, grid.transform, data, old.fill, lattice, offset
                )
        for pair in group:
            pair.geometry, pair.crs = geom, label
    return groups


def _paste_offset(grid: RasterGrid, src: RasterGrid) -> tuple[int, int] | None:
    """Where ``src`` lies on ``grid`` if it is on the same lattice (then pasted, not resampled)."""
    if not grid.is_aligned_with(src):
        return None
    w = grid.window_of(src)
    return (w.row_start, w.col_start)
