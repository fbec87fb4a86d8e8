"""Checks of user arguments at the entry points, before any I/O.

``open_dataset``, the helpers and ``build`` take the same spellings of bands, a
bbox, a time range and concurrency; each is checked and normalized here once, so
that a slip (three bbox values, ``bands=[]``, ``max_concurrent=0``, projected
coordinates under the default ``bbox_crs``) fails at the call with a message
naming the argument, the value and the fix, instead of hanging, selecting
nothing or failing deep inside a read.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import numpy as np

__all__ = [
    "bbox_crs_of",
    "checked_bands",
    "checked_bbox",
    "checked_max_concurrent",
    "checked_resolution",
    "checked_time",
]

_TIME_SCALARS = (str, datetime, date, np.datetime64)


def checked_max_concurrent(value: Any, name: str = "max_concurrent") -> int:
    """``value`` as the number of requests in flight at once (an integer >= 1).

    Zero would wait forever for a slot, and a float or a bool is a slip.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(
            f"{name}={value!r}: it must be an integer >= 1 (the most byte-range requests "
            "in flight at once); the default, 64, suits most stores"
        )
    return int(value)


def checked_bands(bands: Any) -> tuple[str, ...] | None:
    """The band names asked for (None: every band); one name may be a plain string.

    Raises
    ------
    ValueError
        For an empty selection or a name given twice.
    TypeError
        For names that are not strings.
    """
    if bands is None:
        return None
    if isinstance(bands, str):
        return (bands,)
    if not isinstance(bands, Iterable):
        raise TypeError(
            f"bands={bands!r}: expected a band name or a list of band names, "
            "e.g. bands=['B04', 'B08']"
        )
    names = tuple(bands)
    if not names:
        raise ValueError(
            "bands=[] selects no band: pass bands=None (the default) for every band, "
            "or the names of the bands to read"
        )
    wrong = [b for b in names if not isinstance(b, str)]
    if wrong:
        raise TypeError(
            f"bands={list(names)!r}: band names are strings, but {wrong[0]!r} is a "
            f"{type(wrong[0]).__name__}; a GeoTIFF's samples are named 'band_1', 'band_2', ..."
        )
    twice = sorted({b for b in names if names.count(b) > 1})
    if twice:
        raise ValueError(f"bands={list(names)!r} names {twice} more than once; list each once")
    return names


def bbox_crs_of(bbox: Any, bbox_crs: Any, default: Any = "EPSG:4326") -> Any:
    """The CRS of ``bbox``: a GeoSeries'/GeoDataFrame's own where ``bbox_crs`` is left default.

    Raises
    ------
    ValueError
        If both are given and differ.
    """
    own = getattr(bbox, "crs", None) if hasattr(bbox, "total_bounds") else None
    if own is None:
        return bbox_crs
    from .geo.crs import as_crs, crs_label

    label = crs_label(own)
    if bbox_crs != default and as_crs(bbox_crs) != as_crs(own):
        raise ValueError(
            f"bbox is in {label} but bbox_crs={bbox_crs!r}: give one of them (the "
            "geometries' CRS is used when bbox_crs is left out)"
        )
    return label


def checked_bbox(bbox: Any, bbox_crs: Any) -> tuple[float, float, float, float] | None:
    """``bbox`` as four finite floats ``(xmin, ymin, xmax, ymax)``, in ``bbox_crs``.

    A shapely geometry or a GeoJSON geometry stands for its extent (odc-stac's
    ``geopolygon``). A wrong count, an inverted box and projected coordinates under
    a geographic ``bbox_crs`` (the default is longitude/latitude) are refused.
    """
    if bbox is None:
        return None
    if hasattr(bbox, "total_bounds"):  # a GeoSeries or GeoDataFrame: its extent
        if len(bbox) == 0:
            raise ValueError("bbox= is an empty GeoSeries/GeoDataFrame: it selects nothing")
        bbox = tuple(float(v) for v in bbox.total_bounds)
    if isinstance(bbox, dict) and "coordinates" in bbox:  # GeoJSON geometry
        import shapely.geometry

        bbox = shapely.geometry.shape(bbox)
    if hasattr(bbox, "geom_type") and hasattr(bbox, "bounds"):
        # odc-stac's geopolygon: the area of interest is the geometry's extent (pixels
        # are not masked by its shape: the helpers' geometries= do that).
        if bbox.is_empty:
            raise ValueError(f"bbox= is an empty {bbox.geom_type}: it selects nothing")
        bbox = bbox.bounds
    if isinstance(bbox, str) or not isinstance(bbox, Iterable):
        raise TypeError(f"bbox={bbox!r}: expected four numbers (xmin, ymin, xmax, ymax)")
    values = list(bbox)
    if len(values) != 4:
        raise ValueError(
            f"bbox={values!r} has {len(values)} values; expected 4: (xmin, ymin, xmax, ymax)"
        )
    try:
        x0, y0, x1, y1 = (float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"bbox={values!r}: its values must be numbers") from exc
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError(f"bbox={values!r}: its values must be finite")
    if x0 > x1 or y0 > y1:
        axis = "xmin > xmax" if x0 > x1 else "ymin > ymax"
        raise ValueError(
            f"bbox={values!r} is inverted ({axis}): the order is (xmin, ymin, xmax, ymax), "
            "as shapely's and rasterio's bounds; a box across the antimeridian must be "
            "split into two"
        )
    _check_geographic_range((x0, y0, x1, y1), bbox_crs)
    return x0, y0, x1, y1


def _check_geographic_range(bbox: tuple[float, float, float, float], bbox_crs: Any) -> None:
    """Projected coordinates given as longitude/latitude are the common slip."""
    from .geo.crs import as_crs

    crs = as_crs(bbox_crs)
    if not crs.is_geographic:
        return
    x0, y0, x1, y1 = bbox
    if -360 <= x0 and x1 <= 360 and -90 <= y0 and y1 <= 90:
        return
    raise ValueError(
        f"bbox={list(bbox)!r} is not longitude/latitude, but bbox_crs={bbox_crs!r} is "
        "geographic (it is EPSG:4326 unless given): pass bbox_crs= the CRS of these "
        "coordinates, e.g. bbox_crs='EPSG:32633' for UTM zone 33N"
    )


def checked_time(time: Any) -> tuple[Any, Any] | None:
    """``time`` as an inclusive ``(start, end)``; either may be None (open).

    Accepts a pair, a ``slice(start, end)`` (xarray's ``.sel`` spelling) and one
    value, meaning its whole period (``"2024-06"``: June 2024).
    """
    if time is None:
        return None
    if isinstance(time, slice):
        if time.step is not None:
            raise ValueError(f"time={time!r}: a time slice takes no step; use slice(start, end)")
        return time.start, time.stop
    if isinstance(time, _TIME_SCALARS):
        return time, time
    if isinstance(time, tuple | list) and len(time) == 2:
        return time[0], time[1]
    raise ValueError(
        f"time={time!r}: expected (start, end), slice(start, end) or one period such as "
        "'2024-06'; start and end are inclusive and may be None"
    )


def checked_resolution(
    resolution: Any, crs: Any = None
) -> float | tuple[float, float] | None:
    """``resolution`` as a positive pixel size, one number or ``(x, y)``.

    Warns when the target CRS is geographic and the size is over a degree, the
    usual sign of metres meant in a CRS whose unit is the degree.
    """
    if resolution is None:
        return None
    pair = isinstance(resolution, tuple | list)
    values = list(resolution) if pair else [resolution]
    if len(values) not in (1, 2) or not all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values
    ):
        raise TypeError(
            f"resolution={resolution!r}: expected a pixel size in the target CRS's units, "
            "one number or (x, y)"
        )
    sizes = [float(v) for v in values]
    if not all(math.isfinite(v) and v > 0 for v in sizes):
        raise ValueError(
            f"resolution={resolution!r}: pixel sizes must be positive and finite "
            "(the north-up y flip is implied)"
        )
    if crs is not None and max(sizes) > 1:
        from .geo.crs import as_crs

        target = as_crs(crs)
        if target.is_geographic:
            warnings.warn(
                f"resolution={resolution!r} in {target.name} (a geographic CRS) is "
                f"{max(sizes):g} degrees per pixel; for metres, give a projected crs= "
                "(e.g. the records' UTM zone) or the size in degrees",
                UserWarning,
                stacklevel=3,
            )
    if pair and len(sizes) == 2:
        return sizes[0], sizes[1]
    return sizes[0]
