"""Concurrent reads on one event loop, merged into one read.

``asyncio.gather`` of many ``load_async`` calls (or dask chunks sharing the
library's loop) each plan their own windows, then wait in
:func:`read_batched`. It collects the tasks submitted during one turn of the
event loop and runs them as ONE :func:`~xarray_rasteret._fetch.read_into`: one
plan of the tiles, adjacent tiles coalesced across all the reads, each tile
decoded once and pasted, in the decode thread, into every window that wants
it. Each caller resumes as soon as its own tasks are complete.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._fetch import ReadOptions, ReadTask, TaskGroups, read_into

__all__ = ["read_batched"]


@dataclass(eq=False)
class _Batch:
    """The reads submitted with one set of options during one turn of the loop."""

    options: ReadOptions
    reads: list[tuple[Sequence[ReadTask], asyncio.Future[None]]] = field(default_factory=list)


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
        What :func:`~xarray_rasteret._fetch.read_into` raises for the merged
        read, if it fails before this call's tasks are complete.
    """
    loop = asyncio.get_running_loop()
    batches = _collecting.setdefault(loop, [])
    batch = next((b for b in batches if b.options == options), None)
    if batch is None:
        batch = _Batch(options)
        batches.append(batch)
        loop.call_soon(_start, loop, batch)
    done: asyncio.Future[None] = loop.create_future()
    batch.reads.append((tasks, done))
    await done


def _start(loop: asyncio.AbstractEventLoop, batch: _Batch) -> None:
    _collecting[loop].remove(batch)
    task = loop.create_task(_run(batch))
    _running.add(task)
    task.add_done_callback(_running.discard)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():  # a caller cancelled meanwhile
        fut.set_result(None)


async def _run(batch: _Batch) -> None:
    futures = [fut for _, fut in batch.reads]
    tracker = TaskGroups([tasks for tasks, _ in batch.reads], lambda i: _resolve(futures[i]))
    tracker.complete_empty()
    try:
        await read_into(
            [t for tasks, _ in batch.reads for t in tasks], batch.options,
            on_done=tracker.task_done,
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
    for fut in futures:
        _resolve(fut)
