"""Indexing of the lazy arrays: xarray's outer indexing on ``_read``, keys to windows.

Both lazy arrays (:mod:`.native`, :mod:`.mosaic`) turn an index key into its
bounding window on the output grid, read that, then take the key's exact
selection out of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from .._sync import sync
from .._types import Window

__all__ = ["OuterIndexedArray", "key_window", "select"]


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


def key_window(
    key: tuple[Any, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray, Window, tuple[Any, ...]]:
    """The time steps and bounding window of an outer ``(time, y, x)`` key.

    Returns
    -------
    times, window, post
        The output time steps the key selects (a scalar for an integer key),
        the bounding window of its ``y``/``x`` keys on the output grid, and the
        indexer that takes the key's exact selection out of a read of
        ``(times, window)`` (see :func:`select`).
    """
    tkey, ykey, xkey = key
    times = np.arange(shape[0])[tkey]
    y0, y1, ytake = _axis_window(ykey, shape[1])
    x0, x1, xtake = _axis_window(xkey, shape[2])
    post = (
        0 if np.ndim(times) == 0 else slice(None),
        ytake if ytake is not None else slice(None),
        xtake if xtake is not None else slice(None),
    )
    return times, Window(y0, y1, x0, x1), post
