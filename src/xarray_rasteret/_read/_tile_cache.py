"""Decoded tiles of pixel-interleaved multi-sample files, kept for their other samples.

A chunky file's tile holds every sample of its pixels, but each band variable
of a dataset reads on its own (``ds.load()`` loads variable after variable), so
without this each band would fetch and decode every tile again: 31 bands cost
31 fetches and decodes of the same bytes. The read that decodes such a tile
keeps a copy here; the reads of the other samples paste from it instead of
fetching.

Bounded three ways: the total bytes held (:data:`MAX_BYTES`; a full cache
admits nothing more rather than evicting, so a scan larger than the cache
still serves its first tiles from memory instead of evicting each before its
next band comes for it), an entry is dropped once every sample of it has been
pasted, and entries unused for :data:`IDLE_SECONDS` expire (checked on every
use, and by a timer the read path sets on its event loop, so an idle process
does not keep them). The key holds the
file's size and ETag as indexed, so a tile of another version of a file is
never served.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["IDLE_SECONDS", "MAX_BYTES", "TileCache", "tile_cache"]

MAX_BYTES = 128 * 2**20
"""Decoded bytes held at most (e.g. 2,000 tiles of 64 x 64 x 8 uint16 samples)."""
IDLE_SECONDS = 60.0
"""An entry not used for this long is dropped: its other bands were not wanted."""

Key = tuple[str, int, int, int | None, object]
"""(href, start, end, size, etag) of one stored tile."""


@dataclass
class _Entry:
    tile: np.ndarray
    samples: int
    used: set[int] = field(default_factory=set)
    last: float = 0.0


class TileCache:
    """A thread-safe, byte-bounded map of stored tile -> its decoded rows."""

    def __init__(self, max_bytes: int = MAX_BYTES, idle_seconds: float = IDLE_SECONDS) -> None:
        self.max_bytes, self.idle_seconds = max_bytes, idle_seconds
        self._lock = threading.Lock()
        self._entries: dict[Key, _Entry] = {}
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key)
        self.nbytes -= entry.tile.nbytes

    def _expire(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if now - e.last > self.idle_seconds]:
            self._drop(key)

    def get(self, key: Key, rows: int, samples: set[int]) -> np.ndarray | None:
        """The tile's first ``rows`` rows at least (or None), noting ``samples`` as pasted."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(key)
            if entry is None or entry.tile.shape[0] < rows:
                return None
            entry.used |= samples
            entry.last = now
            if len(entry.used) >= entry.samples:
                self._drop(key)  # every band has had it
            return entry.tile

    def put(self, key: Key, tile: np.ndarray, samples: int, used: set[int]) -> None:
        """Keep a copy of ``tile`` (its valid rows) unless every sample was used or it is full."""
        if len(used) >= samples or tile.nbytes > self.max_bytes:
            return
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            old = self._entries.get(key)
            if old is not None and old.tile.shape[0] >= tile.shape[0]:
                old.used |= used
                return
            if self.nbytes + tile.nbytes - (old.tile.nbytes if old else 0) > self.max_bytes:
                return
            if old is not None:
                used = used | old.used
                self._drop(key)
            self._entries[key] = _Entry(tile.copy(), samples, set(used), now)
            self.nbytes += tile.nbytes

    def expire(self) -> None:
        """Drop the entries unused for :attr:`idle_seconds`."""
        with self._lock:
            self._expire(time.monotonic())

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self.nbytes = 0


tile_cache = TileCache()
"""The process's cache, shared by every read (and so by a dataset's band variables)."""



def _reset_after_fork() -> None:
    # The lock may have been held by another thread at the fork: replace it.
    tile_cache._lock = threading.Lock()
    tile_cache._entries = {}
    tile_cache.nbytes = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
