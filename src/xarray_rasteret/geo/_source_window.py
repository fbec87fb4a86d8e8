"""Which source pixels a warp needs: source windows and kernel scales (``ComputeSourceWindow``).

GDAL's ``GDALWarpOperation::ComputeSourceWindow`` samples the destination
window's edges in source pixels; the bounding box, widened by the kernel's
reach, is the source window, and the sampled extent sets the kernel scale
bilinear and cubic stretch by when downsampling. Both depend only on the pair
of grids, so they are cached per :func:`pair_key`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from affine import Affine

from ._approx import PixelTransformer
from ._kernels import RADIUS, kernel_scale
from .crs import cache_key

__all__ = [
    "RESAMPLINGS",
    "PairKey",
    "Resampling",
    "Window4",
    "cached_kernel_scales",
    "check_resampling",
    "check_window",
    "kernel_scales",
    "pair_key",
    "sampled_bounds",
    "source_window",
    "transformer_of",
]

Resampling = Literal["nearest", "bilinear", "cubic", "average", "mode"]

RESAMPLINGS = ("nearest", "bilinear", "cubic", "average", "mode")

Window4 = tuple[int, int, int, int]


def check_resampling(resampling: str) -> None:
    """Raise ``ValueError`` unless ``resampling`` is one of :data:`RESAMPLINGS`.

    Parameters
    ----------
    resampling : str
        The requested method.
    """
    if resampling not in RESAMPLINGS:
        raise ValueError(f"unknown resampling {resampling!r}; expected one of {RESAMPLINGS}")


def check_window(window: Window4 | None, shape: tuple[int, int]) -> Window4:
    """A destination window as ints, checked to lie inside ``shape``.

    Parameters
    ----------
    window : tuple of int or None
        ``(row_start, row_stop, col_start, col_stop)``; None for all of ``shape``.
    shape : tuple of int
        ``(height, width)`` of the destination grid.

    Returns
    -------
    tuple of int
    """
    if window is None:
        return (0, shape[0], 0, shape[1])
    r0, r1, c0, c1 = (int(v) for v in window)
    if not (0 <= r0 <= r1 <= shape[0] and 0 <= c0 <= c1 <= shape[1]):
        raise ValueError(f"dst_window {window} is not inside the destination shape {shape}")
    return (r0, r1, c0, c1)


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


def sampled_bounds(
    tr: PixelTransformer, window: Window4, dense: bool
) -> tuple[float, float, float, float, int] | None:
    """Bounds in source pixels of a destination window's sampled points.

    Parameters
    ----------
    tr : PixelTransformer
        Destination pixel to source pixel transformer.
    window : tuple of int
        ``(row_start, row_stop, col_start, col_stop)`` on the destination grid.
    dense : bool
        Every pixel corner of the perimeter plus an 11 x 11 interior grid;
        else GDAL's 21 points per edge.

    Returns
    -------
    tuple or None
        ``(xmin, ymin, xmax, ymax, failed points)``, or None when hardly any
        point transforms.
    """
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
    return cached_kernel_scales(
        pair_key(dst_shape, dst_transform, dst_crs, src_transform, src_crs),
        (int(src_shape[0]), int(src_shape[1])),
        resampling,
    )


PairKey = tuple[tuple[int, int], Affine, Any, Affine, Any]
"""``(dst_shape, dst_transform, dst_crs key, src_transform, src_crs key)``."""


def pair_key(
    dst_shape: tuple[int, int],
    dst_transform: Affine,
    dst_crs: Any,
    src_transform: Affine,
    src_crs: Any,
) -> PairKey:
    """A hashable key of a (destination grid, source grid) pair, for caches."""
    return (
        (int(dst_shape[0]), int(dst_shape[1])),
        Affine(*dst_transform[:6]),
        cache_key(dst_crs),
        Affine(*src_transform[:6]),
        cache_key(src_crs),
    )


def transformer_of(pair: PairKey) -> PixelTransformer:
    """The pixel transformer of a :func:`pair_key` (destination to source pixels).

    Parameters
    ----------
    pair : PairKey

    Returns
    -------
    PixelTransformer
    """
    _, dst_transform, dst_crs, src_transform, src_crs = pair
    return PixelTransformer.create(dst_transform, dst_crs, src_transform, src_crs)


@lru_cache(maxsize=1024)
def cached_kernel_scales(
    pair: PairKey, src_shape: tuple[int, int], resampling: str
) -> tuple[float, float] | None:
    """:func:`kernel_scales` of a :func:`pair_key`, cached per grid pair and method.

    Parameters
    ----------
    pair : PairKey
    src_shape : tuple of int
        ``(height, width)`` of the full source image.
    resampling : str

    Returns
    -------
    tuple of float or None
    """
    return _kernel_scales(transformer_of(pair), pair[0], src_shape, resampling)


def _kernel_scales(
    tr: PixelTransformer,
    dst_shape: tuple[int, int],
    src_shape: tuple[int, int],
    resampling: str,
) -> tuple[float, float] | None:
    b = sampled_bounds(tr, (0, dst_shape[0], 0, dst_shape[1]), dense=False)
    if b is None:
        return None
    minx, miny, maxx, maxy, failed = b
    if minx > src_shape[1] or maxx < 0 or miny > src_shape[0] or maxy < 0:
        return None
    radius = RADIUS[resampling]
    _, nx, extx, _ = _axis_window(minx, maxx, src_shape[1], dst_shape[1], radius, failed)
    _, ny, exty, _ = _axis_window(miny, maxy, src_shape[0], dst_shape[0], radius, failed)
    if nx <= 0 or ny <= 0:
        return None
    return (kernel_scale(dst_shape[1], nx, extx), kernel_scale(dst_shape[0], ny, exty))


def _margin(resampling: str, scale: float) -> int:
    radius = RADIUS[resampling]
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
    check_resampling(resampling)
    pair = pair_key(dst_shape, dst_transform, dst_crs, src_transform, src_crs)
    win = check_window(dst_window, pair[0])
    # The records of a time series on one grid ask for the same windows.
    return _cached_source_window(pair, (int(src_shape[0]), int(src_shape[1])), resampling, win)


@lru_cache(maxsize=4096)
def _cached_source_window(
    pair: PairKey, src_shape: tuple[int, int], resampling: str, win: Window4
) -> Window4 | None:
    if win[0] == win[1] or win[2] == win[3]:
        return None
    tr = transformer_of(pair)
    scales = cached_kernel_scales(pair, src_shape, resampling)
    if scales is None:
        return None
    b = sampled_bounds(tr, win, dense=True)
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
