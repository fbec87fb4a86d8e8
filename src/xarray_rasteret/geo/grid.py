"""Pixel grids: a CRS, a north-up affine transform and a shape.

A :class:`RasterGrid` says where every pixel of an output array lies. Records
whose grids share CRS, resolution and pixel alignment are placed on the union
of their extents without resampling (:func:`union_grid`); each record then
occupies a :class:`~xarray_rasteret._types.Window` of the union
(:meth:`RasterGrid.window_of`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from affine import Affine

from .._types import RasterSource, Window
from ..errors import ReprojectionRequiredError, UnsupportedTiffError
from .crs import as_crs, authority_or_name

__all__ = ["RasterGrid", "same_crs", "union_grid"]

_REL_TOL = 1e-9
_PIXEL_TOL = 1e-6


@lru_cache(maxsize=256)
def _crs_equal(a: str, b: str) -> bool:
    return bool(as_crs(a).equals(as_crs(b), ignore_axis_order=True))


def same_crs(a: str | None, b: str | None) -> bool:
    """Whether two CRS strings (WKT or authority codes) name the same CRS."""
    if a is None or b is None:
        return a is b
    return a == b or _crs_equal(a, b)


@dataclass(frozen=True)
class RasterGrid:
    """A georeferenced pixel grid (PixelIsArea, north-up or south-up).

    Parameters
    ----------
    crs
        WKT or authority code; None for pixel-index grids of ungeoreferenced files.
    transform
        Affine transform from (col, row) to (x, y) of pixel corners.
    width, height
        Grid size in pixels.
    """

    crs: str | None
    transform: Affine
    width: int
    height: int

    @classmethod
    def of(cls, source: RasterSource, level: int = 0) -> RasterGrid:
        """The pixel grid of image ``level`` of ``source`` (0: full resolution)."""
        lv = source.levels[level]
        return cls(source.crs, source.level_transform(level), lv.width, lv.height)

    def __post_init__(self) -> None:
        t = self.transform
        if t.b != 0 or t.d != 0:
            raise UnsupportedTiffError(
                f"rotated or sheared transform {tuple(t)[:6]} is not supported; "
                "warp the file to a north-up grid first (e.g. gdalwarp)"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size ``(x step, y step)``; y is negative for north-up grids."""
        return (self.transform.a, self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the pixel edges."""
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return (min(xs), min(ys), max(xs), max(ys))

    def xy_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x, y)`` as 1-D float64 arrays."""
        t = self.transform
        x = t.c + t.a * (np.arange(self.width) + 0.5)
        y = t.f + t.e * (np.arange(self.height) + 0.5)
        return x, y

    def crop(self, window: Window) -> RasterGrid:
        """The grid of a window of this grid."""
        t = self.transform @ Affine.translation(window.col_start, window.row_start)
        return RasterGrid(self.crs, t, window.width, window.height)

    def is_aligned_with(self, other: RasterGrid) -> bool:
        """Whether ``other`` has the same CRS, pixel size and pixel alignment."""
        a, b = self.transform, other.transform
        if not (
            math.isclose(a.a, b.a, rel_tol=_REL_TOL) and math.isclose(a.e, b.e, rel_tol=_REL_TOL)
        ):
            return False
        col = (b.c - a.c) / a.a
        row = (b.f - a.f) / a.e
        if abs(col - round(col)) > _PIXEL_TOL or abs(row - round(row)) > _PIXEL_TOL:
            return False
        return same_crs(self.crs, other.crs)

    def window_of(self, other: RasterGrid) -> Window:
        """Where an aligned grid ``other`` lies in this grid's pixel space."""
        a, b = self.transform, other.transform
        col = round((b.c - a.c) / a.a)
        row = round((b.f - a.f) / a.e)
        return Window(row, row + other.height, col, col + other.width)

    def window_for_bounds(self, bounds: tuple[float, float, float, float]) -> Window:
        """The pixel window covering ``bounds`` (in this grid's CRS), snapped outwards.

        A pixel is included when the bounds overlap it by more than a tiny
        tolerance; the window is not clipped to the grid.
        """
        xmin, ymin, xmax, ymax = bounds
        t = self.transform
        cols = [(x - t.c) / t.a for x in (xmin, xmax)]
        rows = [(y - t.f) / t.e for y in (ymin, ymax)]
        eps = 1e-6
        c0 = math.floor(min(cols) + eps)
        c1 = math.ceil(max(cols) - eps)
        r0 = math.floor(min(rows) + eps)
        r1 = math.ceil(max(rows) - eps)
        return Window(r0, max(r1, r0 + 1), c0, max(c1, c0 + 1))

    def clip(self, window: Window) -> Window | None:
        """``window`` intersected with this grid, or None if they are disjoint."""
        r0, r1 = max(window.row_start, 0), min(window.row_stop, self.height)
        c0, c1 = max(window.col_start, 0), min(window.col_stop, self.width)
        if r0 >= r1 or c0 >= c1:
            return None
        return Window(r0, r1, c0, c1)


def union_grid(grids: Sequence[RasterGrid], what: Sequence[str] | None = None) -> RasterGrid:
    """The smallest grid holding every grid of ``grids`` on their shared pixel lattice.

    Parameters
    ----------
    grids
        Grids that must share CRS, resolution and alignment.
    what
        Names of the records, for the error message.

    Raises
    ------
    ReprojectionRequiredError
        If any grid differs in CRS, resolution or alignment from the first.
    """
    if not grids:
        raise ValueError("union_grid needs at least one grid")
    ref = grids[0]
    offsets = []
    for i, g in enumerate(grids):
        if not ref.is_aligned_with(g):
            name = (what[i] if what else f"record {i}")
            first = (what[0] if what else "record 0")
            raise ReprojectionRequiredError(
                f"{name!s} is on a different pixel grid than {first!s} "
                f"(crs {_short(g.crs)} vs {_short(ref.crs)}, resolution {g.resolution} vs "
                f"{ref.resolution}); pass a target grid (crs=..., resolution=...) to resample, "
                "or select records on one grid (filters=..., bbox=...)"
            )
        offsets.append(ref.window_of(g))
    r0 = min(w.row_start for w in offsets)
    c0 = min(w.col_start for w in offsets)
    r1 = max(w.row_stop for w in offsets)
    c1 = max(w.col_stop for w in offsets)
    t = ref.transform @ Affine.translation(c0, r0)
    return RasterGrid(ref.crs, t, c1 - c0, r1 - r0)


def _short(crs: str | None) -> str:
    if crs is None:
        return "none"
    if len(crs) < 40:
        return crs
    return authority_or_name(crs)
