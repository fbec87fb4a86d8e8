"""Which records form one output time step of a grouped open, and in what order.

``groupby=`` gives the groups: ``"solar_day"`` (odc-stac's local solar day), an
ISO 8601 period (:mod:`.periods`) or a column; ``sortby=`` orders each group's
members, which is the mosaic order (``method="first"``: the first valid wins).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..collection import Collection
from .periods import is_period, period_starts

__all__ = ["group_keys", "group_steps", "solar_day"]


def solar_day(datetimes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    """Local solar day of each acquisition, as odc-stac computes it.

    The UTC time is shifted by the longitude of the footprint's centroid
    (4 minutes per degree) and truncated to the day.

    Parameters
    ----------
    datetimes
        UTC times, ``datetime64``.
    longitudes
        Centroid longitudes in degrees (east positive).

    Returns
    -------
    numpy.ndarray
        ``datetime64[D]``.

    Examples
    --------
    >>> t = np.array(["2024-05-03T23:30"], dtype="datetime64[ns]")
    >>> solar_day(t, np.array([15.0]))
    array(['2024-05-04'], dtype='datetime64[D]')
    """
    shift = np.round(np.asarray(longitudes, dtype=np.float64) * 240.0 * 1e9).astype(np.int64)
    local = np.asarray(datetimes, dtype="datetime64[ns]") + shift.astype("timedelta64[ns]")
    return local.astype("datetime64[D]")


def group_keys(col: Collection, groupby: str) -> list[Any]:
    if groupby == "solar_day":
        import shapely

        geoms = col.geometries
        lons = np.array(
            [np.nan if g is None else shapely.centroid(g).x for g in geoms], dtype=np.float64
        )
        if np.isnan(lons).any():
            bad = [rid for rid, v in zip(col.ids, lons, strict=True) if np.isnan(v)][:3]
            raise ValueError(
                f"groupby='solar_day' needs each record's footprint; records {bad} have none"
            )
        return list(solar_day(col.datetimes, lons))
    if is_period(groupby):
        return list(period_starts(col.datetimes, groupby, col.ids))
    if groupby not in col.table.column_names:
        raise ValueError(
            f"groupby={groupby!r} is neither 'solar_day' nor a column of the collection; "
            f"its columns are {col.table.column_names}"
        )
    return list(col.table.column(groupby).to_pylist())


def group_steps(
    col: Collection, groupby: str | None, sortby: str | None = None
) -> list[list[int]]:
    """Record indices per output time step, each step in mosaic order.

    Without ``groupby`` each record is its own step (rows are already sorted by
    time). With it, records sharing a key form one step, steps in the order of
    their first record's time; within a step the order is by ``sortby`` (a
    column, ``-column`` descending; nulls last), then datetime, then id.
    """
    n = len(col)
    if groupby is None:
        if sortby is not None:
            raise ValueError(f"sortby={sortby!r} orders the records of a group: pass groupby=")
        return [[i] for i in range(n)]
    keys = group_keys(col, groupby)
    times = np.asarray(col.datetimes, dtype="datetime64[ns]")
    ids = col.ids
    order = sorted(range(n), key=lambda i: (times[i], ids[i]))
    groups: dict[Any, list[int]] = {}
    for i in order:
        groups.setdefault(keys[i], []).append(i)
    steps = list(groups.values())
    if sortby is not None:
        rank = _sort_rank(col, sortby)
        steps = [sorted(step, key=lambda i: rank[i]) for step in steps]  # stable: time, id
    return steps


def _sort_rank(col: Collection, sortby: str) -> np.ndarray:
    """Each record's place in ``sortby``'s order (``-name``: descending; nulls last)."""
    name = sortby[1:] if isinstance(sortby, str) and sortby.startswith("-") else sortby
    if not isinstance(name, str) or name not in col.table.column_names:
        raise ValueError(
            f"sortby={sortby!r} is not a column of the collection (prefix '-' to sort "
            f"descending); its columns are {col.table.column_names}"
        )
    import pyarrow as pa
    import pyarrow.compute as pc

    order = "descending" if sortby.startswith("-") else "ascending"
    column = pa.table({"key": col.table.column(name)})
    indices = pc.sort_indices(column, sort_keys=[("key", order, "at_end")]).to_numpy()
    rank = np.empty(len(indices), dtype=np.int64)
    rank[indices] = np.arange(len(indices))
    return rank
