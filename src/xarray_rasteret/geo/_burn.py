"""Burning of lines and polygon boundaries into a pixel grid, as GDAL burns them.

One job: given pixel-space vertices (concatenated parts with start offsets),
return the ``(rows, cols)`` of the pixels GDAL would burn for them:

* :func:`lines_bresenham` -- ``GDALdllImageLine``: integer Bresenham between
  the pixels holding consecutive vertices (lines, ``all_touched=False``);
* :func:`lines_all_touched` -- ``GDALdllImageLineAllTouched``: every pixel a
  segment passes through (lines, and polygon boundaries with
  ``all_touched=True``), vertical / horizontal runs vectorized and sloped
  segments stepped pixel by pixel by :func:`walk`.

Polygon filling and the public API are in :mod:`xarray_rasteret.geo.rasterize`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

# GDAL's tolerance for boundaries that lie on pixel edges (GDALdllImageLineAllTouched).
_EPS_INTERSECT = 1e-4
# Below this extent (pixels) an edge is walked as a vertical / horizontal run.
_AXIS_TOL = 0.01
_MIN_STEP = 1e-9
# Segments still being walked below which the walk continues in plain Python.
_SCALAR_WALK_BELOW = 12


def segments(starts: NDArray) -> tuple[NDArray, NDArray]:
    """Return the indices ``(i0, i1)`` of consecutive vertices within each part."""
    n = int(starts[-1])
    i1 = np.arange(n)
    first = np.zeros(n, dtype=bool)
    first[starts[:-1][starts[:-1] < n]] = True
    i1 = i1[~first]
    return i1 - 1, i1


def lines_bresenham(
    xs: NDArray, ys: NDArray, starts: NDArray, height: int, width: int
) -> list[tuple[NDArray, NDArray]]:
    """Pixels of GDALdllImageLine: integer Bresenham between floored vertices."""
    i0, i1 = segments(starts)
    if i0.size == 0:
        return []
    big = float(2**40)
    fx0 = np.clip(np.floor(xs[i0]), -big, big).astype(np.int64)
    fy0 = np.clip(np.floor(ys[i0]), -big, big).astype(np.int64)
    fx1 = np.clip(np.floor(xs[i1]), -big, big).astype(np.int64)
    fy1 = np.clip(np.floor(ys[i1]), -big, big).astype(np.int64)
    ddx = np.abs(fx1 - fx0)
    ddy = np.abs(fy1 - fy0)
    sx = np.where(fx0 > fx1, -1, 1)
    sy = np.where(fy0 > fy1, -1, 1)
    x_major = ddx >= ddy
    # Major axis: start, step, length; minor axis likewise.
    maj0 = np.where(x_major, fx0, fy0)
    mstep = np.where(x_major, sx, sy)
    dmaj = np.where(x_major, ddx, ddy)
    min0 = np.where(x_major, fy0, fx0)
    nstep = np.where(x_major, sy, sx)
    dmin = np.where(x_major, ddy, ddx)
    size_maj = np.where(x_major, width, height)
    # Only steps k whose major coordinate is inside the grid can burn.
    k_lo = np.where(mstep > 0, -maj0, maj0 - (size_maj - 1))
    k_hi = np.where(mstep > 0, size_maj - 1 - maj0, maj0)
    k_lo = np.clip(k_lo, 0, None)
    k_hi = np.minimum(k_hi, dmaj)
    n = np.maximum(k_hi - k_lo + 1, 0)
    total = int(n.sum())
    if total == 0:
        return []
    seg = np.repeat(np.arange(len(n)), n)
    k = k_lo[seg] + np.arange(total) - np.repeat(np.cumsum(n) - n, n)
    # The minor-axis offset after k steps of Bresenham with error term
    # e0 = 2*dmin - dmaj, incremented when e > 0: ceil((2*dmin*k - dmaj) / (2*dmaj)),
    # never below 0 (closed form of the integer recurrence, see tests).
    dmin_s = dmin[seg]
    dmaj_s = dmaj[seg]
    num = 2 * dmin_s * k - dmaj_s
    den = np.maximum(2 * dmaj_s, 1)
    m = np.maximum(-((-num) // den), 0)
    major = maj0[seg] + mstep[seg] * k
    minor = min0[seg] + nstep[seg] * m
    xm = x_major[seg]
    col = np.where(xm, major, minor)
    row = np.where(xm, minor, major)
    ok = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    return [(row[ok], col[ok])]


def lines_all_touched(
    xs: NDArray,
    ys: NDArray,
    starts: NDArray,
    height: int,
    width: int,
    intersect_only: bool,
    wrap_overflow: bool = False,
) -> list[tuple[NDArray, NDArray]]:
    """Pixels of GDALdllImageLineAllTouched for every segment of every part.

    ``intersect_only`` is GDAL's flag for polygon boundaries: axis-aligned
    edges lying on pixel boundaries burn nothing.
    """
    i0, i1 = segments(starts)
    if i0.size == 0:
        return []
    x0, y0, x1, y1 = xs[i0], ys[i0], xs[i1], ys[i1]
    off = (
        ((y0 < 0) & (y1 < 0))
        | ((y0 > height) & (y1 > height))
        | ((x0 < 0) & (x1 < 0))
        | ((x0 > width) & (x1 > width))
    )
    keep = ~off & np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1)
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    # Left to right.
    swap = x0 > x1
    x0, x1 = np.where(swap, x1, x0), np.where(swap, x0, x1)
    y0, y1 = np.where(swap, y1, y0), np.where(swap, y0, y1)

    out: list[tuple[NDArray, NDArray]] = []
    vertical = (np.floor(x0) == np.floor(x1)) | (np.abs(x0 - x1) < _AXIS_TOL)
    horizontal = ~vertical & ((np.floor(y0) == np.floor(y1)) | (np.abs(y0 - y1) < _AXIS_TOL))
    general = ~vertical & ~horizontal

    def near_int(v: NDArray) -> NDArray:
        return np.abs(v - np.round(v)) < _EPS_INTERSECT

    # Vertical runs: column floor(x1), rows floor(ymin) .. floor(ymax - eps).
    v = vertical
    if intersect_only:
        v = v & ~(near_int(x0) & near_int(x1))
    if v.any():
        col = np.floor(x1[v])
        ylo = np.minimum(y0[v], y1[v])
        yhi = np.maximum(y0[v], y1[v])
        r0 = np.maximum(np.floor(ylo), 0)
        r1 = np.minimum(np.floor(yhi - _EPS_INTERSECT), height - 1)
        ok = (col >= 0) & (col < width)
        out.append(_runs(r0[ok], r1[ok], col[ok], vertical=True))

    # Horizontal runs: row floor(y of the left end), cols floor(x0) .. floor(x1 - eps).
    h = horizontal
    if intersect_only:
        h = h & ~(near_int(y0) & near_int(y1))
    if h.any():
        row = np.floor(y0[h])
        c0 = np.maximum(np.floor(x0[h]), 0)
        c1 = np.minimum(np.floor(x1[h] - _EPS_INTERSECT), width - 1)
        ok = (row >= 0) & (row < height)
        out.append(_runs(c0[ok], c1[ok], row[ok], vertical=False))

    if general.any():
        g = general
        out.append(walk(x0[g], y0[g], x1[g], y1[g], height, width, wrap_overflow))
    return out


def _runs(a: NDArray, b: NDArray, fixed: NDArray, *, vertical: bool) -> tuple[NDArray, NDArray]:
    """Pixels of runs ``a..b`` (inclusive) along one axis at ``fixed`` on the other."""
    a = a.astype(np.int64)
    b = b.astype(np.int64)
    n = np.maximum(b - a + 1, 0)
    total = int(n.sum())
    seg = np.repeat(np.arange(len(n)), n)
    vals = a[seg] + np.arange(total) - np.repeat(np.cumsum(n) - n, n)
    other = fixed.astype(np.int64)[seg]
    return (vals, other) if vertical else (other, vals)


def walk(
    x: NDArray,
    y: NDArray,
    xe: NDArray,
    ye: NDArray,
    height: int,
    width: int,
    wrap_overflow: bool = False,
) -> tuple[NDArray, NDArray]:
    """Step along sloped segments pixel by pixel, exactly as GDAL does, all at once.

    GDAL's clipping of a segment that leaves the grid through its bottom-right
    can make the walk run past the right edge (``dfXEnd -= dfYEnd / dfSlope``
    is not clipped again). Those steps are dropped here; GDAL writes them into
    the next row of its buffer (or past its end). ``wrap_overflow=True``
    reproduces that write, for bit-exact comparisons only.
    """
    x = x.copy()
    y = y.copy()
    xe = xe.copy()
    ye = ye.copy()
    slope = (ye - y) / (xe - x)
    # Clip in X.
    m = xe > width
    ye[m] -= (xe[m] - width) * slope[m]
    xe[m] = width
    m = x < 0.0
    y[m] += (0.0 - x[m]) * slope[m]
    x[m] = 0.0
    # Clip in Y (GDAL's arithmetic, including its sign for the far end going up).
    rising = ye > y
    m = rising & (y < 0.0)
    x[m] += (0.0 - y[m]) / slope[m]
    y[m] = 0.0
    m = rising & (ye >= height)
    xe[m] += (ye[m] - height) / slope[m]
    xe[m & (xe > width)] = width
    m = ~rising & (y >= height)
    x[m] += (height - y[m]) / slope[m]
    y[m] = float(height)
    m = ~rising & (ye < 0.0)
    xe[m] -= (ye[m] - 0) / slope[m]

    rows_out: list[NDArray] = []
    cols_out: list[NDArray] = []
    neg = slope < 0
    while x.size:
        if x.size <= _SCALAR_WALK_BELOW:
            # A few long segments left: a plain loop beats numpy's per-call cost.
            r, c = _walk_scalar(x, y, xe, slope, height)
            rows_out.append(r)
            cols_out.append(c)
            break
        active = (x >= 0.0) & (x < xe)
        iy = np.floor(y)
        # Once a segment has left the grid in its direction of travel it never
        # comes back (y is monotonic), so it can stop: the burns are the same.
        active &= np.where(neg, iy >= 0, iy < height)
        if not active.all():
            x, y, xe, slope, neg, iy = (v[active] for v in (x, y, xe, slope, neg, iy))
            if not x.size:
                break
        ix = np.floor(x)
        inside = (iy >= 0) & (iy < height)
        rows_out.append(iy[inside])
        cols_out.append(ix[inside])
        step_x = np.floor(x + 1.0) - x
        step_y = step_x * slope
        same_row = np.floor(y + step_y) == iy
        # Otherwise step to the next row boundary (down or up).
        sy_neg = np.minimum(iy - y, -_MIN_STEP)
        sy_pos = np.maximum((iy + 1) - y, _MIN_STEP)
        alt_y = np.where(neg, sy_neg, sy_pos)
        step_y = np.where(same_row, step_y, alt_y)
        step_x = np.where(same_row, step_x, alt_y / slope)
        x = x + step_x
        y = y + step_y
    if not rows_out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    rows = np.concatenate(rows_out).astype(np.int64)
    cols = np.concatenate(cols_out).astype(np.int64)
    if wrap_overflow:
        # GDAL does not check the column here; a column past the right edge
        # lands, in its row-major buffer, on a later row.
        flat = rows * width + cols
        flat = flat[flat < height * width]
        return flat // width, flat % width
    ok = cols < width
    return rows[ok], cols[ok]


def _walk_scalar(
    xs: NDArray, ys: NDArray, xes: NDArray, slopes: NDArray, height: int
) -> tuple[NDArray, NDArray]:
    """Continue the walk of :func:`walk` one segment at a time (same arithmetic)."""
    rows: list[float] = []
    cols: list[float] = []
    floor = math.floor
    for x, y, xe, slope in zip(
        xs.tolist(), ys.tolist(), xes.tolist(), slopes.tolist(), strict=True
    ):
        neg = slope < 0
        while x >= 0.0 and x < xe:
            iy = floor(y)
            if neg:
                if iy < 0:
                    break
            elif iy >= height:
                break
            if iy >= 0 and iy < height:
                rows.append(iy)
                cols.append(floor(x))
            step_x = floor(x + 1.0) - x
            step_y = step_x * slope
            if floor(y + step_y) == iy:
                x += step_x
                y += step_y
            else:
                if neg:
                    step_y = iy - y
                    if step_y > -_MIN_STEP:
                        step_y = -_MIN_STEP
                else:
                    step_y = (iy + 1) - y
                    if step_y < _MIN_STEP:
                        step_y = _MIN_STEP
                x += step_y / slope
                y += step_y
    return np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64)
