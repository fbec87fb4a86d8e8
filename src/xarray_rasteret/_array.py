"""The lazy ``(time, y, x)`` array behind each variable of a rasteret Dataset.

Indexing turns into a window per record, then into one :func:`read_into`
call: only the tiles the key touches are fetched. The array holds only
metadata (no open handles or clients), so it pickles for dask distributed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from ._fetch import ReadOptions, ReadTask, read_into
from ._sync import sync
from ._types import RasterSource, Window

__all__ = ["OuterIndexedArray", "Placement", "RasteretArray", "select"]


@dataclass(frozen=True)
class Placement:
    """Where one record's image lies in the output grid."""

    source: RasterSource
    """The band of the record to read."""
    level: int
    """Image level read (0 full resolution, then overviews)."""
    row_offset: int
    """Output row of the image's row 0."""
    col_offset: int
    """Output column of the image's column 0."""


def _axis_window(key: Any, size: int) -> tuple[int, int, Any]:
    """Bounding ``[start, stop)`` of one axis key, and what to take from it after."""
    if isinstance(key, slice):
        start, stop, step = key.indices(size)
        if step == 1:
            return start, max(start, stop), None
        idx = np.arange(start, stop, step)
    else:
        idx = np.asarray(key)
    if idx.size == 0:
        return 0, 0, idx
    lo = int(idx.min())
    return lo, int(idx.max()) + 1, idx - lo


def select(out: np.ndarray, post: tuple[Any, ...]) -> np.ndarray:
    """Turn a key's bounding-box output into its exact outer selection."""
    it, iy, ix = post
    out = out[it]
    # Outer indexing: apply the per-axis takes one after the other.
    if not isinstance(iy, slice):
        out = np.take(out, iy, axis=-2)
    if not isinstance(ix, slice):
        out = np.take(out, ix, axis=-1)
    return out


class OuterIndexedArray(BackendArray):
    """Base of the lazy arrays: xarray's outer indexing, sync and async, on ``_read``."""

    shape: tuple[int, ...]

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._getitem
        )

    async def async_getitem(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        """Read ``key`` on the caller's event loop (xarray's ``load_async``)."""
        return await indexing.async_explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._read
        )

    def _getitem(self, key: tuple[Any, ...]) -> np.ndarray:
        return sync(self._read(key))

    async def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        raise NotImplementedError


class RasteretArray(OuterIndexedArray):
    """A lazy array over the records of one band, on one output grid.

    Parameters
    ----------
    placements
        One per time step, in order.
    shape
        ``(time, y, x)`` of the output grid.
    dtype
        Output dtype (the band's native dtype).
    fill
        Value of pixels no record covers (nodata, else 0).
    options
        Storage and concurrency options for every read.
    """

    def __init__(
        self,
        placements: Sequence[Placement],
        shape: tuple[int, int, int],
        dtype: np.dtype,
        fill: float,
        options: ReadOptions,
    ) -> None:
        self.placements = tuple(placements)
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.fill = fill
        self.options = options

    def plan(self, key: tuple[Any, ...]) -> tuple[np.ndarray, list[ReadTask], tuple[Any, ...]]:
        """Allocate the output of ``key`` and the read tasks that fill it (no I/O).

        Returns
        -------
        out, tasks, post
            The output array (bounding box of the key), the tasks writing into
            it, and the indexer that turns it into the key's exact selection.
        """
        tkey, ykey, xkey = key
        times = np.arange(self.shape[0])[tkey]
        y0, y1, ytake = _axis_window(ykey, self.shape[1])
        x0, x1, xtake = _axis_window(xkey, self.shape[2])
        # Uninitialized: the read writes every pixel (tiles, or the fill value).
        out = np.empty((np.size(times), y1 - y0, x1 - x0), dtype=self.dtype)
        tasks = []
        if y1 > y0 and x1 > x0:
            for i, t in enumerate(np.atleast_1d(times)):
                p = self.placements[int(t)]
                w = Window(
                    y0 - p.row_offset, y1 - p.row_offset, x0 - p.col_offset, x1 - p.col_offset
                )
                tasks.append(ReadTask(p.source, p.level, w, out[i], fill=self.fill))
        post = (
            0 if np.ndim(times) == 0 else slice(None),
            ytake if ytake is not None else slice(None),
            xtake if xtake is not None else slice(None),
        )
        return out, tasks, post

    async def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        out, tasks, post = self.plan(key)
        await read_into(tasks, self.options)
        return select(out, post)
