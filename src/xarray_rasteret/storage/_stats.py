"""Request, byte, retry and time counters that users can read after a load."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

from typing_extensions import Buffer

T = TypeVar("T")

__all__ = ["ReadStats", "counted", "read_stats", "record_retry", "track"]


@dataclass
class ReadStats:
    """Counters of the byte-range requests made by xarray-rasteret.

    Examples
    --------
    >>> import xarray_rasteret as xr_rt
    >>> with xr_rt.track() as stats:  # doctest: +SKIP
    ...     ds.B04.isel(time=0).values
    >>> stats.requests, stats.bytes  # doctest: +SKIP
    (4, 1048576)
    """

    requests: int = 0
    """Byte-range requests completed (a retried request counts once)."""
    bytes: int = 0
    """Bytes received in those requests."""
    retries: int = 0
    """Attempts repeated after a transient fault."""
    seconds: float = 0.0
    """Wall-clock seconds the tracked block took (set when it ends)."""
    max_in_flight: int = 0
    """Largest number of requests in flight at once."""

    def __str__(self) -> str:
        return (
            f"{self.requests} requests, {self.bytes / 1e6:.2f} MB, {self.retries} retries, "
            f"max {self.max_in_flight} in flight, {self.seconds:.3f} s"
        )


class _Counters:
    """Process-wide totals plus the trackers currently open (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = ReadStats()
        self.active: list[ReadStats] = []
        self.in_flight = 0

    def _each(self) -> list[ReadStats]:
        return [self.total, *self.active]

    def start(self) -> None:
        with self.lock:
            self.in_flight += 1
            for s in self._each():
                s.max_in_flight = max(s.max_in_flight, self.in_flight)

    def finish(self, nbytes: int) -> None:
        with self.lock:
            self.in_flight -= 1
            for s in self._each():
                s.requests += 1
                s.bytes += nbytes

    def abort(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def retry(self) -> None:
        with self.lock:
            for s in self._each():
                s.retries += 1


_counters = _Counters()


async def counted(read: Awaitable[T], data_of: Callable[[T], Buffer]) -> T:
    """Await one request, counting it in flight and, once done, its bytes.

    Parameters
    ----------
    read
        The request.
    data_of
        Its response bytes, from its result.

    Returns
    -------
    The request's result.
    """
    _counters.start()
    try:
        result = await read
    except BaseException:
        _counters.abort()
        raise
    _counters.finish(len(memoryview(data_of(result))))
    return result


def record_retry() -> None:
    """Count one retried attempt (called by stores)."""
    _counters.retry()


def read_stats() -> ReadStats:
    """Return a copy of the process-wide counters since import.

    Returns
    -------
    ReadStats
        Totals of every request made in this process.
    """
    with _counters.lock:
        return replace(_counters.total)


@contextmanager
def track() -> Iterator[ReadStats]:
    """Count the requests made while the block runs.

    Yields
    ------
    ReadStats
        Updated live; ``seconds`` is set when the block ends.
    """
    stats = ReadStats()
    with _counters.lock:
        _counters.active.append(stats)
    t0 = time.perf_counter()
    try:
        yield stats
    finally:
        stats.seconds = time.perf_counter() - t0
        with _counters.lock:
            _counters.active.remove(stats)
