"""Point sampling for ``sample_points``: points located in each record's grid, read by tile.

Points are located in each record's pixel grid with vectorized transforms, then
read with :func:`~xarray_rasteret._read.points.tile_reads` (one task per tile)
and picked out with fancy indexing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import shapely

from .._read.points import inside_image, tile_reads
from .._read.tasks import ReadTask
from .._types import RasterSource
from ..collection import Collection
from ..geo.aoi import AOIs
from ..geo.crs import as_crs, epsg_code, transformer

__all__ = ["PointSamples", "plan_point_reads", "points_table"]


@dataclass
class PointSamples:
    """Flat arrays, one entry per (point, record, band) sampled."""

    point_index: np.ndarray
    record_index: np.ndarray
    band_index: np.ndarray
    values: np.ndarray
    outside: np.ndarray
    pickers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    """(entries, rows, cols, out): after the read, ``values[entries] = out[rows, cols]``."""

    def pick(self) -> None:
        """Copy the sampled pixels from the read windows into ``values``."""
        for entries, rows, cols, out in self.pickers:
            self.values[entries] = out[rows, cols]


def _pixel_of(src: RasterSource, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = src.transform
    cols = np.floor((xy[:, 0] - t.c) / t.a).astype(np.int64)
    rows = np.floor((xy[:, 1] - t.f) / t.e).astype(np.int64)
    return rows, cols


def plan_point_reads(
    aois: AOIs,
    pairs: tuple[np.ndarray, np.ndarray],
    per_band: dict[str, list[RasterSource]],
) -> tuple[PointSamples, list[ReadTask]]:
    """Locate every (point, record) pair in each band's grid and plan its reads (no I/O).

    Parameters
    ----------
    aois
        The points and their CRS.
    pairs
        ``(point indices, record indices)`` whose footprints intersect.
    per_band
        Each band's sources, one per record.

    Returns
    -------
    PointSamples, list of ReadTask
    """
    p_idx, r_idx = pairs
    xy = shapely.get_coordinates(aois.geometries)
    projected: dict[str | None, np.ndarray] = {}
    bands = list(per_band)
    n = len(p_idx) * len(bands)
    samples = PointSamples(
        point_index=np.repeat(p_idx, len(bands)),
        record_index=np.repeat(r_idx, len(bands)),
        band_index=np.tile(np.arange(len(bands)), len(p_idx)),
        values=np.zeros(n, dtype=np.result_type(*(s[0].dtype for s in per_band.values()))),
        outside=np.ones(n, dtype=bool),
        pickers=[],
    )
    tasks: list[ReadTask] = []
    for ri in np.unique(r_idx):
        in_record = np.flatnonzero(r_idx == ri)
        for bi, band in enumerate(bands):
            src = per_band[band][int(ri)]
            if src.crs not in projected:
                # One vectorized transform of every point per raster CRS.
                tr = transformer(aois.crs, src.crs if src.crs else aois.crs)
                projected[src.crs] = np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
            rows, cols = _pixel_of(src, projected[src.crs][p_idx[in_record]])
            layout = src.levels[0]
            inside = inside_image(layout, rows, cols)
            entries = in_record * len(bands) + bi
            samples.outside[entries[inside]] = False
            entries, rows, cols = entries[inside], rows[inside], cols[inside]
            for which, r, c, out, task in tile_reads(src, 0, rows, cols, fill=None):
                tasks.append(task)
                samples.pickers.append((entries[which], r, c, out))
    return samples, tasks


def points_table(
    col: Collection, aois: AOIs, samples: PointSamples, bands: list[str],
    per_band: dict[str, list[RasterSource]], unmatched: np.ndarray,
) -> pa.Table:
    """The result table of ``sample_points`` (see its docstring for the columns)."""
    ids = np.asarray(col.ids, dtype=object)
    times = np.asarray(col.datetimes, dtype="datetime64[us]")
    crs = np.asarray([s.crs for s in next(iter(per_band.values()))], dtype=object)
    nodata = np.array(
        [[np.nan if s.nodata is None else s.nodata for s in per_band[b]] for b in bands]
    )
    s = samples
    nod = nodata[s.band_index, s.record_index] if s.values.size else np.zeros(0)
    values = s.values
    as_float = values.astype(np.float64)
    # NaN counts as nodata in float rasters, declared or not (as in masked reads).
    is_nodata = ~s.outside & ((as_float == nod) | np.isnan(as_float))
    n_un = len(unmatched)
    point_index = np.concatenate([s.point_index, unmatched]).astype(np.int64)
    xy = shapely.get_coordinates(aois.geometries)
    value_arr = pa.array(
        np.concatenate([values, np.zeros(n_un, dtype=values.dtype)]),
        mask=np.concatenate([s.outside, np.ones(n_un, dtype=bool)]),
    )

    # String columns are taken from their few distinct values (no Python string per row);
    # the unmatched points' rows take null.
    unmatched_null = np.concatenate([np.zeros(len(s.record_index), bool), np.ones(n_un, bool)])

    def strings(values: Iterable[Any], index: np.ndarray) -> pa.Array:
        take = pa.array(np.concatenate([index, np.zeros(n_un, index.dtype)]), mask=unmatched_null)
        return pa.array(list(values), pa.string()).take(take)

    point_epsg, point_wkt = _crs_columns([aois.crs])
    raster_epsg, raster_wkt = _crs_columns(crs)
    zeros = np.zeros(len(point_index), np.int64)
    # rasteret 0.4's columns first, with its names and types; then ours.
    columns: dict[str, Any] = {
        "point_index": pa.array(point_index),
        "point_x": pa.array(xy[point_index, 0]),
        "point_y": pa.array(xy[point_index, 1]),
        "point_crs": point_epsg.take(pa.array(zeros)),
        "record_id": strings(ids, s.record_index),
        "datetime": pa.array(
            np.concatenate([times[s.record_index], np.full(n_un, np.datetime64("NaT"), "M8[us]")]),
            pa.timestamp("us"),
        ),
        "collection": pa.repeat(pa.scalar(col.name or "", pa.string()), len(point_index)),
        "band": strings(bands, s.band_index),
        "value": value_arr,
        "raster_crs": _take_rows(raster_epsg, s.record_index, unmatched_null),
        "point_crs_wkt": point_wkt.take(pa.array(zeros)),
        "raster_crs_wkt": _take_rows(raster_wkt, s.record_index, unmatched_null),
        "outside": pa.array(np.concatenate([s.outside, np.ones(n_un, dtype=bool)])),
        "nodata": pa.array(np.concatenate([is_nodata, np.zeros(n_un, dtype=bool)])),
    }
    return pa.table(columns)


def _crs_columns(crss: Iterable[Any]) -> tuple[pa.Array, pa.Array]:
    """Per CRS: its EPSG code (int32, rasteret's type), and its WKT where it has none."""
    seen: dict[Any, tuple[int | None, str | None]] = {}  # records share a few CRSs
    for c in crss:
        if c not in seen:
            code = epsg_code(c) if c is not None else None
            seen[c] = (code, as_crs(c).to_wkt() if c is not None and code is None else None)
    rows = [seen[c] for c in crss]
    return pa.array([r[0] for r in rows], pa.int32()), pa.array([r[1] for r in rows], pa.string())


def _take_rows(per_record: pa.Array, record_index: np.ndarray, null: np.ndarray) -> pa.Array:
    """``per_record`` for each sampled row's record; null for the points that matched none."""
    index = np.concatenate([record_index, np.zeros(int(null.sum()), record_index.dtype)])
    return per_record.take(pa.array(index, mask=null))
