"""Run read tasks: fetch coalesced byte ranges concurrently, decode tiles off the loop.

This is the one read path. Every reader describes what it wants as
:class:`~.tasks.ReadTask` objects and awaits :func:`read_into`. A tile wanted by
several tasks (overlapping AOIs, the bands of one chunky file, concurrent reads
of overlapping windows) is fetched and decoded once.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .._types import TileEncoding, TileLayout
from ..errors import TruncatedFileError
from ..storage import CountingStore, redact_url
from ._planar_cmyk import expand
from ._samples import output_samples
from ._shared import Abandoned, Shared, claim_shared, settle
from ._tile_cache import tile_cache
from .decode import check_supported
from .failures import Failed, FailurePolicy
from .jobs import TileJob, decode, direct_target, paste
from .pages import populate
from .plan import TileRef, coalesce, tiles_for_window
from .tasks import ReadOptions, ReadTask

__all__ = ["decode_pool", "first_leaf", "plan_jobs", "read_into"]


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def decode_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    max_workers=os.cpu_count() or 2, thread_name_prefix="xarray-rasteret-decode"
                )
    return _pool


def _reset_pool_after_fork() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool_after_fork)


def plan_jobs(tasks: Sequence[ReadTask]) -> dict[str, list[TileJob]]:
    """Group the stored tiles that ``tasks`` need by href, each tile once."""
    jobs: dict[tuple[str, int, int], TileJob] = {}
    checked: set[TileEncoding] = set()
    for task in tasks:
        src = task.source
        enc = src.encoding
        if enc not in checked:
            check_supported(enc)
            checked.add(enc)
        layout = src.levels[task.level]
        plane, sample = (src.band_index, 0) if enc.planar else (0, src.band_index)
        tiles = tiles_for_window(layout, task.window, plane=plane)
        if task.fill is not None:
            _fill_uncovered(task, layout, tiles)
        for tile in tiles:
            if tile.sparse:
                continue
            key = (src.href, tile.start, tile.end)
            job = jobs.get(key)
            if job is None:
                job = TileJob(src, task.level, tile.row, tile.col, tile.start, tile.end)
                jobs[key] = job
            job.consumers.append((task, sample))
    by_href: dict[str, list[TileJob]] = defaultdict(list)
    for job in jobs.values():
        by_href[job.source.href].append(job)
    return by_href


def _fill_uncovered(task: ReadTask, layout: TileLayout, tiles: list[TileRef]) -> None:
    """Set the pixels of ``task.out`` that no stored tile will write to ``task.fill``."""
    w, out, fill = task.window, task.out, task.fill
    r0, r1 = max(w.row_start, 0) - w.row_start, min(w.row_stop, layout.height) - w.row_start
    c0, c1 = max(w.col_start, 0) - w.col_start, min(w.col_stop, layout.width) - w.col_start
    if r0 >= r1 or c0 >= c1:
        out[...] = fill
        return
    inside = (r0, c0, r1, c1) == (0, 0, w.row_stop - w.row_start, w.col_stop - w.col_start)
    if inside and not any(t.sparse for t in tiles):
        return  # every pixel is in a stored tile: most windows
    out[:r0] = fill
    out[r1:] = fill
    out[r0:r1, :c0] = fill
    out[r0:r1, c1:] = fill
    th, tw = layout.tile_height, layout.tile_width
    for t in tiles:
        if t.sparse:
            tr0 = max(t.row * th - w.row_start, r0)
            tr1 = min((t.row + 1) * th - w.row_start, r1)
            tc0 = max(t.col * tw - w.col_start, c0)
            tc1 = min((t.col + 1) * tw - w.col_start, c1)
            out[tr0:tr1, tc0:tc1] = fill


def _decode_and_paste(job: TileJob, data: memoryview) -> frozenset[int]:
    """Decode the rows of the tile any sharing read wants; paste every read's windows.

    The tile is decoded into this thread's scratch buffer and pasted for this
    read and for the reads already waiting for it (see :class:`Shared`).
    Returns the ids of the waiting jobs pasted; a read that starts waiting
    after this point, or wants more rows than were decoded, fetches the tile
    itself (see wait_shared).
    """
    shared = job.shared
    if (shared is None or not shared.waiting) and job.cache_key() is None:
        # No other read waits for the tile (one joining now fetches it itself).
        direct = direct_target(job)
        if direct is not None:
            decode(job, data, direct.stop, direct)
            return frozenset()
    rows = shared.rows if shared is not None else job.rows_wanted()
    # Read after ``rows``: a job that joined in between may want more rows.
    waiting = list(shared.waiting) if shared is not None else []
    tile = decode(job, data, rows)
    paste(job, tile)
    pasted = []
    used = job.samples()
    for other in waiting:
        if other.rows_wanted() <= rows:
            paste(other, tile)
            pasted.append(id(other))
            used |= other.samples()
    key = job.cache_key()
    if key is not None:
        # The other bands of this chunky tile paste from a copy (see _tile_cache).
        tile_cache.put(key, tile[:rows], output_samples(job.source.encoding), used)
    return frozenset(pasted)


def _take_cached(by_href: dict[str, list[TileJob]]) -> list[tuple[TileJob, np.ndarray]]:
    """Remove from ``by_href`` the jobs whose decoded tile is cached; return them with it."""
    hits = []
    for href in list(by_href):
        keep = []
        for job in by_href[href]:
            key = job.cache_key()
            tile = None if key is None else tile_cache.get(key, job.rows_wanted(), job.samples())
            if tile is None:
                keep.append(job)
            else:
                hits.append((job, tile))
        if keep:
            by_href[href] = keep
        else:
            del by_href[href]
    return hits


_expiry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.TimerHandle] = (
    weakref.WeakKeyDictionary()
)


def _schedule_expiry(loop: asyncio.AbstractEventLoop) -> None:
    """Expire idle cached tiles later on ``loop``, even if no read comes (one timer a loop)."""
    if len(tile_cache) == 0:
        return
    due = loop.time() + tile_cache.idle_seconds
    pending = _expiry.get(loop)
    if pending is not None and not pending.cancelled() and pending.when() <= due:
        return
    if pending is not None:
        pending.cancel()

    def expire() -> None:
        _expiry.pop(loop, None)
        tile_cache.expire()
        _schedule_expiry(loop)  # again while entries remain

    _expiry[loop] = loop.call_at(due, expire)


def _paste_all(hits: list[tuple[TileJob, np.ndarray]]) -> None:
    for job, tile in hits:
        paste(job, tile)


async def read_into(
    tasks: Sequence[ReadTask],
    options: ReadOptions | None = None,
    *,
    on_tile: Callable[[int, int], None] | None = None,
    on_done: Callable[[ReadTask], None] | None = None,
    failed: list[Failed] | None = None,
) -> None:
    """Fill every task's ``out`` with its window's pixels.

    Tiles are fetched in coalesced byte ranges, all files at once, at most
    ``options.max_concurrent`` requests in flight; each tile is decoded once in
    a worker thread and pasted into every task that wants it.

    Parameters
    ----------
    tasks
        What to read and where to put it.
    options
        Storage and concurrency options.
    on_tile
        Called as ``on_tile(done, total)`` with the tiles finished by each
        request and the number of tiles of the read (progress bars).
    on_done
        Called on the event loop as ``on_done(task)`` as soon as every tile of
        ``task`` is in its ``out`` (while other tasks may still be reading).
    failed
        Under ``on_error="nodata"``, the list to append the failures to, each
        before ``on_done`` of the tasks it touched; the caller then reports them.
        By default one ``ReadFailureWarning`` reports them as the read ends.

    Raises
    ------
    TruncatedFileError
        If a file ends before a tile its index says is there.
    ObjectNotFoundError, PermissionDeniedError, ReadFailedError, TileDecodeError
        For a tile that cannot be read; under ``on_error="nodata"`` it is nodata
        instead, and reported (see :mod:`.failures`).
    """
    options = options or ReadOptions()
    # Planar CMYK: each RGBA band is read as the raw ink planes it is made of.
    tasks, on_done, ready = expand(tasks, on_done, _fill_uncovered)
    if on_done is not None:
        for task in ready:
            on_done(task)
    by_href = plan_jobs(tasks)
    if not by_href:
        _completion_tracker(tasks, by_href, [], on_done)  # reports every task done
        return
    loop = asyncio.get_running_loop()
    total = sum(len(jobs) for jobs in by_href.values())
    hits = _take_cached(by_href)
    waits = claim_shared(by_href, loop)
    finished = _completion_tracker(tasks, by_href, waits, on_done, [job for job, _ in hits])
    read = _Read(options, loop, total=total, finished=finished, on_tile=on_tile, failed=failed)
    if hits:
        await loop.run_in_executor(read.pool, _paste_all, hits)
        for job, _ in hits:
            finished(job)
        if on_tile is not None:
            on_tile(len(hits), total)
    if not by_href and not waits:
        return
    failure: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as tg:
            _start_fetches(tg, by_href, options, read.fetch_range)
            # First in the decode queue: the outputs' pages fault in while the
            # requests travel, not in the first pastes (see .pages).
            populating = loop.run_in_executor(read.pool, populate, [t.out for t in tasks])
            for entry, job in waits:
                tg.create_task(read.wait_shared(entry, job))
    except BaseExceptionGroup as group:
        # The first failure is the story; the rest were cancelled or are its echoes.
        failure = first_leaf(group)
    finally:
        _schedule_expiry(loop)
    if failure is not None:
        # Raised here, not in the except block: there it would get the group (which
        # holds it) as its __context__, a cycle that pickling with tracebacks (tblib,
        # as dask.distributed sends errors to the client) never leaves.
        raise failure
    await populating
    if failed is None:
        read.policy.report()


class _Read:
    """The requests of one :func:`read_into` call: fetch, decode, paste, report."""

    def __init__(
        self,
        options: ReadOptions,
        loop: asyncio.AbstractEventLoop,
        *,
        total: int,
        finished: Callable[[TileJob], None],
        on_tile: Callable[[int, int], None] | None,
        failed: list[Failed] | None = None,
    ) -> None:
        self.options = options
        self.loop = loop
        self.pool = decode_pool()
        # A slot is held until its range is decoded, so at most max_concurrent
        # fetched buffers exist at once: memory stays bounded when decoding is
        # slower than the network.
        self.limit = asyncio.Semaphore(options.max_concurrent)
        self.total = total
        self.finished = finished
        self.on_tile = on_tile
        self.policy = FailurePolicy(options.on_error, failed)

    def give_up(
        self, href: str, start: int, end: int, jobs: list[TileJob], error: BaseException
    ) -> None:
        """Raise ``error``, or under on_error="nodata" fill ``jobs``' tiles and list them."""
        self.policy.give_up(href, start, end, jobs, error)
        for job in jobs:
            self.finished(job)

    async def decode_group(self, buf: memoryview, start: int, group: list[TileJob]) -> None:
        """Decode and paste the tiles of one response, in the decode threads.

        All are awaited, so no paste outlives a failed tile's error (see give_up).
        """
        decoded_group = await asyncio.gather(
            *(
                self.loop.run_in_executor(
                    self.pool, _decode_and_paste, job, buf[job.start - start : job.end - start]
                )
                for job in group
            ),
            return_exceptions=True,
        )
        failed = []
        for job, pasted in zip(group, decoded_group, strict=True):
            fut = job.shared.future if job.shared is not None else None
            job.shared = None  # the waiting reads hold the entry themselves
            if isinstance(pasted, BaseException):
                if fut is not None and not fut.done():
                    fut.set_exception(pasted)  # the waiting reads decide by their on_error
                    fut.exception()
                failed.append((job, pasted))
                continue
            if fut is not None and not fut.done():
                fut.set_result(pasted)
            self.finished(job)
        for job, error in failed:
            self.give_up(job.source.href, job.start, job.end, [job], error)

    async def fetch_range(self, store: CountingStore, path: str, href: str, start: int,
                          end: int, group: list[TileJob]) -> None:
        """Fetch ``[start, end)`` of ``href`` and decode the tiles in it; settle shared ones."""
        try:
            await self._fetch_and_decode(store, path, href, start, end, group)
        except BaseException as e:
            settle(group, e)
            self.give_up(href, start, end, group, e)  # raises unless on_error tolerates e
        else:
            settle(group, None)
        if self.on_tile is not None:
            self.on_tile(len(group), self.total)

    async def _fetch_and_decode(self, store: CountingStore, path: str, href: str, start: int,
                                end: int, group: list[TileJob]) -> None:
        src = group[0].source
        async with self.limit:
            if self.options.check_unchanged and src.size is not None:
                data = await store.get_range_checked_async(
                    path, start=start, end=end, size=src.size, etag=src.etag
                )
            else:
                data = await store.get_range_async(path, start=start, end=end)
            buf = memoryview(data).cast("B")
            if len(buf) < end - start:
                error = TruncatedFileError(
                    f"{redact_url(href)} ends before byte {end} (got {len(buf)} of "
                    f"{end - start} bytes from offset {start}): the file is truncated or "
                    "changed since it was indexed"
                )
                if self.options.on_error != "nodata":
                    raise error
                # The tiles that arrived whole are read; only the cut ones are nodata.
                whole = [job for job in group if job.end - start <= len(buf)]
                cut = [job for job in group if job.end - start > len(buf)]
                settle(cut, error)
                await self.decode_group(buf, start, whole)
                self.give_up(href, min(j.start for j in cut), end, cut, error)
                return
            await self.decode_group(buf, start, group)
            del data, buf

    async def wait_shared(self, entry: Shared[TileJob], job: TileJob) -> None:
        """Wait for another read to paste ``job``'s tile; fetch it here if it did not."""
        try:
            pasted = await asyncio.shield(entry.future)
        except Abandoned:
            pasted = frozenset()
        except Exception as e:  # the read fetching it failed: this read's on_error decides
            self.give_up(job.source.href, job.start, job.end, [job], e)
            if self.on_tile is not None:
                self.on_tile(1, self.total)
            return
        if id(job) not in pasted:
            # The other read stopped first, or had started decoding when this read
            # joined, or decoded fewer rows than this one wants: fetch here.
            job.shared = None
            inner, path = self.options.store_for(job.source.href)
            await self.fetch_range(CountingStore(inner), path, job.source.href, job.start,
                                   job.end, [job])
            return
        self.finished(job)
        if self.on_tile is not None:
            self.on_tile(1, self.total)

def _completion_tracker(
    tasks: Sequence[ReadTask],
    by_href: dict[str, list[TileJob]],
    waits: list[tuple[Shared[TileJob], TileJob]],
    on_done: Callable[[ReadTask], None] | None,
    cached: Sequence[TileJob] = (),
) -> Callable[[TileJob], None]:
    """``finished(job)``, to call once ``job`` is pasted: reports the tasks it completes."""
    if on_done is None:
        return lambda job: None
    left: dict[int, int] = {}
    jobs_of_read = [*(j for jobs in by_href.values() for j in jobs), *(j for _, j in waits)]
    for job in [*jobs_of_read, *cached]:
        for task, _ in job.consumers:
            left[id(task)] = left.get(id(task), 0) + 1
    for task in tasks:
        if id(task) not in left:
            on_done(task)  # nothing stored to read: fill values only

    def finished(job: TileJob) -> None:
        for task, _ in job.consumers:
            left[id(task)] -= 1
            if left[id(task)] == 0:
                on_done(task)

    return finished


def first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _start_fetches(
    tg: asyncio.TaskGroup,
    by_href: dict[str, list[TileJob]],
    options: ReadOptions,
    fetch_range: Callable[..., Any],
) -> None:
    for href, jobs in by_href.items():
        inner, path = options.store_for(href)
        store = CountingStore(inner)
        merged = coalesce(
            [(j.start, j.end) for j in jobs],
            max_gap=options.max_gap,
            max_size=options.max_request_size,
        )
        for br in merged:
            group = [jobs[i] for i in br.members]
            tg.create_task(fetch_range(store, path, href, br.start, br.end, group))
