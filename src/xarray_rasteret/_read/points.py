"""Point reads: one small read task per tile holding points, values picked after the read.

The points of one tile become one :class:`~.tasks.ReadTask` over their
bounding window, so thousands of points make a few hundred tasks and each tile
is fetched and decoded once.
"""

from __future__ import annotations

import numpy as np

from .._types import RasterSource, TileLayout, Window
from .tasks import ReadTask

__all__ = ["inside_image", "tile_reads"]


def inside_image(layout: TileLayout, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Which pixels ``(rows, cols)`` lie inside the image ``layout``."""
    return (rows >= 0) & (rows < layout.height) & (cols >= 0) & (cols < layout.width)


def tile_reads(
    src: RasterSource, level: int, rows: np.ndarray, cols: np.ndarray, *, fill: float | None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, ReadTask]]:
    """One read per tile holding pixels ``(rows, cols)`` (all inside image ``level``).

    Parameters
    ----------
    src, level
        The image.
    rows, cols
        Pixel indices, 1-D, inside the image.
    fill
        The tasks' fill value (None: their outputs start as zeros).

    Returns
    -------
    list of (which, r, c, out, task)
        Per tile: the positions in ``rows``/``cols`` of its pixels, their row and
        column in ``out`` (the task's output, their bounding window), and the
        task; after the read, ``out[r, c]`` are the values of ``which``.
    """
    layout = src.levels[level]
    tile = (rows // layout.tile_height) * layout.tiles_across + cols // layout.tile_width
    order = np.argsort(tile, kind="stable")
    bounds = np.flatnonzero(np.diff(tile[order])) + 1
    reads = []
    for which in np.split(order, bounds):
        if which.size == 0:
            continue
        r, c = rows[which], cols[which]
        r0, c0 = int(r.min()), int(c.min())
        window = Window(r0, int(r.max()) + 1, c0, int(c.max()) + 1)
        if fill is None:
            out = np.zeros(window.shape, dtype=src.dtype)
        else:
            out = np.empty(window.shape, dtype=src.dtype)
        reads.append((which, r - r0, c - c0, out, ReadTask(src, level, window, out, fill)))
    return reads
