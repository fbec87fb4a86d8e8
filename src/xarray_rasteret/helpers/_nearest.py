"""``sample_points(max_distance_pixels=n)``: a point on nodata takes its nearest valid pixel.

rasteret 0.4's rule (after PostGIS ``ST_NearestValue``): search square rings of
Chebyshev radius 1, 2, ... ``n`` around the pixel holding the point; in the first
ring that has a valid pixel, take the one closest to the point (distance from
the point to the pixel's rectangle, in map units), the first in the ring's
order on a tie (top row, bottom row, left column, right column). Every ring's
pixels are read in one pass, through the same tile reads as the centre pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._read.points import inside_image, tile_reads
from .._read.tasks import ReadTask
from .._types import RasterSource
from ._points import PointSamples

__all__ = ["NearestSearch", "ring_offsets"]


def ring_offsets(radius: int) -> np.ndarray:
    """``(k, 3)`` rows of ``(ring, d_row, d_col)`` for rings 1 to ``radius``, in search order."""
    parts = []
    for r in range(1, radius + 1):
        across = np.arange(-r, r + 1)
        side = np.arange(-r + 1, r)
        d_row = np.concatenate([np.full(across.size, -r), np.full(across.size, r), side, side])
        d_col = np.concatenate([across, across, np.full(side.size, -r), np.full(side.size, r)])
        parts.append(np.column_stack([np.full(d_row.size, r), d_row, d_col]))
    return np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)


@dataclass
class NearestSearch:
    """The rings read around the entries of ``samples`` that sampled nodata."""

    entries: np.ndarray
    """Entries of the samples searched."""
    offsets: np.ndarray
    """``(k, 3)``: ring, row and column offset of each candidate (see :func:`ring_offsets`)."""
    values: np.ndarray
    """``(len(entries), k)`` float64 candidate values; NaN where off the image."""
    nodata: np.ndarray
    """Each searched entry's nodata value (NaN: none but NaN)."""
    pickers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    """(flat candidate positions, rows, cols, out), as :class:`PointSamples`'."""
    scale: np.ndarray
    """``(len(entries), 2)`` pixel height and width, for map-unit distances."""

    @classmethod
    def plan(
        cls,
        samples: PointSamples,
        sources: list[list[RasterSource]],
        nodata: np.ndarray,
        radius: int,
    ) -> tuple[NearestSearch, list[ReadTask]]:
        """Plan the ring reads of every entry whose centre pixel is nodata.

        ``sources[band][record]`` are the sources sampled, ``nodata`` each entry's
        nodata value (NaN: none), ``radius`` the largest ring.
        """
        values = samples.values.astype(np.float64)
        bad = ~samples.outside & ((values == nodata) | np.isnan(values))
        entries = np.flatnonzero(bad)
        offsets = ring_offsets(radius)
        centre = np.floor(samples.pixel[entries]).astype(np.int64)
        rows = centre[:, :1] + offsets[None, :, 1]
        cols = centre[:, 1:] + offsets[None, :, 2]
        search = cls(
            entries, offsets, np.full(rows.shape, np.nan), nodata[entries], [],
            np.zeros((entries.size, 2)),
        )  # fmt: skip
        tasks: list[ReadTask] = []
        keys = samples.band_index[entries] * (samples.record_index.max() + 1 if entries.size else 1)
        keys = keys + samples.record_index[entries]
        for key in np.unique(keys):
            mine = np.flatnonzero(keys == key)
            e = entries[mine[0]]
            src = sources[int(samples.band_index[e])][int(samples.record_index[e])]
            search.scale[mine] = (abs(src.transform.e), abs(src.transform.a))
            r, c = rows[mine], cols[mine]
            inside = inside_image(src.levels[0], r, c)
            flat = (mine[:, None] * offsets.shape[0] + np.arange(offsets.shape[0]))[inside]
            for which, rr, cc, out, task in tile_reads(src, 0, r[inside], c[inside], fill=None):
                tasks.append(task)
                search.pickers.append((flat[which], rr, cc, out))
        return search, tasks

    def apply(self, samples: PointSamples) -> None:
        """After the read: give each searched entry its nearest valid value, if any."""
        flat = self.values.reshape(-1)
        for where, rows, cols, out in self.pickers:
            flat[where] = out[rows, cols]
        if not self.entries.size:
            return
        v = self.values
        valid = ~np.isnan(v) & (v != self.nodata[:, None])
        ring = np.where(valid, self.offsets[None, :, 0], np.iinfo(np.int64).max)
        first_ring = ring.min(axis=1)
        found = valid.any(axis=1)
        # Distance from the point to each candidate pixel's rectangle, in map units.
        point = samples.pixel[self.entries]
        centre = np.floor(point)
        top = centre[:, :1] + self.offsets[None, :, 1]
        left = centre[:, 1:] + self.offsets[None, :, 2]
        dy = np.maximum(np.maximum(top - point[:, :1], point[:, :1] - (top + 1)), 0)
        dx = np.maximum(np.maximum(left - point[:, 1:], point[:, 1:] - (left + 1)), 0)
        dist = (dy * self.scale[:, :1]) ** 2 + (dx * self.scale[:, 1:]) ** 2
        dist = np.where(valid & (ring == first_ring[:, None]), dist, np.inf)
        best = np.argmin(dist, axis=1)  # the first in ring order on a tie
        chosen = v[np.arange(len(v)), best]
        target = self.entries[found]
        samples.values[target] = chosen[found].astype(samples.values.dtype)
