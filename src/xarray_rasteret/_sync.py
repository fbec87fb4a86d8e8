"""The one bridge from synchronous code into the async core.

A daemon thread runs one event loop per process, started lazily. Synchronous
callers (xarray ``__getitem__``, dask tasks, the helpers) submit coroutines to
it with :func:`sync`; async callers await the coroutines on their own loop.
After a fork the loop is started anew in the child.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["get_loop", "sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _reset_after_fork() -> None:
    global _loop, _thread, _lock
    _loop = None
    _thread = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the background event loop, starting its thread on first use."""
    global _loop, _thread
    if _loop is None:
        with _lock:
            if _loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="xarray-rasteret-io", daemon=True
                )
                thread.start()
                _loop, _thread = loop, thread
    return _loop


def sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the background loop and wait for its result.

    Parameters
    ----------
    coro
        The coroutine to run.
    timeout
        Seconds to wait before giving up; None waits as long as it takes.

    Returns
    -------
    The coroutine's result; its exception is re-raised here.

    Raises
    ------
    RuntimeError
        If called from the background loop itself (it would deadlock).
    """
    loop = get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError(
            "xarray_rasteret.sync() was called from its own I/O loop; await the coroutine instead"
        )
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    return future.result(timeout)
