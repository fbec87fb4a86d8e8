"""Warp a raster onto another grid without GDAL, reproducing GDAL's warper.

The result of :func:`reproject` is meant to equal ``rasterio.warp.reproject``
(GDAL's ``GDALChunkAndWarpImage`` with the approximate transformer, error
threshold 0.125 pixel) for the same source, grids, nodata and resampling. The
rules followed, written from GDAL's documented behaviour and its warper's
observable results (GDAL 3.10):

* Coordinates. Every destination pixel centre ``(col + 0.5, row + 0.5)`` goes
  destination pixel -> destination CRS (affine) -> source CRS (PROJ, here via
  pyproj) -> source pixel (inverse affine). Per destination row the
  approximate transformer transforms the first, middle and last point exactly,
  interpolates linearly when the middle point's error is at most
  ``max_error`` source pixels and otherwise bisects the row (halves of at most
  five points are transformed exactly). A point whose approximate position
  falls just outside the source (by less than one pixel) is transformed again
  exactly, as GDAL does.
* Nearest takes the source pixel containing the position (``floor`` with a
  ``1e-10`` tolerance). Bilinear (2x2) and cubic (4x4, Keys ``a = -0.5``)
  require that pixel to be valid; nodata pixels in the kernel do not
  contribute and the bilinear weights are renormalised over the valid ones; a
  cubic kernel touching nodata or the image border falls back to bilinear.
  When the destination is more than 5 % coarser than the source, bilinear and
  cubic stretch their kernel by the resolution ratio (GDAL's ``XSCALE``,
  ``YSCALE``) and renormalise by the sum of the weights.
* Average and mode use the bounding box of the transformed top-left and
  bottom-right corners of the destination pixel. Average is the area-weighted
  mean of the valid source pixels (fractional weights at the box edges), mode
  the most frequent valid value of the pixels the box touches; a tie goes to
  the value that reached the winning count first in row-major order.
* Integer outputs are clamped to the dtype and rounded half up; for every
  method but nearest, a computed value equal to the destination nodata is
  moved one step towards zero (to the dtype's minimum + 1 at the minimum), so
  valid data never reads as nodata.

Everything is vectorised with numpy; memory stays proportional to the output.

This module holds the public API and the source-window / kernel-scale
computation (``GDALWarpOperation::ComputeSourceWindow``); the approximate
transformer lives in :mod:`._approx` and the resampling kernels in
:mod:`._kernels`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from typing import Any, Literal

import numpy as np
from affine import Affine

from ._approx import _approx_rows, _PixelTransformer, _segment_coords
from ._kernels import (
    _EPS,
    _RADIUS,
    _average_or_mode,
    _bilinear4,
    _cubic4,
    _general,
    _kernel_scale,
    _Src,
    _valid_mask,
    _write,
)
from ._positions import positions
from .crs import cache_key

__all__ = [
    "Resampling",
    "kernel_scales",
    "position_bytes",
    "prepare_positions",
    "reproject",
    "source_coords",
    "source_window",
]

Resampling = Literal["nearest", "bilinear", "cubic", "average", "mode"]

_RESAMPLINGS = ("nearest", "bilinear", "cubic", "average", "mode")
# The methods whose source positions are kept in the position cache.
_CACHED = ("nearest", "bilinear", "cubic")
# Destination pixels processed at once by the footprint kernels.
_BLOCK_PIXELS = 1 << 17

Window4 = tuple[int, int, int, int]


def _check_window(window: Window4 | None, shape: tuple[int, int]) -> Window4:
    if window is None:
        return (0, shape[0], 0, shape[1])
    r0, r1, c0, c1 = (int(v) for v in window)
    if not (0 <= r0 <= r1 <= shape[0] and 0 <= c0 <= c1 <= shape[1]):
        raise ValueError(f"dst_window {window} is not inside the destination shape {shape}")
    return (r0, r1, c0, c1)


def source_coords(
    dst_shape: tuple[int, int],
    dst_transform: Affine,
    dst_crs: Any,
    src_transform: Affine,
    src_crs: Any,
    *,
    max_error: float = 0.125,
    dst_window: Window4 | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel coordinates of every destination pixel centre.

    Coordinates are fractional pixel positions in the source image whose
    transform is ``src_transform`` (pixel ``(r, c)`` spans ``[c, c+1) x [r,
    r+1)``, its centre is at ``+0.5``), computed with GDAL's approximate
    transformer: per destination row the two ends and the middle are
    transformed exactly, the row is linearly interpolated when the middle's
    error is at most ``max_error`` source pixels, and bisected otherwise.

    Parameters
    ----------
    dst_shape : tuple of int
        ``(height, width)`` of the destination grid.
    dst_transform : affine.Affine
        Destination grid transform.
    dst_crs : Any
        Destination CRS (anything :class:`pyproj.CRS` accepts).
    src_transform : affine.Affine
        Source image transform.
    src_crs : Any
        Source CRS.
    max_error : float, default 0.125
        Error threshold of the approximation in source pixels; 0 transforms
        every point exactly.
    dst_window : tuple of int, optional
        ``(row_start, row_stop, col_start, col_stop)`` part of the destination
        grid to return. The approximation is decided on fixed row segments of
        ``dst_shape`` (whole rows up to 1024 pixels wide), so a window returns
        exactly the matching part of the full result.

    Returns
    -------
    tuple of numpy.ndarray
        ``(cols, rows)``: float64 arrays of the window's shape; NaN where the
        point cannot be transformed.
    """
    tr = _PixelTransformer.create(dst_transform, dst_crs, src_transform, src_crs)
    r0, r1, c0, c1 = _check_window(dst_window, (int(dst_shape[0]), int(dst_shape[1])))
    return _segment_coords(tr, int(dst_shape[1]), r0, r1, c0, c1, max_error)


# --------------------------------------------------------------------------
# Source window and kernel scale (GDALWarpOperation::ComputeSourceWindow)
# --------------------------------------------------------------------------


def _edge_points(r0: int, r1: int, c0: int, c1: int, step_count: int = 21) -> np.ndarray:
    """GDAL's sampling of a destination window's edges (pixel corners)."""
    w = c1 - c0
    h = r1 - r0
    step = 1.0 / (step_count - 1)
    pts = []
    ratio = 0.0
    while ratio <= 1.0 + step * 0.5:
        pts += [
            (ratio * w + c0, r0),
            (ratio * w + c0, r0 + h),
            (c0, ratio * h + r0),
            (w + c0, ratio * h + r0),
        ]
        ratio += step
    return np.asarray(pts, dtype=np.float64)


def _round_if_close(v: float) -> float:
    r = float(np.round(v))
    return r if abs(r - v) < 1e-6 else v


def _sampled_bounds(
    tr: _PixelTransformer, window: Window4, dense: bool
) -> tuple[float, float, float, float, int] | None:
    r0, r1, c0, c1 = window
    if dense:
        cols = np.arange(c0, c1 + 1, dtype=np.float64)
        rows = np.arange(r0, r1 + 1, dtype=np.float64)
        px = np.concatenate([cols, cols, np.full(rows.size, c0), np.full(rows.size, c1)])
        py = np.concatenate([np.full(cols.size, r0), np.full(cols.size, r1), rows, rows])
        # A coarse interior grid guards against mappings curved inwards.
        gx, gy = np.meshgrid(np.linspace(c0, c1, 11), np.linspace(r0, r1, 11))
        px = np.concatenate([px, gx.ravel()])
        py = np.concatenate([py, gy.ravel()])
    else:
        pts = _edge_points(r0, r1, c0, c1)
        px, py = pts[:, 0], pts[:, 1]
    sx, sy = tr(px, py)
    ok = np.isfinite(sx) & np.isfinite(sy)
    failed = int((~ok).sum())
    # GDAL gives up when hardly any point transforms.
    if failed > px.size - 5 or not ok.any():
        return None
    return (
        _round_if_close(float(sx[ok].min())),
        _round_if_close(float(sy[ok].min())),
        _round_if_close(float(sx[ok].max())),
        _round_if_close(float(sy[ok].max())),
        failed,
    )


def _axis_window(
    vmin: float, vmax: float, size: int, n_dst: int, radius: int, failed: int
) -> tuple[int, int, float, float]:
    """One axis of GDAL's source window: (offset, size, extra size, scale)."""
    span = vmax - vmin
    scale_est = max(1e-3, n_dst / span) if span > 0 else 1.0
    rad = int(math.ceil(radius / scale_est)) if scale_est < 0.95 else radius
    if failed:
        rad += 10
    min_c = int(max(0.0, vmin))
    max_c = int(min(math.ceil(vmax), float(size)))
    raw = max(0.0, min(float(size - min_c), span))
    if max_c - min_c > 0.9 * size:
        off, n = 0, size
    else:
        off = max(0, min(min_c - rad, size))
        n = max(0, min(size - off, max_c - off + rad))
    return off, n, n - raw, raw


def kernel_scales(
    dst_shape: tuple[int, int],
    dst_transform: Affine,
    dst_crs: Any,
    src_transform: Affine,
    src_crs: Any,
    src_shape: tuple[int, int],
    *,
    resampling: Resampling = "bilinear",
) -> tuple[float, float] | None:
    """Compute the kernel scales GDAL's warper uses for a whole-grid warp.

    The scale is the destination size over the size of the source area it
    covers (clamped to the source image), snapped to ``1/n`` when within 0.05
    of it and set to 1 when the source window is no larger than the
    destination plus the kernel margin. Below 0.95 bilinear and cubic stretch
    their kernels.

    Parameters
    ----------
    dst_shape : tuple of int
        ``(height, width)`` of the destination grid.
    dst_transform : affine.Affine
        Destination grid transform.
    dst_crs : Any
        Destination CRS.
    src_transform : affine.Affine
        Source image transform.
    src_crs : Any
        Source CRS.
    src_shape : tuple of int
        ``(height, width)`` of the full source image.
    resampling : str, default "bilinear"
        Resampling method (its kernel radius enters the window margin).

    Returns
    -------
    tuple of float or None
        ``(x_scale, y_scale)``, or None when the grids do not overlap.
    """
    # Every chunk of a warp and every AOI on one grid asks for the same scales.
    return _cached_kernel_scales(
        _pair_key(dst_shape, dst_transform, dst_crs, src_transform, src_crs),
        (int(src_shape[0]), int(src_shape[1])),
        resampling,
    )


_PairKey = tuple[tuple[int, int], Affine, Any, Affine, Any]
"""``(dst_shape, dst_transform, dst_crs key, src_transform, src_crs key)``."""


def _pair_key(
    dst_shape: tuple[int, int],
    dst_transform: Affine,
    dst_crs: Any,
    src_transform: Affine,
    src_crs: Any,
) -> _PairKey:
    """A hashable key of a (destination grid, source grid) pair, for caches."""
    return (
        (int(dst_shape[0]), int(dst_shape[1])),
        Affine(*dst_transform[:6]),
        cache_key(dst_crs),
        Affine(*src_transform[:6]),
        cache_key(src_crs),
    )


def _transformer_of(pair: _PairKey) -> _PixelTransformer:
    _, dst_transform, dst_crs, src_transform, src_crs = pair
    return _PixelTransformer.create(dst_transform, dst_crs, src_transform, src_crs)


@lru_cache(maxsize=1024)
def _cached_kernel_scales(
    pair: _PairKey, src_shape: tuple[int, int], resampling: str
) -> tuple[float, float] | None:
    return _kernel_scales(_transformer_of(pair), pair[0], src_shape, resampling)


def _kernel_scales(
    tr: _PixelTransformer,
    dst_shape: tuple[int, int],
    src_shape: tuple[int, int],
    resampling: str,
) -> tuple[float, float] | None:
    b = _sampled_bounds(tr, (0, dst_shape[0], 0, dst_shape[1]), dense=False)
    if b is None:
        return None
    minx, miny, maxx, maxy, failed = b
    if minx > src_shape[1] or maxx < 0 or miny > src_shape[0] or maxy < 0:
        return None
    radius = _RADIUS[resampling]
    _, nx, extx, _ = _axis_window(minx, maxx, src_shape[1], dst_shape[1], radius, failed)
    _, ny, exty, _ = _axis_window(miny, maxy, src_shape[0], dst_shape[0], radius, failed)
    if nx <= 0 or ny <= 0:
        return None
    return (_kernel_scale(dst_shape[1], nx, extx), _kernel_scale(dst_shape[0], ny, exty))


def _margin(resampling: str, scale: float) -> int:
    radius = _RADIUS[resampling]
    if resampling in ("bilinear", "cubic") and scale < 0.95:
        radius = int(math.ceil(radius / scale))
    # One more pixel for the approximation error and GDAL's exact retry of
    # positions just outside the source.
    return radius + 1


def source_window(
    dst_shape: tuple[int, int],
    dst_transform: Affine,
    dst_crs: Any,
    src_transform: Affine,
    src_crs: Any,
    src_shape: tuple[int, int],
    *,
    resampling: Resampling = "nearest",
    dst_window: Window4 | None = None,
) -> Window4 | None:
    """Source pixel window needed to produce (part of) a destination grid.

    The destination window's perimeter (every pixel corner) and a coarse
    interior grid are transformed exactly; their bounding box in source
    pixels, widened by the kernel's reach (1 for bilinear, 2 for cubic,
    scaled by the downsampling ratio when bilinear/cubic stretch their kernel,
    the footprint for average/mode) plus one pixel, is clipped to the image.

    Parameters
    ----------
    dst_shape : tuple of int
        ``(height, width)`` of the destination grid.
    dst_transform : affine.Affine
        Destination grid transform.
    dst_crs : Any
        Destination CRS.
    src_transform : affine.Affine
        Source image transform.
    src_crs : Any
        Source CRS.
    src_shape : tuple of int
        ``(height, width)`` of the full source image.
    resampling : str, default "nearest"
        Resampling method.
    dst_window : tuple of int, optional
        ``(row_start, row_stop, col_start, col_stop)`` part of the destination
        grid that will be produced; default all of it.

    Returns
    -------
    tuple of int or None
        ``(row_start, row_stop, col_start, col_stop)`` clipped to the source,
        or None when nothing of the source is needed.
    """
    if resampling not in _RESAMPLINGS:
        raise ValueError(f"unknown resampling {resampling!r}; expected one of {_RESAMPLINGS}")
    pair = _pair_key(dst_shape, dst_transform, dst_crs, src_transform, src_crs)
    win = _check_window(dst_window, pair[0])
    # The records of a time series on one grid ask for the same windows.
    return _cached_source_window(pair, (int(src_shape[0]), int(src_shape[1])), resampling, win)


@lru_cache(maxsize=4096)
def _cached_source_window(
    pair: _PairKey, src_shape: tuple[int, int], resampling: str, win: Window4
) -> Window4 | None:
    if win[0] == win[1] or win[2] == win[3]:
        return None
    tr = _transformer_of(pair)
    scales = _cached_kernel_scales(pair, src_shape, resampling)
    if scales is None:
        return None
    b = _sampled_bounds(tr, win, dense=True)
    if b is None:
        return None
    minx, miny, maxx, maxy, failed = b
    mx = _margin(resampling, scales[0]) + (10 if failed else 0)
    my = _margin(resampling, scales[1]) + (10 if failed else 0)
    c0 = max(0, math.floor(minx) - mx)
    c1 = min(src_shape[1], math.ceil(maxx) + mx)
    r0 = max(0, math.floor(miny) - my)
    r1 = min(src_shape[0], math.ceil(maxy) + my)
    if c0 >= c1 or r0 >= r1:
        return None
    return (int(r0), int(r1), int(c0), int(c1))


# --------------------------------------------------------------------------
# reproject
# --------------------------------------------------------------------------


def _inside(sx: np.ndarray, sy: np.ndarray, h: int, w: int) -> np.ndarray:
    """Whether each position lies in the ``h`` x ``w`` source (GDAL's 1e-10 tolerance)."""
    inside = sx >= 0
    inside &= sy >= 0
    edge = sx + _EPS
    inside &= edge <= w
    np.add(sy, _EPS, out=edge)
    inside &= edge <= h
    return inside


def _block_positions(
    tr: _PixelTransformer,
    xs_c: np.ndarray,
    block: Window4,
    window: tuple[int, int, int, int],
    max_error: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source positions (in the source window) of a block of destination pixels, flattened.

    ``block`` is ``(row_start, row_stop, col_start, col_stop)`` on the
    destination grid (``xs_c``: its column centres), ``window`` the source
    window's ``(row offset, col offset, height, width)``. Returns ``(sx, sy,
    inside)``, ``inside`` telling the positions within the window.
    """
    b0, b1, c0, c1 = block
    off_r, off_c, h, w = window
    rows = np.arange(b0, b1, dtype=np.float64) + 0.5
    sxg, syg = _approx_rows(tr, xs_c, rows, max_error, c0, c1)
    # In place: every fresh 0.5 MB temporary costs ~0.25 ms of page faults here.
    sx = sxg.reshape(-1)
    sx -= off_c
    sy = syg.reshape(-1)
    sy -= off_r
    inside = _inside(sx, sy, h, w)
    # GDAL retries positions just outside the source with the exact transform.
    retry = ~inside & (sx > -1) & (sy > -1) & (sx < w + 1) & (sy < h + 1)
    if retry.any():
        idx = np.nonzero(retry)[0]
        nw = c1 - c0
        px = (idx % nw + c0).astype(np.float64) + 0.5
        py = (idx // nw + b0).astype(np.float64) + 0.5
        ex, ey = tr(px, py)
        sx[idx] = ex - off_c
        sy[idx] = ey - off_r
        inside = _inside(sx, sy, h, w)
    return sx, sy, inside


def _nearest_index(
    tr: _PixelTransformer,
    xs_c: np.ndarray,
    block: Window4,
    window: tuple[int, int, int, int],
    max_error: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Flat index (in the source window) of the pixel containing each position, and ``inside``.

    Positions outside the window are parked on pixel 0 (masked by ``inside``),
    so that pasting is one gather and one masked copy.
    """
    sx, sy, inside = _block_positions(tr, xs_c, block, window, max_error)
    h, w = window[2], window[3]
    outside = ~inside
    sx += _EPS
    np.copyto(sx, 0.0, where=outside)
    sy += _EPS
    np.copyto(sy, 0.0, where=outside)
    lin = sy.astype(np.intp)
    np.minimum(lin, h - 1, out=lin)
    lin *= w
    col = sx.astype(np.intp)
    np.minimum(col, w - 1, out=col)
    lin += col
    return lin, inside


def _position_blocks(
    pair: _PairKey,
    window: Window4,
    src_window: tuple[int, int, int, int],
    nearest: bool,
    max_error: float,
) -> Iterator[tuple[int, int, Callable[[], tuple[np.ndarray, ...]]]]:
    """The destination row blocks of ``window`` and, per block, a function giving its positions.

    Each function returns what :func:`_nearest_index` (``nearest``) or
    :func:`_block_positions` computes for the block and ``src_window``
    (``(row offset, col offset, height, width)`` in the source), from the
    shared cache: the same for every record on these grids, so computed once.
    """
    r0, r1, c0, c1 = window
    tr = _transformer_of(pair)
    xs_c = np.arange(pair[0][1], dtype=np.float64) + 0.5
    block = max(1, (2 * _BLOCK_PIXELS) // max(1, c1 - c0))
    compute = _nearest_index if nearest else _block_positions
    for b0 in range(r0, r1, block):
        b1 = min(r1, b0 + block)
        block_window = (b0, b1, c0, c1)
        key = (pair, nearest, block_window, src_window, max_error)
        args = (tr, xs_c, block_window, src_window, max_error)
        yield b0, b1, partial(positions.get, key, partial(compute, *args))


def position_bytes(dst_window: Window4, resampling: Resampling) -> int:
    """Bytes of the source positions :func:`prepare_positions` keeps for ``dst_window``.

    Nearest keeps a flat index and a flag per destination pixel; bilinear and
    cubic two float64 positions and a flag; average and mode keep none.
    """
    if resampling not in _CACHED:
        return 0
    r0, r1, c0, c1 = dst_window
    per_pixel = np.dtype(np.intp).itemsize + 1 if resampling == "nearest" else 17
    return (r1 - r0) * (c1 - c0) * per_pixel


def prepare_positions(
    *,
    src_transform: Affine,
    src_crs: Any,
    src_window: Window4,
    src_shape: tuple[int, int],
    dst_shape: tuple[int, int],
    dst_transform: Affine,
    dst_crs: Any,
    dst_window: Window4,
    resampling: Resampling = "nearest",
    max_error: float = 0.125,
) -> None:
    """Compute the source positions a :func:`reproject` call will need, before its pixels exist.

    The positions depend only on the grids and windows, so they can be computed
    while the source window is still being fetched; they are kept in the
    warper's position cache, where the matching :func:`reproject` call finds
    them. Average and mode compute their footprints as they go: nothing to do.

    Parameters
    ----------
    src_transform, src_crs, src_shape
        The full source image: transform, CRS, ``(height, width)``.
    src_window
        ``(row_start, row_stop, col_start, col_stop)`` of the source window the
        :func:`reproject` call will get (its ``source``).
    dst_shape, dst_transform, dst_crs, dst_window, resampling, max_error
        As for :func:`reproject`.
    """
    if resampling not in _CACHED:
        return
    dst_shape = (int(dst_shape[0]), int(dst_shape[1]))
    window = _check_window(dst_window, dst_shape)
    pair = _pair_key(dst_shape, dst_transform, dst_crs, src_transform, src_crs)
    size = (int(src_shape[0]), int(src_shape[1]))
    if _cached_kernel_scales(pair, size, resampling) is None:
        return
    sr0, sr1, sc0, sc1 = src_window
    src = (sr0, sc0, sr1 - sr0, sc1 - sc0)
    for _, _, found in _position_blocks(pair, window, src, resampling == "nearest", max_error):
        found()


def _paste_index(
    target: np.ndarray,
    src: np.ndarray,
    nodata: float | None,
    lin: np.ndarray,
    inside: np.ndarray,
) -> None:
    """Copy into ``target`` the valid source pixels at flat indices ``lin`` where ``inside``.

    Validity is tested on the gathered values only, not on the whole source.
    """
    values = src.reshape(-1).take(lin)
    take = _valid_mask(values, nodata)
    take &= inside
    np.copyto(target, values.reshape(target.shape), where=take.reshape(target.shape))


def reproject(
    source: np.ndarray,
    *,
    src_transform: Affine,
    src_crs: Any,
    src_nodata: float | None,
    dst_shape: tuple[int, int],
    dst_transform: Affine,
    dst_crs: Any,
    dst_nodata: float | None = None,
    resampling: Resampling = "nearest",
    src_window_offset: tuple[int, int] = (0, 0),
    src_shape: tuple[int, int] | None = None,
    dst_window: Window4 | None = None,
    max_error: float = 0.125,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Warp a 2-D source array onto a destination grid, as GDAL's warper does.

    Parameters
    ----------
    source : numpy.ndarray
        2-D source pixels; may be a window of the full source image, its
        top-left pixel at ``src_window_offset`` of that image.
    src_transform : affine.Affine
        Transform of the full source image.
    src_crs : Any
        Source CRS (anything :class:`pyproj.CRS` accepts).
    src_nodata : float or None
        Source nodata value; nodata pixels (and NaN for floats) never
        contribute.
    dst_shape : tuple of int
        ``(height, width)`` of the destination grid.
    dst_transform : affine.Affine
        Destination grid transform.
    dst_crs : Any
        Destination CRS.
    dst_nodata : float, optional
        Value of destination pixels without valid source; default
        ``src_nodata``, else 0.
    resampling : {"nearest", "bilinear", "cubic", "average", "mode"}
        Resampling method.
    src_window_offset : tuple of int, default (0, 0)
        ``(row, col)`` of ``source[0, 0]`` in the full source image.
    src_shape : tuple of int, optional
        ``(height, width)`` of the full source image; only used to compute
        GDAL's kernel scale when the destination reaches past the source.
        Default: the window is assumed to reach the image's right and bottom
        edges.
    dst_window : tuple of int, optional
        ``(row_start, row_stop, col_start, col_stop)``: compute only this part
        of the destination grid. The result equals the same part of a
        whole-grid reprojection exactly (chunks mosaic seamlessly).
    max_error : float, default 0.125
        Error threshold of the approximate transformer in source pixels
        (GDAL's default); 0 for exact transformation of every point.
    out : numpy.ndarray, optional
        Array of the window's shape to write into.

    Returns
    -------
    numpy.ndarray
        The destination pixels (window), in the source dtype.
    """
    if resampling not in _RESAMPLINGS:
        raise ValueError(f"unknown resampling {resampling!r}; expected one of {_RESAMPLINGS}")
    src = np.asarray(source)
    if src.ndim != 2:
        raise ValueError(f"source must be 2-D, got shape {src.shape}")
    dst_shape = (int(dst_shape[0]), int(dst_shape[1]))
    r0, r1, c0, c1 = _check_window(dst_window, dst_shape)
    out_shape = (r1 - r0, c1 - c0)
    dtype = src.dtype
    if dst_nodata is None:
        dst_nodata = src_nodata if src_nodata is not None else 0
    if out is None:
        out = np.empty(out_shape, dtype=dtype)
    elif out.shape != out_shape:
        raise ValueError(f"out has shape {out.shape}, expected {out_shape}")
    fill = dst_nodata
    if dtype.kind in "iu" and (fill is None or math.isnan(fill)):
        fill = 0
    out[...] = fill
    if out.size == 0 or src.size == 0:
        return out

    off_r, off_c = int(src_window_offset[0]), int(src_window_offset[1])
    if src_shape is None:
        src_shape = (off_r + src.shape[0], off_c + src.shape[1])
    src_shape = (int(src_shape[0]), int(src_shape[1]))
    pair = _pair_key(dst_shape, dst_transform, dst_crs, src_transform, src_crs)
    tr = _transformer_of(pair)
    scales = _cached_kernel_scales(pair, src_shape, resampling)
    if scales is None:
        return out
    xscale, yscale = scales
    h, w = src.shape
    if resampling == "nearest":
        blocks = _position_blocks(pair, (r0, r1, c0, c1), (off_r, off_c, h, w), True, max_error)
        for b0, b1, found in blocks:
            lin, inside = found()
            _paste_index(out[b0 - r0 : b1 - r0], src, src_nodata, lin, inside)
        return out

    valid = _valid_mask(src, src_nodata)
    samples = _Src(src, valid)

    if resampling in ("average", "mode"):
        mxm = 2 * max(1, math.ceil(1.0 / xscale))
        mym = 2 * max(1, math.ceil(1.0 / yscale))
        xs_tl = np.arange(dst_shape[1], dtype=np.float64)
        xs_br = xs_tl + 1.0
        block = max(1, _BLOCK_PIXELS // max(1, out_shape[1]))
        for b0 in range(r0, r1, block):
            b1 = min(r1, b0 + block)
            rows = np.arange(b0, b1, dtype=np.float64)
            tlx, tly = _approx_rows(tr, xs_tl, rows, max_error, c0, c1)
            brx, bry = _approx_rows(tr, xs_br, rows + 1.0, max_error, c0, c1)
            val, good = _average_or_mode(
                samples,
                dtype,
                (tlx - off_c).ravel(),
                (tly - off_r).ravel(),
                (brx - off_c).ravel(),
                (bry - off_r).ravel(),
                resampling,
                (mxm, mym),
            )
            _write(out[b0 - r0 : b1 - r0], val, good, dtype, dst_nodata)
        return out

    blocks = _position_blocks(pair, (r0, r1, c0, c1), (off_r, off_c, h, w), False, max_error)
    for b0, b1, found in blocks:
        sx, sy, inside = found()
        sel = np.nonzero(inside)[0]
        cix = np.minimum((sx[sel] + _EPS).astype(np.int64), w - 1)
        ciy = np.minimum((sy[sel] + _EPS).astype(np.int64), h - 1)
        cok = valid[ciy, cix]
        # Bilinear and cubic need a valid pixel under the position.
        sel = sel[cok]
        psx, psy = sx[sel], sy[sel]
        if min(xscale, yscale) >= 0.95:
            kern = _bilinear4 if resampling == "bilinear" else _cubic4
            kv, kg = kern(samples, psx, psy)
        else:
            kv, kg = _general(samples, psx, psy, resampling, xscale, yscale)
        val = np.zeros(sx.shape)
        good = np.zeros(sx.shape, dtype=bool)
        val[sel] = kv
        good[sel] = kg
        _write(out[b0 - r0 : b1 - r0], val, good, dtype, dst_nodata)
    return out
