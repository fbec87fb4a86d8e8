"""One network client per event loop, created lazily and closed with its loop.

aiohttp sessions and refreshable credentials are bound to the loop they were
created on. A store may be used from the background loop of
:mod:`xarray_rasteret._sync` and from a caller's own loop (``async_getitem``),
so it keeps one client per running loop. The client is closed

* when its loop shuts down through :func:`asyncio.run` (or any runner that
  calls ``loop.shutdown_asyncgens()``): a tiny async generator registered on
  the loop is finalized then, and closes the client in its ``finally``;
* at interpreter exit, for loops still running in other threads (the
  background loop);
* when the owner calls :meth:`PerLoop.aclose` on that loop.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["PerLoop", "PerLoopClient"]

T = TypeVar("T")

_all: weakref.WeakSet[PerLoop[object]] = weakref.WeakSet()
_all_lock = threading.Lock()


class _Entry(Generic[T]):
    __slots__ = ("client", "guard", "ready")

    def __init__(self) -> None:
        self.client: T | None = None
        self.guard: AsyncGenerator[None, None] | None = None
        self.ready = asyncio.Event()


class PerLoop(Generic[T]):
    """Hold one client per event loop.

    Parameters
    ----------
    open
        Coroutine function making a client on the running loop.
    close
        Coroutine function closing a client made by ``open``.
    """

    def __init__(
        self, open: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[None]]
    ) -> None:
        self._open = open
        self._close = close
        self._entries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry[T]] = (
            weakref.WeakKeyDictionary()
        )
        with _all_lock:
            _all.add(self)  # type: ignore[arg-type]

    async def get(self) -> T:
        """Return the client of the running loop, making it on first use."""
        loop = asyncio.get_running_loop()
        entry = self._entries.get(loop)
        if entry is None:
            entry = _Entry()
            self._entries[loop] = entry
            try:
                entry.client = await self._open()
            except BaseException:
                del self._entries[loop]
                entry.ready.set()
                raise
            entry.guard = self._guard(loop, entry)
            await entry.guard.__anext__()  # registers with the loop's shutdown_asyncgens
            entry.ready.set()
        elif entry.client is None:
            await entry.ready.wait()  # another task on this loop is making it
            return await self.get()
        return entry.client

    async def _guard(
        self, loop: asyncio.AbstractEventLoop, entry: _Entry[T]
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self._drop(loop, entry)

    async def _drop(self, loop: asyncio.AbstractEventLoop, entry: _Entry[T]) -> None:
        if self._entries.get(loop) is entry:
            del self._entries[loop]
        client, entry.client = entry.client, None
        if client is not None:
            await self._close(client)

    async def aclose(self) -> None:
        """Close the client of the running loop, if there is one."""
        loop = asyncio.get_running_loop()
        entry = self._entries.get(loop)
        if entry is not None and entry.client is not None:
            guard = entry.guard
            await self._drop(loop, entry)
            if guard is not None:
                await guard.aclose()

    def close_elsewhere(self, timeout: float = 2.0) -> None:
        """Close clients on loops still running in other threads (used at exit)."""
        for loop, entry in list(self._entries.items()):
            if loop.is_closed() or not loop.is_running() or entry.client is None:
                continue
            try:
                future = asyncio.run_coroutine_threadsafe(self._drop(loop, entry), loop)
                future.result(timeout)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass

    def __len__(self) -> int:
        return sum(1 for e in self._entries.values() if e.client is not None)


@atexit.register
def _close_all_at_exit() -> None:
    with _all_lock:
        holders = list(_all)
    for holder in holders:
        holder.close_elsewhere()


class PerLoopClient:
    """Mixin for stores holding one client per event loop in ``self._clients``.

    Subclasses define ``_open`` and ``_close``. Clients are never pickled: an
    unpickled store makes new ones on first use.
    """

    _clients: PerLoop[Any]

    async def _open(self) -> Any:
        raise NotImplementedError

    @staticmethod
    async def _close(client: Any) -> None:
        raise NotImplementedError

    def _start_clients(self) -> None:
        self._clients = PerLoop(self._open, self._close)

    async def close(self) -> None:
        """Close the client of the running event loop (a new one is made on next use)."""
        await self._clients.aclose()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_clients"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start_clients()
