"""Request, byte, retry and time counters that users can read after a load."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

from typing_extensions import Buffer

T = TypeVar("T")

__all__ = [
    "ReadFailure",
    "ReadStats",
    "counted",
    "read_stats",
    "record_decode",
    "record_failure",
    "record_retry",
    "track",
]

# The process-wide totals keep the most recent failures only: a long-running
# process reading with on_error="nodata" must not grow without bound.
# ``track()`` blocks keep every failure of their block.
MAX_KEPT_FAILURES = 1000


@dataclass(frozen=True)
class ReadFailure:
    """One byte range whose tiles read as nodata under ``on_error="nodata"``.

    Holds only text: no exception object (whose arguments and notes could carry
    what a store was given) and no credential (the URL is redacted).
    """

    href: str
    """The object's URL or path, redacted (no user info, no signed query)."""
    start: int
    """First byte of the failed range."""
    end: int
    """End (exclusive) of the failed range."""
    tiles: tuple[tuple[int, int, int], ...]
    """``(level, row, col)`` of each tile that reads as nodata (level 0: full resolution)."""
    error: str
    """The error's class name, e.g. ``"ObjectNotFoundError"``."""
    message: str
    """The error's message (redacted as every message of the package)."""

    def __str__(self) -> str:
        n = len(self.tiles)
        return (
            f"{self.href} bytes {self.start}-{self.end - 1} ({n} tile{'s' if n != 1 else ''}): "
            f"{self.error}: {self.message}"
        )


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
    tiles_decoded: int = 0
    """Tiles and strips decoded."""
    decoded_bytes: int = 0
    """Bytes of pixels the decoders produced for them. A deflate tile of which a
    read needs only the top rows is inflated only that far (plus a margin of at
    most 66 KiB), so this may be less than ``tile_bytes``."""
    tile_bytes: int = 0
    """Bytes those tiles hold decoded in full."""
    failures: list[ReadFailure] = field(default_factory=list)
    """Byte ranges read as nodata under ``on_error="nodata"``, in the order they failed
    (empty under ``on_error="raise"``, which raises instead). The process-wide
    totals of :func:`read_stats` keep the last 1000; a :func:`track` block keeps all."""

    def __str__(self) -> str:
        failed = f", {len(self.failures)} failed ranges" if self.failures else ""
        return (
            f"{self.requests} requests, {self.bytes / 1e6:.2f} MB, {self.retries} retries, "
            f"max {self.max_in_flight} in flight, {self.seconds:.3f} s{failed}"
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

    def decode(self, decoded: int, whole: int) -> None:
        with self.lock:
            for s in self._each():
                s.tiles_decoded += 1
                s.decoded_bytes += decoded
                s.tile_bytes += whole

    def fail(self, failure: ReadFailure) -> None:
        with self.lock:
            for s in self._each():
                s.failures.append(failure)
            if len(self.total.failures) > MAX_KEPT_FAILURES:
                del self.total.failures[:-MAX_KEPT_FAILURES]


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


def record_decode(decoded: int, whole: int) -> None:
    """Count one decoded tile: ``decoded`` bytes produced of the ``whole`` it holds."""
    _counters.decode(decoded, whole)


def record_failure(failure: ReadFailure) -> None:
    """List one failed byte range (read as nodata) in the totals and the open trackers."""
    _counters.fail(failure)


def read_stats() -> ReadStats:
    """Return a copy of the process-wide counters since import.

    Returns
    -------
    ReadStats
        Totals of every request made in this process, and its last failures
        under ``on_error="nodata"`` (in this process: a dask worker process
        keeps its own; ``client.run(xarray_rasteret.read_stats)`` gets them).
    """
    with _counters.lock:
        total = _counters.total
        return replace(total, failures=list(total.failures))


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
