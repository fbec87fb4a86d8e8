"""Source positions of destination pixels, kept for the next record on the same grids.

Every record of a time series on one grid (a Sentinel-2 tile, say) warped onto
one target grid maps each destination pixel to the same source position: the
positions depend on the two grids, the destination rows and columns and the
source window, never on the pixels. So the positions of each block of
destination rows are computed once and kept here, read-only, in a cache
bounded by bytes that drops the least recently used block first; the next
record on those grids only gathers its own pixels.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future

import numpy as np

__all__ = ["PositionCache", "positions"]


class PositionCache:
    """A thread-safe, byte-bounded LRU cache of tuples of read-only arrays.

    Parameters
    ----------
    max_bytes
        Most bytes kept; a value larger than this on its own is returned
        without being kept.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[np.ndarray, ...]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[Hashable, Future[tuple[np.ndarray, ...]]] = {}
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(
        self, key: Hashable, compute: Callable[[], tuple[np.ndarray, ...]]
    ) -> tuple[np.ndarray, ...]:
        """The arrays kept under ``key``, else ``compute()``'s, kept (made read-only).

        A key is computed by one thread at a time: a thread missing a key that
        another is computing waits for that result (or its exception) instead
        of computing it again. The lock is never held while computing.
        """
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
            pending = self._pending.get(key)
            if pending is None:
                mine: Future[tuple[np.ndarray, ...]] = Future()
                self._pending[key] = mine
        if pending is not None:
            return pending.result()
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            mine.set_exception(exc)
            raise
        for a in value:
            a.flags.writeable = False
        size = sum(a.nbytes for a in value)
        with self._lock:
            del self._pending[key]
            if size <= self.max_bytes and key not in self._items:
                self._items[key] = value
                self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= sum(a.nbytes for a in old)
        mine.set_result(value)
        return value

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()
            self._bytes = 0


positions = PositionCache(max_bytes=64 * 2**20)
"""The warper's cache: 64 MB holds the positions of about 7 million destination
pixels for nearest (an index and a flag each), about half as many for the
other kernels (two float64 positions and a flag)."""
