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

__all__ = ["PointSamples", "plan_point_reads", "points_table", "record_column", "xy_points"]


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
    pixel: np.ndarray
    """``(n, 2)`` fractional ``(row, col)`` of each entry's point in its record's grid."""

    def pick(self) -> None:
        """Copy the sampled pixels from the read windows into ``values``."""
        for entries, rows, cols, out in self.pickers:
            self.values[entries] = out[rows, cols]


def _pixel_of(src: RasterSource, xy: np.ndarray) -> np.ndarray:
    """``(n, 2)`` fractional ``(row, col)`` of map points ``xy`` in ``src``'s grid."""
    t = src.transform
    return np.column_stack([(xy[:, 1] - t.f) / t.e, (xy[:, 0] - t.c) / t.a])


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
        pixel=np.full((n, 2), np.nan),
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
            pixel = _pixel_of(src, projected[src.crs][p_idx[in_record]])
            rows, cols = np.floor(pixel).astype(np.int64).T
            layout = src.levels[0]
            inside = inside_image(layout, rows, cols)
            entries = in_record * len(bands) + bi
            samples.pixel[entries] = pixel
            samples.outside[entries[inside]] = False
            entries, rows, cols = entries[inside], rows[inside], cols[inside]
            for which, r, c, out, task in tile_reads(src, 0, rows, cols, fill=None):
                tasks.append(task)
                samples.pickers.append((entries[which], r, c, out))
    return samples, tasks


def points_table(
    col: Collection, aois: AOIs, samples: PointSamples, bands: list[str],
    per_band: dict[str, list[RasterSource]],
) -> pa.Table:
    """The result table of ``sample_points`` (see its docstring for the columns).

    Rows run as rasteret 0.4's: by record, then band, then point.
    """
    s = samples
    order = np.lexsort((s.point_index, s.band_index, s.record_index))
    p_i, r_i, b_i = s.point_index[order], s.record_index[order], s.band_index[order]
    values, outside = s.values[order], s.outside[order]
    times = np.asarray(col.datetimes, dtype="datetime64[us]")
    crs = np.asarray([src.crs for src in next(iter(per_band.values()))], dtype=object)
    nodata = np.array(
        [[np.nan if src.nodata is None else src.nodata for src in per_band[b]] for b in bands]
    )
    nod = nodata[b_i, r_i] if values.size else np.zeros(0)
    as_float = values.astype(np.float64)
    # NaN counts as nodata in float rasters, declared or not (as in masked reads).
    is_nodata = ~outside & ((as_float == nod) | np.isnan(as_float))
    xy = shapely.get_coordinates(aois.geometries)
    point_epsg, point_wkt = _crs_columns([aois.crs])
    raster_epsg, raster_wkt = _crs_columns(crs)
    zeros = pa.array(np.zeros(len(p_i), np.int64))
    rows = pa.array(r_i)
    # rasteret 0.4's columns first, with its names and types; then ours.
    columns: dict[str, Any] = {
        "point_index": pa.array(p_i.astype(np.int64)),
        "point_x": pa.array(xy[p_i, 0]),
        "point_y": pa.array(xy[p_i, 1]),
        "point_crs": point_epsg.take(zeros),
        "record_id": col.table.column("id").cast(pa.string()).take(rows),
        "datetime": pa.array(times[r_i], pa.timestamp("us")),
        "collection": pa.array(record_column(col, "collection", ""), pa.string()).take(rows),
        # String columns are taken from their few distinct values (no Python string per row).
        "band": pa.array(bands, pa.string()).take(pa.array(b_i)),
        "value": pa.array(as_float, mask=outside),
        "raster_crs": raster_epsg.take(rows),
        "point_crs_wkt": point_wkt.take(zeros),
        "raster_crs_wkt": raster_wkt.take(rows),
        "outside": pa.array(outside),
        "nodata": pa.array(is_nodata),
    }
    return pa.table(columns)


def record_column(col: Collection, name: str, missing: Any) -> list[Any]:
    """A column of the collection per record, ``missing`` where absent or null."""
    if name not in col.table.column_names:
        return [missing] * len(col)
    return [missing if v is None else v for v in col.table.column(name).to_pylist()]


def _crs_columns(crss: Iterable[Any]) -> tuple[pa.Array, pa.Array]:
    """Per CRS: its EPSG code (int32, rasteret's type), and its WKT where it has none."""
    seen: dict[Any, tuple[int | None, str | None]] = {}  # records share a few CRSs
    for c in crss:
        if c not in seen:
            code = epsg_code(c) if c is not None else None
            seen[c] = (code, as_crs(c).to_wkt() if c is not None and code is None else None)
    rows = [seen[c] for c in crss]
    return pa.array([r[0] for r in rows], pa.int32()), pa.array([r[1] for r in rows], pa.string())


# rasteret's coordinate column names, tried in order when none are given.
_XY_DEFAULTS = (("x", "y"), ("lon", "lat"), ("longitude", "latitude"), ("lng", "lat"))


def xy_points(
    points: Any, x_column: str | None, y_column: str | None, geometry_column: str | None
) -> tuple[Any, str | None]:
    """Points given as coordinate columns, as a table with a WKB point column.

    Returns ``(points, geometry_column)`` unchanged when the input is not a table
    of coordinates; otherwise the table (every column kept, as the user's
    attributes) plus a point column, and that column's name.
    """
    given = x_column is not None or y_column is not None
    if given and (x_column is None or y_column is None):
        raise ValueError(
            f"x_column={x_column!r}, y_column={y_column!r}: give both coordinate columns"
        )
    if geometry_column is not None and not given:
        return points, geometry_column
    table = _as_table(points)
    if table is None:
        if given:
            raise TypeError(
                "x_column/y_column take a table of points (pyarrow Table, pandas "
                f"DataFrame, any Arrow stream), not a {type(points).__name__}"
            )
        return points, geometry_column
    names = table.column_names
    if given:
        missing = [c for c in (x_column, y_column) if c not in names]
        if missing:
            raise ValueError(f"no point coordinate columns {missing}; the columns are {names}")
        pair = (x_column, y_column)
    elif "geometry" in names or any(
        (f.metadata or {}).get(b"ARROW:extension:name", b"").startswith(b"geoarrow")
        for f in table.schema
    ):
        return points, geometry_column
    else:
        found = [p for p in _XY_DEFAULTS if p[0] in names and p[1] in names]
        if not found:
            return points, geometry_column
        pair = found[0]
    x = table.column(pair[0]).cast(pa.float64()).to_numpy(zero_copy_only=False)
    y = table.column(pair[1]).cast(pa.float64()).to_numpy(zero_copy_only=False)
    name = "geometry" if "geometry" not in names else "__point__"
    return table.append_column(name, pa.array(shapely.to_wkb(shapely.points(x, y)))), name


def _as_table(points: Any) -> pa.Table | None:
    """``points`` as an Arrow table, if it is tabular and has no geometry of its own."""
    if isinstance(points, pa.Table):
        return points
    if type(points).__name__ == "GeoDataFrame":
        return None
    if type(points).__name__ == "DataFrame" and hasattr(points, "columns"):
        return pa.Table.from_pandas(points, preserve_index=False)
    if hasattr(points, "__arrow_c_stream__") and not isinstance(points, pa.Array | pa.ChunkedArray):
        return pa.table(points)
    return None
