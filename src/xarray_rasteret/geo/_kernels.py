"""Resampling kernels of GDAL's warper, on precomputed source positions.

One job: turn fractional source pixel positions into destination values as
GDAL's warp kernel does: nodata/validity handling (:func:`valid_mask`,
:class:`SourceSamples`), the bilinear and cubic 2x2/4x4 kernels, the general
stretched kernel used when downsampling and its kernel scale
(:func:`kernel_scale`), average and mode over pixel footprints, and the
conversion of computed values to the output dtype (:func:`_store`,
:func:`write_values`). Positions come from :mod:`._approx`; the driver is
:func:`xarray_rasteret.geo.reproject.reproject`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# Kernel radius per method, in source pixels at unit scale.
RADIUS = {"nearest": 0, "bilinear": 1, "cubic": 2, "average": 0, "mode": 0}
EPS = 1e-10


def kernel_scale(n_dst: int, n_src: int, extra: float) -> float:
    """GDAL's per-axis kernel scale (``GDALWarpKernel::PerformWarp``)."""
    denom = n_src - extra
    scale = n_dst / denom if denom > 0 else 1.0
    if n_dst <= n_src <= n_dst + extra:
        scale = 1.0
    if scale < 1.0:
        recip = 1.0 / scale
        nrecip = int(recip + 0.5)
        if abs(recip - nrecip) < 0.05:
            scale = 1.0 / nrecip
    return scale


# --------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------


def valid_mask(src: np.ndarray, nodata: float | None) -> np.ndarray:
    """Which source pixels may contribute: not nodata, and not NaN for floats.

    Parameters
    ----------
    src : numpy.ndarray
        Source pixels.
    nodata : float or None
        Source nodata value.

    Returns
    -------
    numpy.ndarray
        Boolean array of ``src``'s shape.
    """
    kind = src.dtype.kind
    if kind == "f":
        valid = ~np.isnan(src)
        if nodata is not None and not math.isnan(nodata):
            valid &= src != src.dtype.type(nodata)
        return valid
    if kind == "c":
        raise TypeError("complex rasters are not supported")
    valid = np.ones(src.shape, dtype=bool)
    if nodata is not None and not math.isnan(nodata):
        info = np.iinfo(src.dtype) if kind in "iu" else None
        if info is None or (float(nodata).is_integer() and info.min <= nodata <= info.max):
            valid &= src != src.dtype.type(nodata)
    return valid


def _w_bilinear(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return np.where(ax <= 1.0, 1.0 - ax, 0.0)


def _w_cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    x2 = x * x
    return np.where(
        ax <= 1.0,
        x2 * (1.5 * ax - 2.5) + 1.0,
        np.where(ax <= 2.0, x2 * (-0.5 * ax + 2.5) - 4.0 * ax + 2.0, 0.0),
    )


def _cubic_coeffs(d: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keys (a = -0.5) weights of the 4 taps at offsets -1, 0, 1, 2."""
    half = 0.5 * d
    three = 3.0 * d
    half2 = half * d
    return (
        half * (-1.0 + d * (2.0 - d)),
        1.0 + half2 * (-5.0 + three),
        half * (1.0 + d * (4.0 - three)),
        half2 * (-1.0 + d),
    )


class SourceSamples:
    """Source samples with out-of-bounds and nodata handling."""

    def __init__(self, data: np.ndarray, valid: np.ndarray) -> None:
        self.h, self.w = data.shape
        self.flat = data.ravel()
        self.vflat = valid.ravel()

    def take(self, iy: np.ndarray, ix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inside = (ix >= 0) & (ix < self.w) & (iy >= 0) & (iy < self.h)
        idx = np.where(inside, iy * self.w + ix, 0)
        ok = inside & self.vflat[idx]
        return self.flat[idx].astype(np.float64), ok


def bilinear4(src: SourceSamples, sx: np.ndarray, sy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GDAL's 2x2 bilinear kernel at positions ``(sx, sy)`` (source window pixels).

    Parameters
    ----------
    src : SourceSamples
        The source window and its validity.
    sx, sy : numpy.ndarray
        Fractional source positions.

    Returns
    -------
    tuple of numpy.ndarray
        ``(value, good)``: float64 values, and whether each has valid input.
    """
    ix = np.floor(sx - 0.5).astype(np.int64)
    iy = np.floor(sy - 0.5).astype(np.int64)
    rx = 1.5 - (sx - ix)
    ry = 1.5 - (sy - iy)
    lx = ix == -1
    ix = np.where(lx, 0, ix)
    rx = np.where(lx, 1.0, rx)
    ly = iy == -1
    iy = np.where(ly, 0, iy)
    ry = np.where(ly, 1.0, ry)
    acc = np.zeros(sx.shape)
    div = np.zeros(sx.shape)
    for dy, wy in ((0, ry), (1, 1.0 - ry)):
        for dx, wx in ((0, rx), (1, 1.0 - rx)):
            v, ok = src.take(iy + dy, ix + dx)
            w = wx * wy
            div += np.where(ok, w, 0.0)
            acc += np.where(ok, v * w, 0.0)
    good = div >= 0.00001
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(div == 1.0, acc, acc / np.where(good, div, 1.0))
    return val, good


def cubic4(src: SourceSamples, sx: np.ndarray, sy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GDAL's 4x4 cubic kernel at ``(sx, sy)``; bilinear where it touches nodata or the edge.

    Parameters
    ----------
    src : SourceSamples
        The source window and its validity.
    sx, sy : numpy.ndarray
        Fractional source positions.

    Returns
    -------
    tuple of numpy.ndarray
        ``(value, good)``: float64 values, and whether each has valid input.
    """
    ix = np.trunc(sx - 0.5).astype(np.int64)
    iy = np.trunc(sy - 0.5).astype(np.int64)
    dx = sx - 0.5 - ix
    dy = sy - 0.5 - iy
    inner = (ix - 1 >= 0) & (ix + 2 < src.w) & (iy - 1 >= 0) & (iy + 2 < src.h)
    cx = _cubic_coeffs(dx)
    cy = _cubic_coeffs(dy)
    allok = inner.copy()
    rows = []
    for j in range(-1, 3):
        r = np.zeros(sx.shape)
        for i in range(-1, 3):
            v, ok = src.take(iy + j, ix + i)
            allok &= ok
            r = r + cx[i + 1] * v if i > -1 else cx[0] * v
        rows.append(r)
    val = cy[0] * rows[0] + cy[1] * rows[1] + cy[2] * rows[2] + cy[3] * rows[3]
    if not allok.all():
        fb = ~allok
        bval, bgood = bilinear4(src, sx[fb], sy[fb])
        val[fb] = bval
        good = np.ones(sx.shape, dtype=bool)
        good[fb] = bgood
    else:
        good = np.ones(sx.shape, dtype=bool)
    return val, good


def general_kernel(
    src: SourceSamples,
    sx: np.ndarray,
    sy: np.ndarray,
    method: str,
    xscale: float,
    yscale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """GDAL's general separable kernel (used when downsampling)."""
    radius = RADIUS[method]
    f: Callable[[np.ndarray], np.ndarray] = _w_bilinear if method == "bilinear" else _w_cubic
    xrad = int(math.ceil(radius / xscale)) if xscale < 1.0 else radius
    yrad = int(math.ceil(radius / yscale)) if yscale < 1.0 else radius
    xinit = ((radius + 1) % 2) - xrad
    yinit = ((radius + 1) % 2) - yrad
    ix = np.floor(sx - 0.5).astype(np.int64)
    iy = np.floor(sy - 0.5).astype(np.int64)
    dx = sx - 0.5 - ix
    dy = sy - 0.5 - iy
    xs_ = xscale if xscale < 1.0 else 1.0
    ys_ = yscale if yscale < 1.0 else 1.0
    wxs = [f((i - dx) * xs_) for i in range(xinit, xrad + 1)]
    acc = np.zeros(sx.shape)
    wsum = np.zeros(sx.shape)
    for j in range(yinit, yrad + 1):
        w1 = f((j - dy) * ys_)
        lacc = np.zeros(sx.shape)
        lw = np.zeros(sx.shape)
        for k, i in enumerate(range(xinit, xrad + 1)):
            v, ok = src.take(iy + j, ix + i)
            w2 = wxs[k]
            lacc += np.where(ok, v * w2, 0.0)
            lw += np.where(ok, w2, 0.0)
        acc += lacc * w1
        wsum += lw * w1
    good = wsum >= 0.000001
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = (wsum >= 0.99999) & (wsum <= 1.00001)
        val = np.where(unit, acc, acc / np.where(good, wsum, 1.0))
    return val, good


def _footprint_bounds(
    lo: np.ndarray, hi: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer pixel range and edge positions of footprints along one axis."""
    swap = lo > hi
    vmin = np.where(swap, hi, lo)
    vmax = np.where(swap, lo, hi)
    inter = (vmax > -EPS) & (vmin < size + EPS)
    with np.errstate(invalid="ignore"):
        imin = np.maximum(np.floor(vmin + EPS), 0.0)
        imax = np.minimum(np.ceil(vmax - EPS), float(size))
    imin = np.where(inter, imin, 0).astype(np.int64)
    imax = np.where(inter, imax, 0).astype(np.int64)
    imax = np.where((imin == imax) & (imax < size), imax + 1, imax)
    return imin, imax, vmin, vmax, inter


def _edge_weight(
    k: np.ndarray, imin: np.ndarray, imax: np.ndarray, vmin: np.ndarray, vmax: np.ndarray
) -> np.ndarray:
    """GDAL's fractional coverage of source pixel ``k`` by ``[vmin, vmax]``."""
    single = imin + 1 == imax
    first = np.where(single, 1.0, 1.0 - (vmin - imin))
    last = 1.0 - (imax - vmax)
    return np.where(k == imin, first, np.where(k + 1 == imax, last, 1.0))


def average_or_mode(
    src: SourceSamples,
    data_dtype: np.dtype,
    tlx: np.ndarray,
    tly: np.ndarray,
    brx: np.ndarray,
    bry: np.ndarray,
    method: str,
    margins: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Average or mode over the corner bounding box of each destination pixel."""
    finite = np.isfinite(tlx) & np.isfinite(tly) & np.isfinite(brx) & np.isfinite(bry)
    tlx = np.where(finite, tlx, -1e30)
    brx = np.where(finite, brx, -1e30)
    tly = np.where(finite, tly, -1e30)
    bry = np.where(finite, bry, -1e30)
    mxm, mym = margins
    near = (
        (tlx >= -mxm)
        & (brx >= -mxm)
        & (tly >= -mym)
        & (bry >= -mym)
        & (tlx - src.w <= mxm)
        & (brx - src.w <= mxm)
        & (tly - src.h <= mym)
        & (bry - src.h <= mym)
    )
    x0, x1, xmin, xmax, xin = _footprint_bounds(tlx, brx, src.w)
    y0, y1, ymin, ymax, yin = _footprint_bounds(tly, bry, src.h)
    active = finite & near & xin & yin
    nfx = np.where(active, x1 - x0, 0)
    nfy = np.where(active, y1 - y0, 0)
    kx = int(nfx.max(initial=0))
    ky = int(nfy.max(initial=0))
    n = tlx.size
    val = np.zeros(n)
    good = np.zeros(n, dtype=bool)
    if kx == 0 or ky == 0:
        return val, good

    if method == "average":
        tot = np.zeros(n)
        for jy in range(ky):
            iy = y0 + jy
            iny = jy < nfy
            wy = _edge_weight(iy, y0, y1, ymin, ymax)
            for jx in range(kx):
                ix = x0 + jx
                v, ok = src.take(iy, ix)
                ok &= iny & (jx < nfx)
                w = np.where(ok, _edge_weight(ix, x0, x1, xmin, xmax) * wy, 0.0)
                ok &= w > 0
                tot = np.where(ok, tot + w, tot)
                with np.errstate(invalid="ignore", divide="ignore"):
                    val = np.where(ok, val + (w / tot) * (v - val), val)
        return val, tot > 0

    # Mode: most frequent value; ties go to the value reaching the count first.
    integer_mode = data_dtype in (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int16))
    vals = np.empty((n, ky * kx), dtype=np.float64)
    oks = np.empty((n, ky * kx), dtype=bool)
    for jy in range(ky):
        iy = y0 + jy
        iny = jy < nfy
        for jx in range(kx):
            v, ok = src.take(iy, x0 + jx)
            k = jy * kx + jx
            vals[:, k] = v if integer_mode else v.astype(np.float32)
            oks[:, k] = ok & iny & (jx < nfx)
    key = np.where(oks, vals, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    skey = np.take_along_axis(key, order, axis=1)
    pos = np.broadcast_to(np.arange(skey.shape[1]), skey.shape)
    newgrp = np.ones(skey.shape, dtype=bool)
    newgrp[:, 1:] = skey[:, 1:] != skey[:, :-1]
    grp_start = np.maximum.accumulate(np.where(newgrp, pos, 0), axis=1)
    occ_sorted = pos - grp_start + 1
    occ = np.empty_like(occ_sorted)
    np.put_along_axis(occ, order, occ_sorted, axis=1)
    occ = np.where(oks, occ, 0)
    best = occ.max(axis=1)
    first = np.argmax(occ == best[:, None], axis=1)
    good = best > 0
    val = vals[np.arange(n), first]
    return val, good


# --------------------------------------------------------------------------
# Output conversion
# --------------------------------------------------------------------------


def _store(values: np.ndarray, dtype: np.dtype, dst_nodata: float | None) -> np.ndarray:
    """Convert resampled values to the output dtype as GDAL does.

    Integers are clamped and rounded half up; one that lands on ``dst_nodata``
    moves one step towards the type's range (GDAL's "avoid nodata" for computed
    values), so valid data never reads as nodata.
    """
    if dtype.kind == "f":
        return values.astype(dtype)
    if dtype.kind == "b":
        return values >= 0.5
    info = np.iinfo(dtype)
    lo, hi = float(info.min), float(info.max)
    clamped = np.clip(values, lo, hi)
    rounded = np.floor(clamped + 0.5)
    rounded = np.minimum(rounded, hi)
    out = rounded.astype(dtype)
    if dst_nodata is not None and not math.isnan(dst_nodata):
        hit = out.astype(np.float64) == float(dst_nodata)
        if hit.any():
            at_min = out == info.min
            out = np.where(hit & at_min, dtype.type(info.min + 1), np.where(hit, out - 1, out))
            out = out.astype(dtype)
    return out


def write_values(
    target: np.ndarray,
    val: np.ndarray,
    good: np.ndarray,
    dtype: np.dtype,
    dst_nodata: float | None,
) -> None:
    """Store the ``good`` values of ``val`` into ``target``, converted to ``dtype``.

    Parameters
    ----------
    target : numpy.ndarray
        Destination block, written in place where ``good``.
    val, good : numpy.ndarray
        Computed values and their validity, flat over ``target``.
    dtype : numpy.dtype
        Output dtype (clamping and rounding as GDAL's).
    dst_nodata : float or None
        Destination nodata, which a valid value never takes.
    """
    flat = target.reshape(-1)
    idx = np.nonzero(good)[0]
    if idx.size:
        flat[idx] = _store(val[idx], dtype, dst_nodata)
    target[...] = flat.reshape(target.shape)
