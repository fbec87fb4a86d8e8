"""Scheduling of reads: concurrent reads merged into one, and work run as groups complete.

:func:`read_then` reads groups of tasks in one :func:`~.fetch.read_into` and runs
each group's function (resampling, say) as soon as its own tasks are read.

``asyncio.gather`` of many ``load_async`` calls (or dask chunks sharing the
library's loop) each plan their own windows, then wait in
:func:`read_batched`. It collects the tasks submitted during one turn of the
event loop and runs them as ONE :func:`~.fetch.read_into`: one
plan of the tiles, adjacent tiles coalesced across all the reads, each tile
decoded once and pasted, in the decode thread, into every window that wants
it. Each caller resumes as soon as its own tasks are complete, and under
``on_error="nodata"`` warns, in its own context (a dask worker's task, say), of
the failures that left nodata in its own tasks.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..storage import ReadFailure
from .failures import Failed, warn_failures
from .fetch import decode_pool, read_into
from .tasks import Group, ReadOptions, ReadTask, Staged, TaskGroups

__all__ = ["read_batched", "read_then"]


@dataclass(eq=False)
class _Batch:
    """The reads submitted with one set of options during one turn of the loop."""

    options: ReadOptions
    reads: list[tuple[Sequence[ReadTask], asyncio.Future[list[ReadFailure]]]] = field(
        default_factory=list
    )


# Batches still taking reads, per event loop; and the batches running (kept referenced).
_collecting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Batch]] = (
    weakref.WeakKeyDictionary()
)
_running: set[asyncio.Task[None]] = set()


async def read_batched(tasks: Sequence[ReadTask], options: ReadOptions) -> None:
    """Fill every task's ``out``, in one read with the others started in this turn of the loop.

    Parameters
    ----------
    tasks
        What to read and where to put it.
    options
        Storage and concurrency options; only reads with equal options are merged.

    Raises
    ------
    Exception
        What :func:`~.fetch.read_into` raises for the merged
        read, if it fails before this call's tasks are complete.
    """
    loop = asyncio.get_running_loop()
    batches = _collecting.setdefault(loop, [])
    batch = next((b for b in batches if b.options == options), None)
    if batch is None:
        batch = _Batch(options)
        batches.append(batch)
        loop.call_soon(_start, loop, batch)
    done: asyncio.Future[list[ReadFailure]] = loop.create_future()
    batch.reads.append((tasks, done))
    # Warned here, not by the merged read: this call's context is its caller's
    # (a dask task's worker, for distributed.warn) and it returns right after.
    warn_failures(await done)


def _start(loop: asyncio.AbstractEventLoop, batch: _Batch) -> None:
    _collecting[loop].remove(batch)
    task = loop.create_task(_run(batch))
    _running.add(task)
    task.add_done_callback(_running.discard)


def _resolve(fut: asyncio.Future[list[ReadFailure]], failures: list[ReadFailure]) -> None:
    if not fut.done():  # a caller cancelled meanwhile
        fut.set_result(failures)


async def _run(batch: _Batch) -> None:
    futures = [fut for _, fut in batch.reads]
    ids = [{id(t) for t in tasks} for tasks, _ in batch.reads]
    failed: list[Failed] = []

    def complete(i: int) -> None:
        # Every failure touching caller i's tasks is listed before its last task is done.
        _resolve(futures[i], [f.failure for f in failed if f.tasks & ids[i]])

    tracker = TaskGroups([tasks for tasks, _ in batch.reads], complete)
    tracker.complete_empty()
    try:
        await read_into(
            [t for tasks, _ in batch.reads for t in tasks], batch.options,
            on_done=tracker.task_done, failed=failed,
        )
    except asyncio.CancelledError:
        for fut in futures:
            fut.cancel()
        raise
    except BaseException as exc:
        for fut in futures:
            if not fut.done():
                fut.set_exception(exc)
        return
    for i in range(len(futures)):
        complete(i)
    # Failures in no caller's tasks (the ink planes planar CMYK reads instead): warned late
    # rather than not at all.
    every = set().union(*ids)
    warn_failures([f.failure for f in failed if not f.tasks & every])


async def read_then(
    groups: Sequence[Group],
    options: ReadOptions | None = None,
    *,
    on_tile: Callable[[int, int], None] | None = None,
    more: Callable[[], Sequence[Group]] | None = None,
) -> None:
    """Read the tasks of every group in one :func:`read_into`, then run each group's function.

    A group's function (resampling, say) runs in the decode threads as soon as
    its own tasks are read, while the other groups' tiles are still arriving.

    Parameters
    ----------
    groups
        ``(tasks, then)`` pairs; ``then`` may be None (nothing to run).
    options, on_tile
        As for :func:`read_into` (with ``more``, ``total`` counts the tiles of
        both reads once the second is planned).
    more
        A function returning further groups (planning them, say), run in a
        decode thread while ``groups`` are read, so that their requests are not
        held back by it; its groups are then read the same way.
    """
    if more is None:
        await _read_groups(groups, options, on_tile)
        return
    totals = [0, 0]

    def counter(i: int) -> Callable[[int, int], None] | None:
        if on_tile is None:
            return None

        def count(done: int, total: int) -> None:
            totals[i] = total
            on_tile(done, sum(totals))

        return count

    first = asyncio.ensure_future(_read_groups(groups, options, counter(0)))
    try:
        later = await asyncio.get_running_loop().run_in_executor(decode_pool(), more)
        await _read_groups(later, options, counter(1))
    except BaseException:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        raise
    await first


async def _read_groups(
    groups: Sequence[Group],
    options: ReadOptions | None,
    on_tile: Callable[[int, int], None] | None,
) -> None:
    loop = asyncio.get_running_loop()
    pool = decode_pool()
    firsts = {
        g: loop.run_in_executor(pool, fn.first)
        for g, (_, fn) in enumerate(groups)
        if isinstance(fn, Staged)
    }
    started: list[asyncio.Future[None]] = []

    async def after_first(g: int, then: Callable[[], None]) -> None:
        await firsts[g]
        await loop.run_in_executor(pool, then)

    def start(g: int) -> None:
        then = groups[g][1]
        if isinstance(then, Staged):
            started.append(asyncio.ensure_future(after_first(g, then.then)))
        elif then is not None:
            started.append(loop.run_in_executor(pool, then))

    tracker = TaskGroups([tasks for tasks, _ in groups], start)
    tracker.complete_empty()
    try:
        await read_into(
            [t for tasks, _ in groups for t in tasks], options, on_tile=on_tile,
            on_done=tracker.task_done,
        )
    except BaseException:
        await asyncio.gather(*started, *firsts.values(), return_exceptions=True)
        raise
    await asyncio.gather(*started)
