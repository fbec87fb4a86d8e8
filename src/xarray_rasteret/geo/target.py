"""The common output grid of a read: CRS, resolution, extent and pixel alignment.

A target grid is always a :class:`~xarray_rasteret.geo.grid.RasterGrid`
(north-up, square or rectangular pixels). It is given to ``open_dataset`` as
plain keywords, ``crs=``, ``resolution=``, ``bbox=``/``bbox_crs=`` and
``align=``, and built here by :func:`target_grid`:

* pixel edges lie on ``align + k * resolution`` (default ``align=(0, 0)``,
  GDAL's ``-tap``: edges at whole multiples of the resolution, as odc-stac
  snaps its grids), so two reads of neighbouring areas with the same options
  line up pixel for pixel;
* the extent is the requested bounds snapped outwards to that lattice;
* with ``crs=`` alone (no resolution, alignment or bbox) the grid is GDAL's own
  suggestion instead (:func:`suggested_grid`: ``gdalwarp -t_srs`` and
  ``rasterio.warp.calculate_default_transform`` give the same), so that a plain
  reprojection lands on the pixels GDAL would warp to;
* missing parts are filled from the records (:func:`default_crs`,
  :func:`default_resolution`, :func:`records_bounds`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import shapely
from affine import Affine

from .aoi import bounds_in_crs
from .crs import as_crs, transformer
from .grid import RasterGrid, same_crs

__all__ = [
    "as_resolution",
    "default_crs",
    "default_resolution",
    "grid_bounds_in",
    "records_bounds",
    "suggested_grid",
    "target_grid",
]

# Bounds within this fraction of a pixel of a lattice line snap onto it (float noise).
_SNAP_EPS = 1e-6


def as_resolution(resolution: float | Sequence[float]) -> tuple[float, float]:
    """Normalise ``resolution`` to positive ``(x size, y size)`` in CRS units.

    Parameters
    ----------
    resolution
        One pixel size for both axes, or ``(x size, y size)``; the sign is
        ignored (grids are north-up).

    Returns
    -------
    tuple of float

    Raises
    ------
    ValueError
        If a size is zero or not finite.

    Examples
    --------
    >>> as_resolution(10)
    (10.0, 10.0)
    >>> as_resolution((20, -20))
    (20.0, 20.0)
    """
    if isinstance(resolution, (int, float)):
        rx = ry = float(resolution)
    else:
        values = [float(v) for v in resolution]
        if len(values) != 2:
            raise ValueError(f"resolution must be a number or (x, y); got {resolution!r}")
        rx, ry = values
    rx, ry = abs(rx), abs(ry)
    if not (math.isfinite(rx) and math.isfinite(ry) and rx > 0 and ry > 0):
        raise ValueError(f"resolution must be positive and finite; got {resolution!r}")
    return rx, ry


def _snap_down(v: float, origin: float, step: float) -> float:
    return origin + math.floor((v - origin) / step + _SNAP_EPS) * step


def _snap_up(v: float, origin: float, step: float) -> float:
    return origin + math.ceil((v - origin) / step - _SNAP_EPS) * step


MAX_GRID_SIDE = 2**26
"""Largest target grid side in pixels (67M: the Earth's circumference at 0.6 m); a
larger one is a resolution slip, whose coordinates alone would not fit in memory."""


def target_grid(
    crs: Any,
    resolution: float | Sequence[float],
    bounds: tuple[float, float, float, float],
    *,
    align: tuple[float, float] | None = None,
) -> RasterGrid:
    """The north-up grid of ``resolution`` covering ``bounds`` in ``crs``.

    Parameters
    ----------
    crs
        Target CRS (anything :class:`pyproj.CRS` accepts).
    resolution
        Pixel size in CRS units, one number or ``(x, y)``.
    bounds
        ``(xmin, ymin, xmax, ymax)`` in ``crs`` to cover; snapped outwards.
    align
        A point ``(x, y)`` in ``crs`` that lies on a pixel corner. Default
        ``(0, 0)``: pixel edges at whole multiples of the resolution.

    Returns
    -------
    RasterGrid
        CRS as WKT, at least one pixel in each direction.

    Examples
    --------
    >>> g = target_grid("EPSG:32633", 20, (500_005.0, 4_999_990.0, 500_101.0, 5_000_041.0))
    >>> g.transform.c, g.transform.f, g.width, g.height
    (500000.0, 5000060.0, 6, 4)
    """
    rx, ry = as_resolution(resolution)
    ax, ay = (0.0, 0.0) if align is None else (float(align[0]), float(align[1]))
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)) or xmin > xmax or ymin > ymax:
        raise ValueError(f"bounds {bounds} are not (xmin, ymin, xmax, ymax) with finite values")
    x0, x1 = _snap_down(xmin, ax, rx), _snap_up(xmax, ax, rx)
    y0, y1 = _snap_down(ymin, ay, ry), _snap_up(ymax, ay, ry)
    width = max(1, round((x1 - x0) / rx))
    height = max(1, round((y1 - y0) / ry))
    if max(width, height) > MAX_GRID_SIDE:
        raise ValueError(
            f"resolution {rx:g} x {ry:g} over {xmax - xmin:g} x {ymax - ymin:g} CRS units asks "
            f"for a {width} x {height} grid (its coordinates alone would take "
            f"{8 * (width + height) / 2**30:.1f} GiB); pass a coarser resolution= or a smaller "
            f"bbox= (at most {MAX_GRID_SIDE} pixels a side)"
        )
    wkt = as_crs(crs).to_wkt()
    return RasterGrid(wkt, Affine(rx, 0.0, x0, 0.0, -ry, y1), width, height)


def suggested_grid(
    crs: Any, resolution: tuple[float, float], bounds: tuple[float, float, float, float]
) -> RasterGrid:
    """GDAL's suggested output grid (``GDALSuggestedWarpOutput2``) over ``bounds``.

    Its origin is the bounds' top-left corner, unsnapped, and its size the
    extent over the resolution rounded half up, as GDAL computes both.

    Parameters
    ----------
    crs
        Target CRS.
    resolution
        ``(x, y)`` pixel size (:func:`default_resolution`).
    bounds
        The records' extent in ``crs`` (:func:`records_bounds`).

    Returns
    -------
    RasterGrid

    Examples
    --------
    >>> bounds = (500_005.0, 4_999_990.0, 500_101.0, 5_000_041.0)
    >>> g = suggested_grid("EPSG:32633", (20.0, 20.0), bounds)
    >>> g.transform.c, g.transform.f, g.width, g.height
    (500005.0, 5000041.0, 5, 3)
    """
    rx, ry = resolution
    xmin, ymin, xmax, ymax = bounds
    width = max(1, int((xmax - xmin) / rx + 0.5))
    height = max(1, int((ymax - ymin) / ry + 0.5))
    return RasterGrid(as_crs(crs).to_wkt(), Affine(rx, 0.0, xmin, 0.0, -ry, ymax), width, height)


def default_crs(crss: Sequence[str | None]) -> str:
    """The most common CRS of the records (ties: the first seen).

    Parameters
    ----------
    crss
        Each record's CRS.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If no record has a CRS.
    """
    known = [c for c in crss if c is not None]
    if not known:
        raise ValueError("no record has a CRS: a target grid needs crs=...")
    groups: list[str] = []
    counts: Counter[int] = Counter()
    for c in known:
        for i, g in enumerate(groups):
            if same_crs(c, g):
                counts[i] += 1
                break
        else:
            groups.append(c)
            counts[len(groups) - 1] += 1
    best = max(range(len(groups)), key=lambda i: (counts[i], -i))
    return groups[best]


@lru_cache(maxsize=1024)
def grid_bounds_in(grid: RasterGrid, crs: str | None) -> tuple[float, float, float, float]:
    """Bounds of ``grid``'s extent in ``crs`` (WKT or code), on its densified outline.

    Cached: the records of a time series share their grid.
    """
    if same_crs(grid.crs, crs):
        return grid.bounds
    return bounds_in_crs(shapely.box(*grid.bounds), grid.crs, crs)


def default_resolution(grids: Sequence[RasterGrid], crs: Any) -> tuple[float, float]:
    """The finest resolution the records have, expressed in ``crs``.

    Records already in ``crs`` contribute their pixel size. Others contribute
    GDAL's suggestion (``GDALSuggestedWarpOutput2``, which
    ``rasterio.warp.calculate_default_transform`` and ``gdalwarp`` use): the
    distance between the image's top-left and bottom-right corners in ``crs``
    over its diagonal in pixels, giving square pixels.

    Parameters
    ----------
    grids
        Full-resolution grids of the records (and bands) to cover.
    crs
        Target CRS.

    Returns
    -------
    tuple of float
        ``(x size, y size)``, positive.
    """
    best: tuple[float, float] | None = None
    target = crs if isinstance(crs, str) else _wkt(crs)
    for g in grids:
        res = _resolution_in(g, target)
        if best is None or res[0] * res[1] < best[0] * best[1]:
            best = res
    if best is None:
        raise ValueError("no grid to take a resolution from")
    return best


@lru_cache(maxsize=1024)
def _resolution_in(grid: RasterGrid, crs: str) -> tuple[float, float]:
    """One grid's part of :func:`default_resolution` (the same records recur per AOI)."""
    if same_crs(grid.crs, crs):
        return (abs(grid.transform.a), abs(grid.transform.e))
    t = grid.transform
    (x0, y0), (x1, y1) = t @ (0, 0), t @ (grid.width, grid.height)
    xs, ys = transformer(grid.crs, crs).transform([x0, x1], [y0, y1])
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    if dx == 0 or dy == 0 or not math.isfinite(dx) or not math.isfinite(dy):
        # GDAL's fallback where the corners' offset is degenerate (#5980): the extent.
        xmin, ymin, xmax, ymax = grid_bounds_in(grid, crs)
        dx, dy = xmax - xmin, ymax - ymin
    size = math.hypot(dx, dy) / math.hypot(grid.width, grid.height)
    return (size, size)


def records_bounds(grids: Sequence[RasterGrid], crs: Any) -> tuple[float, float, float, float]:
    """The union of the records' extents in ``crs`` (each outline densified).

    Parameters
    ----------
    grids
        Grids of the records.
    crs
        Target CRS.

    Returns
    -------
    tuple of float
        ``(xmin, ymin, xmax, ymax)``.
    """
    target = crs if isinstance(crs, str) else _wkt(crs)
    boxes = [grid_bounds_in(g, target) for g in grids]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _wkt(crs: Any) -> str:
    return str(as_crs(crs).to_wkt())


# -- grids given as a GeoBox or as an xarray object (``geobox=``, ``like=``) -----------


def _spelled_out(crs: Any, transform: Affine, width: int, height: int, what: str) -> dict[str, Any]:
    """The ``crs=``/``resolution=``/``bbox=``/``bbox_crs=``/``align=`` of a north-up grid."""
    if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
        raise ValueError(
            f"{what} has the transform {tuple(transform)[:6]}, which is not north-up "
            f"(rotated, or rows running south to north); target grids are north-up: pass "
            f"crs=, resolution= and bbox= instead"
        )
    rx, ry = float(transform.a), float(-transform.e)
    x0, y1 = float(transform.c), float(transform.f)
    bounds = (x0, y1 - ry * height, x0 + rx * width, y1)
    return {"crs": crs, "resolution": (rx, ry), "bbox": bounds, "bbox_crs": crs,
            "align": (x0, y1)}


def geobox_grid(geobox: Any) -> dict[str, Any]:
    """The target-grid keywords equal to an odc-geo ``GeoBox``.

    Parameters
    ----------
    geobox
        An ``odc.geo.geobox.GeoBox`` (anything with ``crs``, ``affine``,
        ``width`` and ``height``).

    Returns
    -------
    dict
        ``crs``, ``resolution``, ``bbox``, ``bbox_crs`` and ``align``: the grid
        that :func:`target_grid` builds from them is the GeoBox's, pixel for pixel.
    """
    missing = [a for a in ("crs", "affine", "width", "height") if not hasattr(geobox, a)]
    if missing:
        raise TypeError(
            f"geobox={type(geobox).__name__}: expected an odc.geo GeoBox (it lacks "
            f"{', '.join(missing)}); for an xarray object pass like= instead"
        )
    if geobox.crs is None:
        raise ValueError("geobox= has no CRS; give it one (GeoBox(..., crs=...))")
    crs = as_crs(str(geobox.crs) if len(str(geobox.crs)) < 40 else geobox.crs.to_wkt())
    code = crs.to_authority()
    crs_out = f"{code[0]}:{code[1]}" if code else crs.to_wkt()
    return _spelled_out(crs_out, Affine(*tuple(geobox.affine)[:6]), int(geobox.width),
                        int(geobox.height), "geobox=")


_X_NAMES = ("x", "longitude", "lon")
_Y_NAMES = ("y", "latitude", "lat")


def _like_crs(obj: Any) -> Any:
    names = [obj.attrs.get("grid_mapping")] if hasattr(obj, "attrs") else []
    if hasattr(obj, "data_vars"):
        names += [v.attrs.get("grid_mapping") for v in obj.data_vars.values()]
    for name in [*names, "spatial_ref", "crs"]:
        if name and name in obj.coords:
            attrs = obj.coords[name].attrs
            for key in ("crs_wkt", "spatial_ref"):
                if attrs.get(key):
                    return attrs[key]
    raise ValueError(
        "like= has no CRS: no grid-mapping coordinate (spatial_ref) with crs_wkt/spatial_ref "
        "attrs; write one (rioxarray: obj.rio.write_crs(...); odc-geo: obj.odc.assign_crs(...)) "
        "or pass crs=, resolution= and bbox="
    )


def _axis(obj: Any, names: Sequence[str], which: str) -> Any:
    for name in names:
        if name in obj.dims and name in obj.coords and obj.coords[name].ndim == 1:
            return obj.coords[name].values
    raise ValueError(
        f"like= has no 1-D {which} coordinate (looked for {', '.join(names)}): pass an object "
        f"on a regular grid, or crs=, resolution= and bbox="
    )


def like_grid(obj: Any) -> dict[str, Any]:
    """The target-grid keywords that put the output on the grid of ``obj``.

    Parameters
    ----------
    obj
        An ``xarray.Dataset`` or ``DataArray`` with 1-D ``x``/``y`` pixel-centre
        coordinates (regular, north-up) and a grid-mapping coordinate
        (``spatial_ref``) holding its CRS, as rioxarray and odc-geo write them.
        A dimension of size 1 takes its pixel size from the ``GeoTransform``.

    Returns
    -------
    dict
        As :func:`geobox_grid`.
    """
    import numpy as np

    if not (hasattr(obj, "coords") and hasattr(obj, "dims")):
        raise TypeError(
            f"like={type(obj).__name__}: expected an xarray Dataset or DataArray; for an "
            f"odc.geo GeoBox pass geobox= instead"
        )
    crs = _like_crs(obj)
    xs = np.asarray(_axis(obj, _X_NAMES, "x"), dtype=np.float64)
    ys = np.asarray(_axis(obj, _Y_NAMES, "y"), dtype=np.float64)
    gt = None
    for name in ("spatial_ref", "crs"):
        if name in obj.coords and obj.coords[name].attrs.get("GeoTransform"):
            gt = [float(v) for v in str(obj.coords[name].attrs["GeoTransform"]).split()]
    steps = []
    for values, index, which in ((xs, 1, "x"), (ys, 5, "y")):
        if values.size >= 2:
            diffs = np.diff(values)
            if not np.allclose(diffs, diffs[0], rtol=1e-6, atol=0):
                raise ValueError(
                    f"like= has irregular {which} coordinates (steps {diffs.min():g} to "
                    f"{diffs.max():g}): a target grid needs a regular one"
                )
            steps.append(float(diffs[0]))
        elif gt is not None and values.size == 1:
            steps.append(gt[index])
        else:
            raise ValueError(f"like= has {values.size} {which} coordinate(s) and no GeoTransform")
    rx, ry = steps
    x0, y0 = float(xs[0]) - rx / 2, float(ys[0]) - ry / 2
    if gt is not None and len(gt) == 6:
        # The GeoTransform holds the exact grid the centres were computed from,
        # unless it is stale (after isel it still describes the parent grid).
        close = [math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6 * abs(step))
                 for a, b, step in ((gt[1], rx, rx), (gt[5], ry, ry), (gt[0], x0, rx),
                                    (gt[3], y0, ry))]
        if all(close) and gt[2] == 0 and gt[4] == 0:
            rx, ry, x0, y0 = gt[1], gt[5], gt[0], gt[3]
    transform = Affine(rx, 0.0, x0, 0.0, ry, y0)
    return _spelled_out(crs, transform, xs.size, ys.size, "like=")
