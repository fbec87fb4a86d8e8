"""Filters of a collection: criteria, their row masks, and row-group pruning.

One set of criteria applies two ways: to a table in memory (:func:`table_mask`)
and to a lazy :class:`~.scan.Scan` (:func:`select`), which first drops the row
groups whose statistics rule them out, reads the light columns (time, the
``bbox`` covering column, compared columns) of the others, and tests the exact
footprints of the bbox candidates only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from affine import Affine

from ..geo.footprint import footprint_crs84, is_crs84
from .scan import Scan

__all__ = ["Criteria", "criteria", "datetimes_of", "select", "table_mask", "time_bound"]

SUBSET_OPTIONS = ("cloud_cover_lt", "date_range", "geometries", "split_column")
_CMP = {"_lt": pc.less, "_le": pc.less_equal, "_gt": pc.greater, "_ge": pc.greater_equal}
_BBOX_KEYS = ("xmin", "ymin", "xmax", "ymax")


@dataclass
class Criteria:
    """What :meth:`Collection.filter` asks for, parsed and checked against the columns."""

    area: Any = None
    """The bbox as a shapely polygon in OGC:CRS84 (None: no footprint test)."""
    times: list[tuple[np.datetime64 | None, np.datetime64 | None]] = field(default_factory=list)
    """Inclusive ``(start, end)`` ranges in ns, UTC, all to hold."""
    compares: list[tuple[str, str, Any]] = field(default_factory=list)
    """``(column, op, value)``: op one of ``_lt _le _gt _ge eq in``."""


def time_bound(value: Any, *, end: bool) -> np.datetime64:
    """A time bound in ns UTC; a date-only end (``2024-03``) covers its whole period."""
    import pandas as pd

    if isinstance(value, str) and "T" not in value and len(value.strip()) <= 10:
        period = pd.Period(value.strip())
        ts = period.end_time if end else period.start_time
    else:
        ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.to_datetime64(), "ns")


def _time_range(time: Any) -> tuple[np.datetime64 | None, np.datetime64 | None]:
    start, end = time if isinstance(time, tuple | list) else (time, time)
    return (
        None if start is None else time_bound(start, end=False),
        None if end is None else time_bound(end, end=True),
    )


def criteria(
    names: Sequence[str],
    bbox: Sequence[float] | None,
    bbox_crs: str,
    time: Any,
    equals: dict[str, Any],
) -> Criteria:
    """Parse :meth:`Collection.filter`'s arguments (rasteret's names already resolved)."""
    import shapely

    crit = Criteria()
    equals = dict(equals)
    when = equals.get("datetime")
    if isinstance(when, tuple) and len(when) == 2:  # datetime=(start, end) means time=
        del equals["datetime"]
        crit.times.append(_time_range(when))
    if bbox is not None:
        x0, y0, x1, y1 = (float(v) for v in bbox)
        crit.area = shapely.box(x0, y0, x1, y1)
        if not is_crs84(bbox_crs):
            crit.area = footprint_crs84(Affine(x1 - x0, 0, x0, 0, y1 - y0, y0), 1, 1, bbox_crs)
    if time is not None:
        crit.times.append(_time_range(time))
    for key, value in equals.items():
        op = "eq"
        column = key
        if key not in names and key[-3:] in _CMP and key[:-3] in names:
            column, op = key[:-3], key[-3:]
        if column not in names:
            raise ValueError(
                f"unsupported option or unknown column {key!r} in filter; the options are "
                f"bbox, bbox_crs, time, datetime, {', '.join(SUBSET_OPTIONS)}, and "
                f"column filters on the columns {list(names)} (suffix _lt/_le/_gt/_ge to compare)"
            )
        if op == "eq" and isinstance(value, list | tuple | set | frozenset):  # any of
            op, value = "in", list(value)
        crit.compares.append((column, op, value))
    return crit


def datetimes_of(table: pa.Table) -> np.ndarray:
    """The ``datetime`` column as ``datetime64[ns]`` (UTC, tz-naive); NaT where unknown."""
    if "datetime" not in table.column_names:
        return np.full(table.num_rows, np.datetime64("NaT"), "datetime64[ns]")
    col = table.column("datetime")
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    tz = col.type.tz if pa.types.is_timestamp(col.type) else None
    col = pc.cast(col, pa.timestamp("ns", tz=tz))  # values are UTC either way
    return np.asarray(col.to_numpy(zero_copy_only=False), "datetime64[ns]")


def _bbox_struct(schema: pa.Schema) -> bool:
    if "bbox" not in schema.names:
        return False
    t = schema.field("bbox").type
    return pa.types.is_struct(t) and set(_BBOX_KEYS) <= set(t.names)


def table_mask(
    table: pa.Table, crit: Criteria, geometries: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Rows of ``table`` matching ``crit``; ``geometries(rows)`` gives those rows' footprints.

    With a ``bbox`` covering column, only the rows whose bbox meets the area have
    their footprint decoded and tested.
    """
    import shapely

    mask = np.ones(table.num_rows, bool)
    if crit.times:
        t = datetimes_of(table)
        mask &= ~np.isnat(t)
        for start, end in crit.times:
            if start is not None:
                mask &= t >= start
            if end is not None:
                mask &= t <= end
    for column, op, value in crit.compares:
        col = table.column(column)
        if op == "in":
            res = pc.is_in(col, value_set=pa.array(value))
        elif op == "eq":
            res = pc.equal(col, value)
        else:
            res = _CMP[op](col, value)
        mask &= np.asarray(res.fill_null(False).to_numpy(zero_copy_only=False), bool)
    if crit.area is not None:
        if _bbox_struct(table.schema):
            mask &= _bbox_overlaps(table.column("bbox"), crit.area.bounds)
        rows = np.flatnonzero(mask)
        if len(rows):
            hit = np.asarray(shapely.intersects(geometries(rows), crit.area), bool)
            mask[rows[~hit]] = False
    return mask


def _bbox_overlaps(bbox: pa.ChunkedArray, bounds: tuple[float, ...]) -> np.ndarray:
    qx0, qy0, qx1, qy1 = bounds

    def coord(name: str) -> np.ndarray:
        col = pc.cast(pc.struct_field(bbox, name), pa.float64())
        return np.asarray(col.fill_null(np.nan).to_numpy(zero_copy_only=False), np.float64)

    with np.errstate(invalid="ignore"):  # a null bbox (no footprint) meets nothing
        return (
            (coord("xmin") <= qx1) & (coord("xmax") >= qx0)
            & (coord("ymin") <= qy1) & (coord("ymax") >= qy0)
        )  # fmt: skip


# ---------------------------------------------------------------------------
# Lazy: row groups, then light columns, then exact footprints
# ---------------------------------------------------------------------------


def _may_hold(scan: Scan, p: int, g: int, crit: Criteria, bbox_ok: bool) -> bool:
    """False only if row group ``g`` of part ``p`` surely holds no matching row."""
    part = scan.parts[p]
    if crit.times:
        s = part.stats(g, "datetime")
        typ = part.schema.field("datetime").type if "datetime" in part.schema.names else None
        raw = _raw_range(s) if typ is not None and pa.types.is_timestamp(typ) else None
        if raw is not None and typ is not None:
            lo, hi = raw
            unit = f"datetime64[{typ.unit}]"  # bounds floored to the column's unit
            for start, end in crit.times:
                if start is not None and hi < start.astype(unit).astype(np.int64):
                    return False
                if end is not None and lo > end.astype(unit).astype(np.int64):
                    return False
    if crit.area is not None and bbox_ok:
        qx0, qy0, qx1, qy1 = crit.area.bounds
        got = {k: part.stats(g, f"bbox.{k}") for k in _BBOX_KEYS}
        if all(v is not None for v in got.values()):
            if got["xmin"].min > qx1 or got["xmax"].max < qx0:
                return False
            if got["ymin"].min > qy1 or got["ymax"].max < qy0:
                return False
    for column, op, value in crit.compares:
        s = part.stats(g, column)
        if s is None:
            continue
        try:
            if not _range_may_hold(s.min, s.max, op, value):
                return False
        except Exception:  # noqa: BLE001 - stats a comparison cannot use only keep the group
            continue
    return True


def _raw_range(stats: Any) -> tuple[int, int] | None:
    """A timestamp column's (min, max) in its unit; None for INT96 (older writers) or none."""
    if stats is None:
        return None
    lo, hi = stats.min_raw, stats.max_raw
    if not isinstance(lo, int) or not isinstance(hi, int):
        return None
    return lo, hi


def _range_may_hold(lo: Any, hi: Any, op: str, value: Any) -> bool:
    if op == "_lt":
        return bool(lo < value)
    if op == "_le":
        return bool(lo <= value)
    if op == "_gt":
        return bool(hi > value)
    if op == "_ge":
        return bool(hi >= value)
    values = value if op == "in" else [value]
    return any(v is not None and lo <= v <= hi for v in values)


def _part_may_hold(part: Any, crit: Criteria) -> bool:
    """False only if a file's hive keys rule it out: it is then never opened."""
    if not part.partition:
        return True
    span = part.period()
    for start, end in crit.times if span is not None else []:
        if (start is not None and span[1] < start) or (end is not None and span[0] > end):
            return False
    for column, op, value in crit.compares:
        v = part.partition.get(column)
        if v is None:
            continue
        try:
            if not _range_may_hold(v, v, op, value):
                return False
        except Exception:  # noqa: BLE001 - a value a comparison cannot use only keeps the file
            continue
    return True


def select(scan: Scan, crit: Criteria) -> Scan:
    """The rows of ``scan`` matching ``crit``, as a new scan (only light columns read)."""
    import shapely

    bbox_ok = _bbox_struct(scan.schema)
    live = [p for p, part in enumerate(scan.parts) if _part_may_hold(part, crit)]
    groups = [(p, g) for p, g in scan.groups(live) if _may_hold(scan, p, g, crit, bbox_ok)]
    index = scan.full_index(groups)
    columns = ["datetime"] if crit.times and "datetime" in scan.names else []
    if crit.area is not None and bbox_ok:
        columns.append("bbox")
    columns += [c for c, _, _ in crit.compares if c not in columns]
    if columns:
        light = scan.read(columns, index)
    else:
        light = pa.table({"_": pa.nulls(len(index[0]))})

    def footprints(rows: np.ndarray) -> np.ndarray:
        if "geometry" not in scan.names:
            return np.full(len(rows), None, dtype=object)
        col = scan.read(["geometry"], tuple(a[rows] for a in index)).column("geometry")
        col = col.combine_chunks()
        if isinstance(col.type, pa.ExtensionType):
            col = col.storage
        return shapely.from_wkb(col.to_numpy(zero_copy_only=False))

    mask = table_mask(light, crit, footprints)
    part, group, row = index
    return scan.with_index((part[mask], group[mask], row[mask]))
