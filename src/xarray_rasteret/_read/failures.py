"""The ``on_error`` policy of reads: which failures become nodata, with what value, and the report.

Under ``on_error="raise"`` (the default) the first tile that cannot be read fails
the read, naming the object. Under ``on_error="nodata"`` the tiles of a byte range
that still fails after the store's retries read as nodata, and every such range
is reported: a :class:`~xarray_rasteret.errors.ReadFailureWarning` per read naming
the objects, and a :class:`~xarray_rasteret.storage.ReadFailure` per range in
:func:`~xarray_rasteret.read_stats` and open :func:`~xarray_rasteret.track` blocks.

What becomes nodata is what is wrong with one object, or with the way to it, and
not with the request: missing (404) or refused (401/403) objects, reads that
failed after every retry (5xx, 429, timeouts, dropped connections, short
bodies), objects shorter than their index says (only the tiles past the end),
tiles whose bytes do not decode (only those tiles), and the ``OSError`` family a
user store raises. A byte range fails as a whole otherwise: its tiles arrive
together or not at all. What still raises:

- :class:`~xarray_rasteret.errors.ObjectChangedError`: the object was replaced
  since the collection was built, so the index (offsets, sizes) no longer
  describes it; every pixel read through it would be suspect. Rebuild, or pass
  ``check_unchanged=False``.
- :class:`~xarray_rasteret.errors.UnsupportedTiffError`: no tile of the file
  can be read; it is not a failure of one tile.
- Anything else (bad arguments, bugs, cancellation): not a storage failure.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from .._types import RasterSource
from ..errors import ObjectChangedError, ReadFailureWarning, TileDecodeError
from ..storage import ReadFailure, record_failure, redact_url
from ..storage._retry import scrub
from .tasks import ReadTask

__all__ = [
    "ON_ERROR",
    "Failed",
    "FailurePolicy",
    "checked_on_error",
    "failure_fill",
    "record",
    "tolerated",
    "warn_failures",
]

ON_ERROR = ("raise", "nodata")
"""The values ``on_error=`` takes."""

# Objects named in one warning; read_stats() lists the rest.
_NAMED = 10


def checked_on_error(on_error: object) -> str:
    """Return ``on_error`` if it is ``"raise"`` or ``"nodata"``.

    Raises
    ------
    ValueError
        For any other value, saying what each accepted value does.
    """
    if isinstance(on_error, str) and on_error in ON_ERROR:
        return on_error
    raise ValueError(
        f"on_error={on_error!r} is not accepted: pass on_error='raise' (the default: a tile "
        "that cannot be read fails the read) or on_error='nodata' (it reads as nodata, and "
        "a ReadFailureWarning and read_stats().failures report it)"
    )


def tolerated(error: BaseException) -> bool:
    """Whether ``on_error="nodata"`` turns ``error`` into nodata (see the module docstring)."""
    if isinstance(error, ObjectChangedError):
        return False
    return isinstance(error, OSError | TileDecodeError)


def failure_fill(task: ReadTask) -> float:
    """The value of ``task``'s pixels in a tile that failed to read.

    The band's nodata; without one, NaN for a floating-point (or complex) band,
    so failed pixels stay distinguishable from data (and ``mask_and_scale`` and
    mosaics treat them as missing); 0 for an integer band, which has no value
    left to mark them (the report is then the only record of them).
    """
    nodata = task.source.nodata
    if nodata is not None:
        return nodata
    return math.nan if task.out.dtype.kind in "fc" else 0


class _Tile(Protocol):
    """A stored tile and the (task, sample) pairs that want it (fetch's tile jobs)."""

    source: RasterSource
    level: int
    row: int
    col: int
    consumers: list[tuple[ReadTask, int]]


class Failed(NamedTuple):
    """A range read as nodata, and the ids of the read tasks it left nodata pixels in."""

    failure: ReadFailure
    tasks: frozenset[int]


class FailurePolicy:
    """What one read does with the tiles it cannot read: raise, or fill and list them.

    Parameters
    ----------
    on_error
        ``"raise"`` or ``"nodata"``.
    sink
        Where to list the failures; by default a list of this policy's own.
    """

    def __init__(self, on_error: str, sink: list[Failed] | None = None) -> None:
        self.on_error = on_error
        self.failures: list[Failed] = sink if sink is not None else []
        """The ranges read as nodata so far, reported by :meth:`report`."""

    def give_up(
        self, href: str, start: int, end: int, tiles: Sequence[_Tile], error: BaseException
    ) -> None:
        """Raise ``error``, or (``"nodata"``, a tolerated error) fill ``tiles`` and list them.

        The range is listed in the read counters at once, so a ``track()``
        block sees it even if the read fails later for another reason.
        """
        if self.on_error != "nodata" or not tolerated(error):
            raise error
        for tile in tiles:
            _fill_tile(tile)
        where = [(t.level, t.row, t.col) for t in tiles]
        hit = frozenset(id(task) for t in tiles for task, _ in t.consumers)
        self.failures.append(Failed(record(href, start, end, where, error), hit))

    def report(self) -> None:
        """Warn about the ranges read as nodata (nothing if there are none)."""
        warn_failures([f.failure for f in self.failures])


def _fill_tile(tile: _Tile) -> None:
    """Set the pixels of ``tile`` in every consumer's window to the consumer's failure fill."""
    layout = tile.source.levels[tile.level]
    th, tw = layout.tile_height, layout.tile_width
    top, left = tile.row * th, tile.col * tw
    for task, _ in tile.consumers:
        w = task.window
        r0, r1 = max(top, w.row_start, 0), min(top + th, w.row_stop, layout.height)
        c0, c1 = max(left, w.col_start, 0), min(left + tw, w.col_stop, layout.width)
        if r0 < r1 and c0 < c1:
            task.out[
                r0 - w.row_start : r1 - w.row_start, c0 - w.col_start : c1 - w.col_start
            ] = failure_fill(task)


def record(
    href: str, start: int, end: int, tiles: Sequence[tuple[int, int, int]], error: BaseException
) -> ReadFailure:
    """List the failed range ``[start, end)`` of ``href`` in the read counters; return it."""
    # The package's own messages are redacted already; a user store's may quote the URL.
    failure = ReadFailure(
        href=redact_url(href),
        start=start,
        end=end,
        tiles=tuple(tiles),
        error=type(error).__name__,
        message=scrub(str(error), href),
    )
    record_failure(failure)
    return failure


def warn_failures(failures: Sequence[ReadFailure]) -> None:
    """Emit one :class:`ReadFailureWarning` naming the objects of ``failures`` and their errors.

    Byte ranges and tile counts are left to ``read_stats().failures``, so the
    reads of many dask chunks failing on the same object warn with the same
    text, which Python's default filter shows once.
    """
    if not failures:
        return
    causes: dict[str, str] = {}
    for f in failures:
        causes.setdefault(f.href, f"{f.error}: {f.message}")
    named = [f"{href} ({cause})" for href, cause in list(causes.items())[:_NAMED]]
    more = len(causes) - len(named)
    objects = "; ".join(named) + (f"; and {more} more" if more else "")
    message = (
        f"on_error='nodata': tiles of {len(causes)} object(s) could not be read and hold "
        f"nodata: {objects}. read_stats().failures (or a track() block's failures) lists "
        "every failed byte range and tile"
    )
    _warn(message)


def _warn(message: str) -> None:
    # In a dask distributed worker, distributed.warn also sends the warning to the
    # client: the user sees it where they called compute(), not only in the
    # worker's log. It needs the worker's context, which the sync bridge keeps
    # (run_coroutine_threadsafe runs the read in a copy of the caller's context).
    # Not imported here: a process that has not imported distributed is no worker.
    dist = sys.modules.get("distributed")
    if dist is not None:
        try:
            dist.get_worker()
        except ValueError:
            pass
        else:
            dist.warn(message, ReadFailureWarning, stacklevel=3)
            return
    warnings.warn(message, ReadFailureWarning, stacklevel=3)
