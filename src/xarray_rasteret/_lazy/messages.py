"""Error messages of the engine that name the input, the problem and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..collection import Collection
from ..geo.crs import as_crs, authority_or_name
from ..geo.grid import RasterGrid

__all__ = ["grid_mismatch", "no_match", "pixel_size"]

_UNIT_LABELS = {"metre": "m", "meter": "m", "degree": "°", "US survey foot": "US ft", "foot": "ft"}


def _num(v: float) -> str:
    return f"{v:.10g}"


def _unit(crs: str | None) -> str:
    if crs is None:
        return " px"
    info = as_crs(crs).axis_info
    name = info[0].unit_name if info else ""
    label = _UNIT_LABELS.get(name, name)
    return label if label == "°" else f" {label}" if label else ""


def pixel_size(grid: RasterGrid) -> str:
    """``"20 m"`` or ``"10 x 20 m"``: the pixel size as people say it (no signs)."""
    x, y = (abs(v) for v in grid.resolution)
    unit = _unit(grid.crs)
    if np.isclose(x, y, rtol=1e-9):
        return f"{_num(x)}{unit}"
    return f"{_num(x)} x {_num(y)}{unit}"


def _crs_label(crs: str | None) -> str:
    return "no CRS" if crs is None else authority_or_name(crs)


def _phase(grid: RasterGrid) -> tuple[float, float]:
    """Where the pixel corners fall within a pixel (the lattice), rounded."""
    t = grid.transform
    return (round((t.c / t.a) % 1.0, 6) % 1.0, round((t.f / t.e) % 1.0, 6) % 1.0)


def grid_mismatch(
    what: str, grids: Sequence[RasterGrid], names: Sequence[str], epsg: Sequence[Any]
) -> str:
    """Why ``grids`` cannot share one output grid without resampling, and what to pass.

    Parameters
    ----------
    what
        What differs, e.g. ``"the records of band 'B04'"`` or ``"bands 'B04' and 'B11'"``.
    grids
        One per record or band.
    names
        Their labels (record ids or band names).
    epsg
        Their EPSG codes (None where unknown), for a ``filters=`` suggestion.
    """
    groups: dict[Any, list[int]] = {}
    for i, g in enumerate(grids):
        key = next((k for k in groups if grids[groups[k][0]].is_aligned_with(g)), None)
        groups.setdefault(key if key is not None else i, []).append(i)
    parts = []
    for members in list(groups.values())[:4]:
        g = grids[members[0]]
        shown = ", ".join(repr(names[i]) for i in members[:2])
        more = f" and {len(members) - 2} more" if len(members) > 2 else ""
        corner = f", corner at ({_num(g.transform.c)}, {_num(g.transform.f)})"
        parts.append(f"{shown}{more}: {_crs_label(g.crs)}, {pixel_size(g)} pixels{corner}")
    first = grids[0]
    finest = min(grids, key=lambda g: abs(g.resolution[0]))
    crs_label = _crs_label(first.crs)
    same_crs = len({_crs_label(g.crs) for g in grids}) == 1
    same_res = len({pixel_size(g) for g in grids}) == 1
    if same_crs and same_res:
        problem = "share CRS and pixel size but their pixel corners are offset (not on one lattice)"
    else:
        problem = "are on different pixel grids"
    fix = (
        f'pass a target grid to resample them onto one, e.g. crs="{crs_label}", '
        f"resolution={_num(abs(finest.resolution[0]))}"
    )
    codes = sorted({int(c) for c in epsg if c is not None})
    if not same_crs and codes:
        counts = {c: sum(1 for e in epsg if e == c) for c in codes}
        choices = " or ".join(
            f'filters={{"proj:epsg": {c}}} ({counts[c]} record(s))' for c in codes[:3]
        )
        fix += f"; or open the records of one CRS only: {choices}"
    elif not same_res:
        fix += "; or open the bands of one pixel size together (bands=[...])"
    return f"{what} {problem}: {'; '.join(parts)}. To open them, {fix}"


def _time_range(col: Collection) -> str:
    times = np.asarray(col.datetimes, dtype="datetime64[s]")
    valid = times[~np.isnat(times)]
    if valid.size == 0:
        return "its records have no time (NaT)"
    lo, hi = valid.min(), valid.max()
    undated = times.size - valid.size
    also = f" ({undated} more without time)" if undated else ""
    return f"its {len(col)} record(s) span {lo} to {hi}{also}"


def no_match(col: Collection, time: Any, filters: dict[str, Any] | None) -> str:
    """Why no record is left after ``time=``/``filters=``, with what the collection has."""
    given = []
    if time is not None:
        given.append(f"time={tuple(str(t) for t in time)!r}")
    if filters:
        given.append(f"filters={filters!r}")
    shown = []
    names = col.table.column_names
    for key in filters or {}:
        column = key
        for suffix in ("_lt", "_le", "_gt", "_ge"):
            if key.endswith(suffix) and key[: -len(suffix)] in names:
                column = key[: -len(suffix)]
        if column in names:
            values = sorted({v for v in col.table.column(column).to_pylist()}, key=repr)
            listed = ", ".join(repr(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
            shown.append(f"{column!r} has {listed}")
    have = "; ".join([_time_range(col), *shown])
    return (
        f"no record of the collection matches the selection {', '.join(given)}: {have}. "
        f"Widen time= or change filters= to values the collection has"
    )
