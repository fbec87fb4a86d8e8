"""The lazy ``(time, y, x)`` array behind each variable of a rasteret Dataset.

Indexing turns into a window per record, then into one read of the tiles
the key touches (:func:`~xarray_rasteret._batch.read_batched`: reads started
together, e.g. by ``asyncio.gather`` of ``load_async`` calls, are merged into
one, so a tile several of them want is fetched and decoded once). Pointwise (vectorized)
indexing of ``y``/``x`` reads, per record, one window per tile around the
points in it, and never builds the outer product of their rows and columns.
The array holds only metadata (no open handles or clients), so it pickles for
dask distributed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from xarray.core import indexing

from .._read.points import inside_image, tile_reads
from .._read.schedule import read_batched
from .._read.tasks import ReadOptions, ReadTask
from .._sync import sync
from .._types import RasterSource
from .indexing import OuterIndexedArray, key_window, select
from .internal_masks import lean_mask

__all__ = ["Placement", "RasteretArray", "lean_source"]

_NO_TILES = np.zeros(0, dtype=np.int64)


def lean_source(src: RasterSource, level: int, shared: dict[Any, Any]) -> RasterSource:
    """``src`` with only what a read of ``level`` needs, its equal parts shared via ``shared``.

    A dask task pickles the sources of its chunk: the other levels keep their
    sizes but drop their tile tables, ``extra`` (unused by reads) is dropped,
    and equal CRS strings and encodings are one object, pickled once.
    """
    levels = tuple(
        lv if i == level else replace(lv, tile_offsets=_NO_TILES, tile_byte_counts=_NO_TILES)
        for i, lv in enumerate(src.levels)
    )
    return replace(
        src,
        levels=levels,
        crs=shared.setdefault(("crs", src.crs), src.crs),
        encoding=shared.setdefault(src.encoding, src.encoding),
        extra={},
        mask=lean_mask(src, level, lambda m, at: lean_source(m, at, shared)),
    )


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
        Value of pixels no record covers (nodata, else 0). Each record's read
        fills with that record's own nodata (records of a band may differ).
    options
        Storage and concurrency options for every read.
    progress
        A label: each read (without dask) shows a tqdm bar over its tiles.
    """

    def __init__(
        self,
        placements: Sequence[Placement],
        shape: tuple[int, int, int],
        dtype: np.dtype,
        fill: float,
        options: ReadOptions,
        progress: str | None = None,
    ) -> None:
        self.placements = tuple(placements)
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.fill = fill
        self.options = options
        self.progress = progress

    async def _read_tasks(self, tasks: Sequence[ReadTask]) -> None:
        if self.progress is None:
            await read_batched(tasks, self.options)
        else:
            from .progress import read_with_bar

            await read_with_bar(tasks, self.options, self.progress)

    def shard(self, start: int, stop: int) -> RasteretArray:
        """The array of time steps ``[start, stop)`` only (what one dask task carries)."""
        placements = self.placements[start:stop]
        shape = (len(placements), self.shape[1], self.shape[2])
        return RasteretArray(placements, shape, self.dtype, self.fill, self.options)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (for a dask task) with lean sources: done here, not in shard(),
        # so that only the shards a compute ships pay for it.
        shared: dict[Any, Any] = {}
        placements = [
            replace(p, source=lean_source(p.source, p.level, shared)) for p in self.placements
        ]
        return (RasteretArray, (placements, self.shape, self.dtype, self.fill, self.options))

    def plan(self, key: tuple[Any, ...]) -> tuple[np.ndarray, list[ReadTask], tuple[Any, ...]]:
        """Allocate the output of ``key`` and the read tasks that fill it (no I/O).

        Returns
        -------
        out, tasks, post
            The output array (bounding box of the key), the tasks writing into
            it, and the indexer that turns it into the key's exact selection.
        """
        times, win, post = key_window(key, self.shape)
        # Uninitialized: the read writes every pixel (tiles, or the fill value).
        out = np.empty((np.size(times), *win.shape), dtype=self.dtype)
        tasks = []
        if win.row_stop > win.row_start and win.col_stop > win.col_start:
            for i, t in enumerate(np.atleast_1d(times)):
                p = self.placements[int(t)]
                w = win.relative_to(p.row_offset, p.col_offset)
                # Each record's own fill (its nodata): records may differ in it.
                tasks.append(ReadTask(p.source, p.level, w, out[i], fill=p.source.fill))
        return out, tasks, post

    async def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        out, tasks, post = self.plan(key)
        await self._read_tasks(tasks)
        return select(out, post)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        if _is_pointwise(key):
            return sync(self._read_points(key.tuple))
        return super().__getitem__(key)

    async def async_getitem(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        """Read ``key`` on the caller's event loop (xarray's ``load_async``)."""
        if _is_pointwise(key):
            return await self._read_points(key.tuple)
        return await super().async_getitem(key)

    async def _read_points(self, key: tuple[Any, ...]) -> np.ndarray:
        """A vectorized key: the pixels at the broadcast ``(time, y, x)`` indices.

        As ``np.ndarray.vindex`` (xarray's rule for vectorized keys): the
        broadcast dimensions of the arrays, then those of any slices.
        """
        tt, ys, xs = _vindex_arrays(key, self.shape)
        out = np.full(tt.shape, self.fill, dtype=self.dtype)
        flat_t, flat_y, flat_x, flat_out = tt.ravel(), ys.ravel(), xs.ravel(), out.reshape(-1)
        picks = []
        tasks = []
        for t in np.unique(flat_t):
            p = self.placements[int(t)]
            layout = p.source.levels[p.level]
            at = np.flatnonzero(flat_t == t)
            rows, cols = flat_y[at] - p.row_offset, flat_x[at] - p.col_offset
            inside = inside_image(layout, rows, cols)
            flat_out[at[~inside]] = p.source.fill
            at, rows, cols = at[inside], rows[inside], cols[inside]
            for which, r, c, window, task in tile_reads(
                p.source, p.level, rows, cols, fill=p.source.fill
            ):
                tasks.append(task)
                picks.append((at[which], r, c, window))
        await self._read_tasks(tasks)
        for at, r, c, window in picks:
            flat_out[at] = window[r, c]
        return out


def _vindex_arrays(
    key: tuple[Any, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast integer indices (negative ones wrapped) of a vectorized key."""
    arrays = [np.asarray(k) for k in key if not isinstance(k, slice)]
    array_shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
    n_slices = sum(isinstance(k, slice) for k in key)
    parts = []
    seen = 0
    for k, size in zip(key, shape, strict=True):
        if isinstance(k, slice):
            idx = np.arange(size)[k]
            # Slice dimensions go last, in order.
            lead = len(array_shape) + seen
            parts.append(idx.reshape((1,) * lead + (-1,) + (1,) * (n_slices - seen - 1)))
            seen += 1
        else:
            a = np.asarray(k, dtype=np.int64)
            a = np.where(a < 0, a + size, a)
            parts.append(a.reshape(a.shape + (1,) * n_slices))
    tt, ys, xs = np.broadcast_arrays(*parts)
    return tt, ys, xs


def _is_pointwise(key: indexing.ExplicitIndexer) -> bool:
    """A vectorized key picking pixels by y and x arrays (not rows or columns)."""
    if not isinstance(key, indexing.VectorizedIndexer):
        return False
    _, y, x = key.tuple
    return not isinstance(y, slice) and not isinstance(x, slice)
