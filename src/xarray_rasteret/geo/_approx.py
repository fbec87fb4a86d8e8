"""GDAL's approximate transformer: destination pixels to source pixels.

One job: map destination pixel positions to fractional source pixel positions
as GDAL's warper does, i.e. the exact pixel transformer (destination affine ->
PROJ via pyproj -> inverse source affine, :class:`PixelTransformer`) and the
approximate transformer on top of it (:func:`approx_rows`: per row, linear
interpolation between exactly transformed points with bisection while the
error exceeds the threshold), applied over the fixed ``_SEGMENT``-wide row
segments of the destination grid (:func:`segment_coords`, the core of
:func:`xarray_rasteret.geo.reproject.source_coords`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from pyproj import Transformer

from .crs import projection


def _gdal_inverse(t: Affine) -> tuple[float, float, float, float, float, float]:
    """Invert an affine transform as GDAL's ``GDALInvGeoTransform`` does.

    Returns the coefficients ``(c, a, b, f, d, e)`` in GDAL's geotransform
    order so that ``col = c + x*a + y*b`` and ``row = f + x*d + y*e``.
    """
    gt0, gt1, gt2, gt3, gt4, gt5 = t.c, t.a, t.b, t.f, t.d, t.e
    if gt2 == 0.0 and gt4 == 0.0 and gt1 != 0.0 and gt5 != 0.0:
        return (-gt0 / gt1, 1.0 / gt1, 0.0, -gt3 / gt5, 0.0, 1.0 / gt5)
    det = gt1 * gt5 - gt2 * gt4
    if det == 0.0:
        raise ValueError(f"source transform is not invertible: {t!r}")
    inv = 1.0 / det
    i1 = gt5 * inv
    i4 = -gt4 * inv
    i2 = -gt2 * inv
    i5 = gt1 * inv
    i0 = (gt2 * gt3 - gt0 * gt5) * inv
    i3 = (-gt1 * gt3 + gt0 * gt4) * inv
    return (i0, i1, i2, i3, i4, i5)


@dataclass
class PixelTransformer:
    """Exact destination-pixel -> source-pixel transformation."""

    dst: Affine
    inv_src: tuple[float, float, float, float, float, float]
    proj: Transformer | None

    @classmethod
    def create(
        cls, dst_transform: Affine, dst_crs: Any, src_transform: Affine, src_crs: Any
    ) -> PixelTransformer:
        proj = None
        if dst_crs is not None and src_crs is not None:
            proj = projection(dst_crs, src_crs)
        elif (dst_crs is None) != (src_crs is None):
            raise ValueError("both CRSs or neither must be given")
        return cls(Affine(*dst_transform[:6]), _gdal_inverse(Affine(*src_transform[:6])), proj)

    def __call__(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Transform destination pixel coordinates to source pixel coordinates.

        Points that cannot be transformed come back as NaN.
        """
        t = self.dst
        px = np.asarray(px, dtype=np.float64)
        py = np.asarray(py, dtype=np.float64)
        # GDAL: x = gt0 + px*gt1 + py*gt2, y = gt3 + px*gt4 + py*gt5
        x = t.c + px * t.a + py * t.b
        y = t.f + px * t.d + py * t.e
        if self.proj is not None:
            x, y = self.proj.transform(x, y, errcheck=False)
            x = np.asarray(x, dtype=np.float64)
            y = np.asarray(y, dtype=np.float64)
        i0, i1, i2, i3, i4, i5 = self.inv_src
        sx = i0 + x * i1 + y * i2
        sy = i3 + x * i4 + y * i5
        bad = ~(np.isfinite(sx) & np.isfinite(sy))
        if bad.any():
            sx = np.where(bad, np.nan, sx)
            sy = np.where(bad, np.nan, sy)
        return sx, sy


def _ranges(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand half-open ranges: (index of the range, value) for every element."""
    lengths = np.maximum(stops - starts, 0)
    total = int(lengths.sum())
    seg = np.repeat(np.arange(starts.size), lengths)
    if total == 0:
        return seg, np.zeros(0, dtype=np.int64)
    first = np.cumsum(lengths) - lengths
    pos = np.arange(total, dtype=np.int64) - np.repeat(first, lengths)
    return seg, np.repeat(starts, lengths) + pos


_SEGMENT = 1024
"""Width (destination pixels) of the row segments approximated independently."""


def approx_rows(
    tr: PixelTransformer,
    xs: np.ndarray,
    ys: np.ndarray,
    max_error: float,
    c0: int,
    c1: int,
) -> tuple[np.ndarray, np.ndarray]:
    """GDAL's approximate transformer applied to rows of destination points.

    Each row ``r`` holds the points ``(xs[k], ys[r])``; the rows are
    approximated independently, as GDAL's warp kernel calls the transformer
    once per destination row. Only columns ``c0:c1`` are returned, but the
    subdivision is decided on the whole row, so results do not depend on the
    requested columns.

    Returns
    -------
    tuple of numpy.ndarray
        Source column and row coordinates, each of shape ``(len(ys), c1 - c0)``.
    """
    nrows = ys.size
    width = c1 - c0
    out_x = np.empty((nrows, width), dtype=np.float64)
    out_y = np.empty((nrows, width), dtype=np.float64)
    if nrows == 0 or width <= 0:
        return out_x, out_y
    exact, linear = _pieces(tr, xs, ys, max_error, c0, c1)
    _fill_linear(out_x, out_y, linear, xs, c0, c1)
    _fill_exact(out_x, out_y, exact, tr, xs, ys, c0, c1)
    return out_x, out_y


_Exact = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Pieces of rows transformed exactly: ``(row, start, stop)`` in column indices."""
_Linear = tuple[np.ndarray, ...]
"""Accepted linear pieces: ``(row, start, stop, sx, sy, dx, dy)``."""
_Open = tuple[np.ndarray, ...]
"""Pieces still to test: ``(row, start, n, sx, mx, ex, sy, my, ey)``, their first,
middle and last points transformed exactly."""


def _pieces(
    tr: PixelTransformer,
    xs: np.ndarray,
    ys: np.ndarray,
    max_error: float,
    c0: int,
    c1: int,
) -> tuple[list[_Exact], list[_Linear]]:
    """Split every row into pieces interpolated linearly and pieces transformed exactly."""
    n = xs.size
    nrows = ys.size
    exact: list[_Exact] = []
    linear: list[_Linear] = []
    rows_all = np.arange(nrows)
    if n <= 5 or max_error <= 0:
        exact.append(
            (rows_all, np.zeros(nrows, dtype=np.int64), np.full(nrows, n, dtype=np.int64))
        )
        return exact, linear
    mid = (n - 1) // 2
    px = np.concatenate(
        [np.full(nrows, xs[0]), np.full(nrows, xs[mid]), np.full(nrows, xs[n - 1])]
    )
    py = np.concatenate([ys, ys, ys])
    tx, ty = tr(px, py)
    tx = tx.reshape(3, nrows)
    ty = ty.reshape(3, nrows)
    fail = ~np.isfinite(tx).all(axis=0)
    if fail.any():
        exact.append(
            (
                rows_all[fail],
                np.zeros(int(fail.sum()), dtype=np.int64),
                np.full(int(fail.sum()), n, dtype=np.int64),
            )
        )
    ok = ~fail
    seg_row = rows_all[ok]
    seg_start = np.zeros(seg_row.size, dtype=np.int64)
    seg_n = np.full(seg_row.size, n, dtype=np.int64)
    sx, mx, ex = tx[0, ok], tx[1, ok], tx[2, ok]
    sy, my, ey = ty[0, ok], ty[1, ok], ty[2, ok]

    while seg_row.size:
        # Drop pieces that cannot reach the requested columns.
        keep = (seg_start < c1) & (seg_start + seg_n > c0)
        if not keep.all():
            seg_row, seg_start, seg_n = seg_row[keep], seg_start[keep], seg_n[keep]
            sx, mx, ex = sx[keep], mx[keep], ex[keep]
            sy, my, ey = sy[keep], my[keep], ey[keep]
            if not seg_row.size:
                break
        m = (seg_n - 1) // 2
        x0 = xs[seg_start]
        xm = xs[seg_start + m]
        xe = xs[seg_start + seg_n - 1]
        dx = (ex - sx) / (xe - x0)
        dy = (ey - sy) / (xe - x0)
        err = np.abs((sx + dx * (xm - x0)) - mx) + np.abs((sy + dy * (xm - x0)) - my)
        bad = err > max_error
        good = ~bad
        if good.any():
            linear.append(
                (
                    seg_row[good],
                    seg_start[good],
                    seg_start[good] + seg_n[good],
                    sx[good],
                    sy[good],
                    dx[good],
                    dy[good],
                )
            )
        if not bad.any():
            break
        opened = (seg_row, seg_start, seg_n, sx, mx, ex, sy, my, ey)
        halves = _bisect(tr, xs, ys, tuple(a[bad] for a in opened), m[bad], exact)
        seg_row, seg_start, seg_n, sx, mx, ex, sy, my, ey = halves
    return exact, linear


def _bisect(
    tr: PixelTransformer,
    xs: np.ndarray,
    ys: np.ndarray,
    bad: _Open,
    m_b: np.ndarray,
    exact: list[_Exact],
) -> _Open:
    """Halve the pieces whose middle point missed; halves of at most five points go to ``exact``."""
    row_b, st_b, n_b, sx_b, mx_b, ex_b, sy_b, my_b, ey_b = bad
    base1 = m_b <= 5
    base2 = (n_b - m_b) <= 5
    # New exact points: middle and end of half 1, middle of half 2.
    ia = st_b + np.maximum(m_b - 1, 0) // 2
    ib = st_b + m_b - 1
    ic = st_b + m_b + (n_b - m_b - 1) // 2
    need1 = ~base1
    need2 = ~base2
    pxs = np.concatenate([xs[ia[need1]], xs[ib[need1]], xs[ic[need2]]])
    pys = np.concatenate([ys[row_b[need1]], ys[row_b[need1]], ys[row_b[need2]]])
    qx, qy = tr(pxs, pys)
    k1 = int(need1.sum())
    ax = np.full(row_b.size, np.nan)
    ay = np.full(row_b.size, np.nan)
    bx = np.full(row_b.size, np.nan)
    by = np.full(row_b.size, np.nan)
    cx = np.full(row_b.size, np.nan)
    cy = np.full(row_b.size, np.nan)
    ax[need1], ay[need1] = qx[:k1], qy[:k1]
    bx[need1], by[need1] = qx[k1 : 2 * k1], qy[k1 : 2 * k1]
    cx[need2], cy[need2] = qx[2 * k1 :], qy[2 * k1 :]
    fail = (need1 & ~(np.isfinite(ax) & np.isfinite(bx))) | (need2 & ~np.isfinite(cx))
    # Failures and base halves are transformed exactly.
    exact += [
        (row_b[fail], st_b[fail], (st_b + n_b)[fail]),
        (row_b[~fail & base1], st_b[~fail & base1], (st_b + m_b)[~fail & base1]),
        (row_b[~fail & base2], (st_b + m_b)[~fail & base2], (st_b + n_b)[~fail & base2]),
    ]
    h1 = ~fail & ~base1
    h2 = ~fail & ~base2
    return (
        np.concatenate([row_b[h1], row_b[h2]]),
        np.concatenate([st_b[h1], (st_b + m_b)[h2]]),
        np.concatenate([m_b[h1], (n_b - m_b)[h2]]),
        np.concatenate([sx_b[h1], mx_b[h2]]),
        np.concatenate([ax[h1], cx[h2]]),
        np.concatenate([bx[h1], ex_b[h2]]),
        np.concatenate([sy_b[h1], my_b[h2]]),
        np.concatenate([ay[h1], cy[h2]]),
        np.concatenate([by[h1], ey_b[h2]]),
    )


def _fill_linear(
    out_x: np.ndarray,
    out_y: np.ndarray,
    linear: list[_Linear],
    xs: np.ndarray,
    c0: int,
    c1: int,
) -> None:
    """Write the linear pieces' interpolated positions (columns ``c0:c1``) into the outputs."""
    n = xs.size
    nrows = out_x.shape[0]
    rows_all = np.arange(nrows)
    # Rows tend to be bisected alike, so the pieces share a few (start, stop)
    # spans: each span is one broadcast.
    for row, start, stop, lsx, lsy, ldx, ldy in linear:
        spans, which = np.unique(start * (n + 1) + stop, return_inverse=True)
        for k, span in enumerate(spans.tolist()):
            start_k, stop_k = divmod(span, n + 1)
            a, b = max(start_k, c0), min(stop_k, c1)
            if a >= b:
                continue
            sel = np.flatnonzero(which == k)
            rows = row[sel]
            every_row = rows.size == nrows and bool((rows == rows_all).all())
            dist = xs[a:b] - xs[start_k]
            for out, base, slope in ((out_x, lsx[sel], ldx[sel]), (out_y, lsy[sel], ldy[sel])):
                if every_row:  # in place, no temporary
                    target = out[:, a - c0 : b - c0]
                    np.multiply(slope[:, None], dist, out=target)
                    target += base[:, None]
                else:
                    out[rows, a - c0 : b - c0] = base[:, None] + slope[:, None] * dist


def _fill_exact(
    out_x: np.ndarray,
    out_y: np.ndarray,
    exact: list[_Exact],
    tr: PixelTransformer,
    xs: np.ndarray,
    ys: np.ndarray,
    c0: int,
    c1: int,
) -> None:
    """Transform the exact pieces' points (columns ``c0:c1``) and write them into the outputs."""
    if not exact:
        return
    row = np.concatenate([piece[0] for piece in exact])
    a = np.maximum(np.concatenate([piece[1] for piece in exact]), c0)
    b = np.minimum(np.concatenate([piece[2] for piece in exact]), c1)
    seg, col = _ranges(a, b)
    if col.size:
        qx, qy = tr(xs[col], ys[row[seg]])
        out_x[row[seg], col - c0] = qx
        out_y[row[seg], col - c0] = qy


def segment_coords(
    tr: PixelTransformer,
    dst_width: int,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    max_error: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates of the destination pixel centres in rows ``r0:r1``, columns ``c0:c1``.

    The window must lie inside a destination grid ``dst_width`` pixels wide.
    """
    ys = np.arange(r0, r1, dtype=np.float64) + 0.5
    # GDAL warps large outputs in chunks, each approximating its own rows, so its
    # error stays far below max_error there. Rows are approximated here in fixed
    # segments of the destination grid: the same for any window (chunks agree),
    # identical to GDAL's whole-row scheme for grids up to _SEGMENT wide.
    cols_parts, rows_parts = [], []
    for s0 in range(c0 - c0 % _SEGMENT, c1, _SEGMENT):
        s1 = min(s0 + _SEGMENT, dst_width)
        xs = np.arange(s0, s1, dtype=np.float64) + 0.5
        cx, cy = approx_rows(tr, xs, ys, max_error, max(c0, s0) - s0, min(c1, s1) - s0)
        cols_parts.append(cx)
        rows_parts.append(cy)
    if not cols_parts:
        empty = np.empty((ys.size, 0), dtype=np.float64)
        return empty, empty.copy()
    if len(cols_parts) == 1:
        return cols_parts[0], rows_parts[0]
    return np.concatenate(cols_parts, axis=1), np.concatenate(rows_parts, axis=1)
