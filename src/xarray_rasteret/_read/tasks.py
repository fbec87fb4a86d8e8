"""What a read is asked to do: read options, tasks (a window of one band into an array), groups.

Every reader (the lazy arrays and the helpers) describes its read as
:class:`ReadTask` objects and hands them to :mod:`.fetch` or :mod:`.schedule`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._types import RasterSource, Window
from ..storage import resolve_store
from ..storage._signing import SigningStore

__all__ = ["Group", "ReadOptions", "ReadTask", "Staged", "TaskGroups"]


@dataclass(frozen=True)
class ReadOptions:
    """How reads reach storage; picklable, shared by every read of a dataset."""

    max_concurrent: int = 64
    """Most byte-range requests in flight at once within one read."""
    max_gap: int = 1024
    """Tiles closer than this many bytes are fetched in one request.

    Every request of a read is in flight at once, so reading through a gap saves
    no round trip; merging only (nearly) adjacent tiles keeps requests few
    without fetching bytes no pixel needs.
    """
    max_request_size: int = 1 * 2**20
    """Largest merged request, in bytes. Smaller requests let decoding start while
    the rest of a large read is still arriving; all are in flight together."""
    storage_options: dict[str, Any] = field(default_factory=dict, hash=False)
    """Options for the stores (credentials, endpoint, retries, ...)."""
    backend: Any = field(default=None, hash=False)
    """A user store with ``get_range_async``/``get_ranges_async``; else routed by URL."""
    check_unchanged: bool = True
    """Compare each response's object size (and ETag) with the indexed ones, at no
    extra request, and raise ObjectChangedError on a difference."""
    sign: Callable[[str], str] | None = field(default=None, hash=False)
    """Signs each request's href at read time (``href -> signed href``; see
    :class:`~xarray_rasteret.storage.SigningStore`); hrefs stay unsigned everywhere else."""
    on_error: str = "raise"
    """``"raise"``: a tile that cannot be read fails the read. ``"nodata"``: it reads
    as nodata and is reported (see :mod:`.failures`)."""

    def store_for(self, href: str) -> tuple[Any, str]:
        """The store that reads ``href`` and the path to ask it for (signing if ``sign``)."""
        if self.sign is None:
            return resolve_store(href, storage_options=self.storage_options, backend=self.backend)
        store = SigningStore(self.sign, storage_options=self.storage_options, backend=self.backend)
        return store, href


@dataclass
class ReadTask:
    """Read ``window`` of one band of one record into ``out`` (of the window's shape).

    With ``fill`` None, ``out`` is taken as already filled, and pixels outside
    the image and in sparse tiles are left as they are. With a ``fill`` value,
    ``out`` may be uninitialized (``np.empty``): those pixels are set to it and
    every other pixel is written by its tile, so no page of a large output is
    touched twice and first touches happen in the decode threads.
    """

    source: RasterSource
    level: int
    window: Window
    out: np.ndarray
    fill: float | None = None



class TaskGroups:
    """Tracks groups of read tasks: ``complete(g)`` is called once group ``g``'s tasks are read.

    Pass :meth:`task_done` as ``on_done`` to :func:`read_into`; call
    :meth:`complete_empty` for the groups without tasks.
    """

    def __init__(self, groups: Sequence[Sequence[ReadTask]], complete: Callable[[int], None]):
        # Each distinct task counts once (read_into reports it done once).
        distinct = [{id(task) for task in tasks} for tasks in groups]
        self._left = [len(ids) for ids in distinct]
        self._groups_of: dict[int, list[int]] = defaultdict(list)
        for g, ids in enumerate(distinct):
            for key in ids:
                self._groups_of[key].append(g)
        self._complete = complete

    def complete_empty(self) -> None:
        """Complete the groups that have no task."""
        for g, left in enumerate(self._left):
            if left == 0:
                self._complete(g)

    def task_done(self, task: ReadTask) -> None:
        """Record that ``task`` is read; complete the groups it was the last of."""
        for g in self._groups_of[id(task)]:
            self._left[g] -= 1
            if self._left[g] == 0:
                self._complete(g)


@dataclass(frozen=True)
class Staged:
    """A group's function in two steps: one that needs no pixels, then one that does.

    :func:`read_then` runs ``first`` in a decode thread as soon as the read
    starts, while its requests are in flight (the CPU is idle then), and
    ``then`` once both ``first`` and the group's tasks are done. Called
    directly, it runs both.
    """

    first: Callable[[], None]
    then: Callable[[], None]

    def __call__(self) -> None:
        self.first()
        self.then()


Group = tuple[Sequence[ReadTask], Callable[[], None] | None]
"""Read tasks and the function to run once they are read (None: nothing to run;
a :class:`Staged` function starts its first step when the read starts)."""
