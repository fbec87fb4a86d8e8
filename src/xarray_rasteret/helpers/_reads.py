"""What the helpers read per (geometry, record) pair: one window of pixels per band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

from .._types import RasterSource, Window

__all__ = ["BandRead", "PairRead"]


@dataclass
class BandRead:
    """The pixels of one band in one (geometry, record) window."""

    source: RasterSource
    window: Window
    """Window read, in the record's pixel grid (native reads)."""
    transform: Affine
    """Affine transform of ``data``."""
    data: np.ndarray
    fill: float
    lattice: Affine
    """Transform of pixel (0, 0) of the lattice ``data`` lies on (the record's
    grid, or the target grid's lattice): coordinates computed from it and
    ``offset`` agree exactly between windows."""
    offset: tuple[int, int]
    """``(row, col)`` of ``data[0, 0]`` on ``lattice``."""

    def xy_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x, y)`` of ``data``."""
        h, w = self.data.shape
        t, (r, c) = self.lattice, self.offset
        return t.c + t.a * (c + np.arange(w) + 0.5), t.f + t.e * (r + np.arange(h) + 0.5)


@dataclass
class PairRead:
    """A geometry and a record it intersects, with one :class:`BandRead` per band."""

    geometry_index: int
    record_index: int
    geometry: shapely.Geometry
    """The geometry in the record's CRS."""
    crs: str | None
    bands: dict[str, BandRead]
