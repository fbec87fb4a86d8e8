"""Choose the overview level GDAL would read from (``OVERVIEW_LEVEL=AUTO``).

GDAL (3.9 and later, checked against 3.10) picks, among the full-resolution
image and its overviews, the one with the largest downsampling factor that is
still below the requested factor times an oversampling threshold: 1.2 for
nearest-neighbour reads, 1.0 (plus 0.01 against rounding noise) for every
other resampling. The configuration option
``GDAL_OVERVIEW_OVERSAMPLING_THRESHOLD`` overrides the threshold; pass
``threshold=`` for the same effect. The requested factor is that of the less
reduced axis. Levels are scanned from the finest; the scan stops early at a
level within 0.1 of the requested factor. ``AUTO-n`` takes the level ``n``
steps finer than ``AUTO``; ``NONE`` the full resolution; an integer ``k`` the
``k``-th overview (level ``k + 1``).

The same rule serves reprojection: GDAL's warper (``gdalwarp`` and warped
VRTs) compares the ratio of the destination resolution to the source
resolution with the overview factors (:func:`reprojection_factor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from affine import Affine

from ._source_window import PairKey, pair_key, sampled_bounds, transformer_of

__all__ = ["choose_overview", "raster_io_factor", "reprojection_factor"]


def raster_io_factor(
    window_size: tuple[int, int], buffer_size: tuple[int, int]
) -> tuple[float, float]:
    """Downsampling factors of a read of a window into a smaller buffer.

    Parameters
    ----------
    window_size : tuple of int
        ``(width, height)`` of the full-resolution window read.
    buffer_size : tuple of int
        ``(width, height)`` of the output buffer.

    Returns
    -------
    tuple of float
        ``(x_factor, y_factor)``: source pixels per output pixel.
    """
    return (window_size[0] / buffer_size[0], window_size[1] / buffer_size[1])


def _desired(factor: float | tuple[float, float]) -> tuple[float, int]:
    """Return the requested factor and the axis (0 = x, 1 = y) it is measured on."""
    if isinstance(factor, (int, float)):
        return float(factor), 0
    fx, fy = float(factor[0]), float(factor[1])
    # GDAL uses the least reduced axis.
    return (fx, 0) if fx < fy else (fy, 1)


def choose_overview(
    level_sizes: Sequence[tuple[int, int]],
    factor: float | tuple[float, float],
    *,
    resampling: str = "nearest",
    rule: str | int = "AUTO",
    threshold: float | None = None,
) -> int:
    """Index of the level GDAL reads from (0 is the full resolution).

    Parameters
    ----------
    level_sizes : sequence of tuple of int
        ``(width, height)`` of each level, full resolution first.
    factor : float or tuple of float
        Requested downsampling factor (source pixels per output pixel), or
        ``(x_factor, y_factor)``.
    resampling : str, default "nearest"
        Resampling of the read: nearest uses GDAL's 1.2 oversampling
        threshold, every other method 1.0.
    rule : str or int, default "AUTO"
        ``"AUTO"``, ``"AUTO-n"``, ``"NONE"`` or the 0-based overview number
        (GDAL's ``OVERVIEW_LEVEL``).
    threshold : float, optional
        Oversampling threshold overriding the default (GDAL's
        ``GDAL_OVERVIEW_OVERSAMPLING_THRESHOLD``).

    Returns
    -------
    int
        Index into ``level_sizes``.
    """
    if not level_sizes:
        raise ValueError("level_sizes is empty")
    n_levels = len(level_sizes)
    if isinstance(rule, int) or (isinstance(rule, str) and rule.strip().lstrip("-").isdigit()):
        k = int(rule)
        if not 0 <= k < n_levels - 1:
            raise ValueError(f"overview {k} does not exist ({n_levels - 1} overviews)")
        return k + 1
    rule_u = str(rule).strip().upper()
    if rule_u == "NONE":
        return 0
    finer = 0
    if rule_u.startswith("AUTO-"):
        finer = int(rule_u[5:])
    elif rule_u != "AUTO":
        raise ValueError(f"unknown overview rule {rule!r}")

    desired, axis = _desired(factor)
    if threshold is None:
        threshold = 1.2 if resampling == "nearest" else 1.0
    if threshold == 1.0:
        threshold += 1e-2
    full_w, full_h = level_sizes[0]
    best, best_factor = 0, 0.0
    for i, (w, h) in enumerate(level_sizes[1:], start=1):
        if w > full_w or h > full_h or w <= 0 or h <= 0:
            continue
        ovr_factor = full_w / w if axis == 0 else full_h / h
        if ovr_factor >= desired * threshold or ovr_factor <= best_factor:
            continue
        best, best_factor = i, ovr_factor
        if abs(desired - ovr_factor) < 1e-1:
            break
    return max(0, best - finer)


def reprojection_factor(
    src_transform: Affine,
    src_crs: Any,
    dst_shape: tuple[int, int],
    dst_transform: Affine,
    dst_crs: Any,
) -> tuple[float, float]:
    """Source pixels per destination pixel of a reprojection, per axis.

    The destination grid's edges are transformed to source pixel coordinates;
    the extent they span divided by the destination size is the factor to
    compare with overview factors (:func:`choose_overview`).

    Parameters
    ----------
    src_transform : affine.Affine
        Full-resolution source transform.
    src_crs : Any
        Source CRS.
    dst_shape : tuple of int
        ``(height, width)`` of the destination grid.
    dst_transform : affine.Affine
        Destination grid transform.
    dst_crs : Any
        Destination CRS.

    Returns
    -------
    tuple of float
        ``(x_factor, y_factor)``.
    """
    # The records of a collection share a few grids: one answer per pair of grids.
    return _factor(pair_key(dst_shape, dst_transform, dst_crs, src_transform, src_crs))


@lru_cache(maxsize=1024)
def _factor(pair: PairKey) -> tuple[float, float]:
    dst_shape = pair[0]
    tr = transformer_of(pair)
    bounds = sampled_bounds(tr, (0, int(dst_shape[0]), 0, int(dst_shape[1])), dense=False)
    if bounds is None:
        return (1.0, 1.0)
    minx, miny, maxx, maxy, _ = bounds
    return ((maxx - minx) / dst_shape[1], (maxy - miny) / dst_shape[0])
