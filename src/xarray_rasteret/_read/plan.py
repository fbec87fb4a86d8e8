"""Pure read planning: pixel window -> tiles -> coalesced byte ranges. No I/O.

The fetcher (:mod:`._fetch`) runs what this module plans. Keeping planning
pure lets it be tested alone and keeps the I/O code small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._types import TileLayout, Window
from ..errors import MissingMetadataError

__all__ = ["ByteRange", "TileRef", "coalesce", "tiles_for_window"]


@dataclass(frozen=True)
class TileRef:
    """One tile (or strip) of an image that a window touches."""

    row: int
    """Tile row in the tile grid."""
    col: int
    """Tile column in the tile grid."""
    start: int
    """First byte of the tile in the file."""
    end: int
    """One past its last byte; ``start == end`` marks a sparse (absent) tile."""

    @property
    def sparse(self) -> bool:
        """True when the file stores no data for this tile (it reads as nodata)."""
        return self.end <= self.start


@dataclass(frozen=True)
class ByteRange:
    """A merged request: bytes ``[start, end)`` holding the tiles ``members``."""

    start: int
    end: int
    members: tuple[int, ...]
    """Indices (into the list given to :func:`coalesce`) of the ranges it holds."""


def tiles_for_window(layout: TileLayout, window: Window, *, plane: int = 0) -> list[TileRef]:
    """List the tiles of ``layout`` that intersect ``window``, row-major.

    Parameters
    ----------
    layout
        The tile layout of one image level.
    window
        Pixel window in that level; parts outside the image are ignored.
    plane
        Sample plane of a planar (band-interleaved) file, else 0.

    Returns
    -------
    list of TileRef
        Empty if the window misses the image.

    Raises
    ------
    MissingMetadataError
        If the tile table does not fit the image (loading an index refuses such
        layouts; this guards layouts made any other way).
    """
    th, tw = layout.tile_height, layout.tile_width
    if th < 1 or tw < 1 or plane < 0:
        raise _bad_layout(layout, f"tile size {tw} x {th} or plane {plane} is impossible")
    r0, r1 = max(window.row_start, 0), min(window.row_stop, layout.height)
    c0, c1 = max(window.col_start, 0), min(window.col_stop, layout.width)
    if r0 >= r1 or c0 >= c1:
        return []
    across = layout.tiles_across
    plane_base = plane * across * layout.tiles_down
    rows = range(r0 // th, (r1 - 1) // th + 1)
    cols = range(c0 // tw, (c1 - 1) // tw + 1)
    offsets, counts = layout.tile_offsets, layout.tile_byte_counts
    last = plane_base + rows[-1] * across + cols[-1]  # the largest index used below
    if last >= min(len(offsets), len(counts)):
        raise _bad_layout(
            layout,
            f"tile {last} (plane {plane}) is needed but there are {len(offsets)} tile "
            f"offsets and {len(counts)} byte counts",
        )
    out = []
    for tr in rows:
        for tc in cols:
            i = plane_base + tr * across + tc
            start = int(offsets[i])
            count = int(counts[i])
            out.append(TileRef(tr, tc, start, start + count if start > 0 else start))
    return out


def _bad_layout(layout: TileLayout, problem: str) -> MissingMetadataError:
    return MissingMetadataError(
        f"the tile table does not fit the {layout.width} x {layout.height} image in "
        f"{layout.tile_width} x {layout.tile_height} tiles: {problem}; the index or the "
        "file's header is corrupt: rebuild the collection with xarray_rasteret.build(...)"
    )


def coalesce(
    ranges: Sequence[tuple[int, int]], *, max_gap: int = 65536, max_size: int = 16 * 2**20
) -> list[ByteRange]:
    """Merge byte ranges of one file into few requests.

    Ranges closer than ``max_gap`` bytes merge, as long as the merged request
    stays within ``max_size`` bytes (a single range larger than that is kept
    whole). Overlapping and duplicate ranges always merge, so no byte is
    requested twice.

    Parameters
    ----------
    ranges
        ``(start, end)`` pairs, end exclusive, in any order.
    max_gap
        Largest hole (bytes) worth reading through to save a request.
    max_size
        Largest merged request in bytes.

    Returns
    -------
    list of ByteRange
        Sorted by start; each names the input indices it covers.

    Examples
    --------
    >>> merged = coalesce([(0, 10), (12, 20), (1000, 1010)], max_gap=5)
    >>> [(r.start, r.end, r.members) for r in merged]
    [(0, 20, (0, 1)), (1000, 1010, (2,))]
    """
    if not ranges:
        return []
    starts = np.fromiter((r[0] for r in ranges), dtype=np.int64, count=len(ranges))
    order = np.argsort(starts, kind="stable")
    out: list[ByteRange] = []
    cur_start, cur_end = ranges[order[0]]
    members = [int(order[0])]
    for i in order[1:]:
        s, e = ranges[i]
        overlaps = s < cur_end
        if overlaps or (s - cur_end <= max_gap and max(e, cur_end) - cur_start <= max_size):
            cur_end = max(cur_end, e)
            members.append(int(i))
        else:
            out.append(ByteRange(cur_start, cur_end, tuple(members)))
            cur_start, cur_end, members = s, e, [int(i)]
    out.append(ByteRange(cur_start, cur_end, tuple(members)))
    return out
