"""Tiles one read fetches while other concurrent reads wait for them (not fetched twice).

Concurrent reads on one event loop (dask chunks, ``load_async`` calls of
overlapping windows) that want the same tile register in a per-loop table: the
first fetches it and pastes it for the others; a waiting read learns the
outcome from a future (the ids of its jobs pasted, or the fetching read's
error, which the waiting read handles by its own ``on_error``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Abandoned", "Shared", "claim_shared", "settle"]


class TileJob(Protocol):
    """What the registry needs of a tile job of :mod:`.fetch` (its byte range, its entry)."""

    start: int
    end: int
    shared: Shared[Any] | None

    def rows_wanted(self) -> int: ...


J = TypeVar("J", bound=TileJob)


@dataclass
class Shared(Generic[J]):
    """A tile one read fetches while other concurrent reads wait for it.

    The read that fetches it also pastes it for the waiting reads, in the
    decoding thread, from that thread's scratch buffer: no decoded tile is kept
    (a fresh 2 MB array per shared tile cost 512 page faults). The result is the
    ids of the waiting jobs it pasted; a job that joined too late for that
    fetches the tile itself.
    """

    future: asyncio.Future[frozenset[int]]
    rows: int
    """Rows wanted by the reads sharing the tile so far (decoding stops there)."""
    waiting: list[J] = field(default_factory=list)
    """The other reads' jobs for this tile, in the order they joined."""


class Abandoned(Exception):
    """The read that was fetching a shared tile stopped before decoding it."""


# Tiles being fetched on each event loop: concurrent reads wanting the same
# tile (e.g. dask chunks or load_async calls of overlapping windows) wait for
# the read that fetches it instead of fetching it again.
_in_flight: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int, int], Shared[Any]]
] = weakref.WeakKeyDictionary()


def claim_shared(
    by_href: dict[str, list[J]], loop: asyncio.AbstractEventLoop
) -> list[tuple[Shared[J], J]]:
    """Keep in ``by_href`` the tiles no other read is fetching; return the others' entries."""
    registry = _in_flight.setdefault(loop, {})
    waits = []
    for href in list(by_href):
        own = []
        for job in by_href[href]:
            key = (href, job.start, job.end)
            entry = registry.get(key)
            if entry is None:
                entry = Shared(loop.create_future(), job.rows_wanted())
                job.shared = registry[key] = entry
                entry.future.add_done_callback(partial(_forget, registry, key))
                own.append(job)
            else:
                entry.rows = max(entry.rows, job.rows_wanted())
                entry.waiting.append(job)
                waits.append((entry, job))
        if own:
            by_href[href] = own
        else:
            del by_href[href]
    return waits


def _forget(
    registry: dict[tuple[str, int, int], Shared[Any]],
    key: tuple[str, int, int],
    fut: asyncio.Future[frozenset[int]],
) -> None:
    entry = registry.get(key)
    if entry is not None and entry.future is fut:
        del registry[key]


def settle(group: Sequence[TileJob], error: BaseException | None) -> None:
    """Give waiting reads this group's outcome (no-op for tiles already delivered)."""
    for job in group:
        if job.shared is None or job.shared.future.done():
            continue
        fut = job.shared.future
        if error is None or isinstance(error, asyncio.CancelledError):
            fut.set_exception(Abandoned())
        else:
            fut.set_exception(error)
        fut.exception()  # retrieved: no "never retrieved" log when nobody waits
