"""Source positions of each block of destination pixels, computed before the pixels exist.

The positions of a warp depend only on the grids and windows, never on the
pixels: per block of destination rows they are computed once (GDAL's
approximate transformer plus its exact retry just outside the source) and
kept in :data:`._positions.positions`, where every record on the same grids,
and the :func:`xarray_rasteret.geo.reproject.reproject` call that follows a
:func:`prepare_positions`, finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
from affine import Affine

from ._approx import PixelTransformer, approx_rows
from ._kernels import EPS
from ._positions import positions
from ._source_window import (
    PairKey,
    Resampling,
    Window4,
    cached_kernel_scales,
    check_window,
    pair_key,
    transformer_of,
)

__all__ = ["BLOCK_PIXELS", "position_blocks", "position_bytes", "prepare_positions"]

# The methods whose source positions are kept in the position cache.
_CACHED = ("nearest", "bilinear", "cubic")
BLOCK_PIXELS = 1 << 17
"""Destination pixels processed at once by the footprint kernels (twice that for the others)."""


def _inside(sx: np.ndarray, sy: np.ndarray, h: int, w: int) -> np.ndarray:
    """Whether each position lies in the ``h`` x ``w`` source (GDAL's 1e-10 tolerance)."""
    inside = sx >= 0
    inside &= sy >= 0
    edge = sx + EPS
    inside &= edge <= w
    np.add(sy, EPS, out=edge)
    inside &= edge <= h
    return inside


def _block_positions(
    tr: PixelTransformer,
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
    sxg, syg = approx_rows(tr, xs_c, rows, max_error, c0, c1)
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
    tr: PixelTransformer,
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
    sx += EPS
    np.copyto(sx, 0.0, where=outside)
    sy += EPS
    np.copyto(sy, 0.0, where=outside)
    lin = sy.astype(np.intp)
    np.minimum(lin, h - 1, out=lin)
    lin *= w
    col = sx.astype(np.intp)
    np.minimum(col, w - 1, out=col)
    lin += col
    return lin, inside


def position_blocks(
    pair: PairKey,
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
    tr = transformer_of(pair)
    xs_c = np.arange(pair[0][1], dtype=np.float64) + 0.5
    block = max(1, (2 * BLOCK_PIXELS) // max(1, c1 - c0))
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
    window = check_window(dst_window, dst_shape)
    pair = pair_key(dst_shape, dst_transform, dst_crs, src_transform, src_crs)
    size = (int(src_shape[0]), int(src_shape[1]))
    if cached_kernel_scales(pair, size, resampling) is None:
        return
    sr0, sr1, sc0, sc1 = src_window
    src = (sr0, sc0, sr1 - sr0, sc1 - sc0)
    for _, _, found in position_blocks(pair, window, src, resampling == "nearest", max_error):
        found()
