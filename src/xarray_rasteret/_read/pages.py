"""Fault in the memory of output arrays before the pixels arrive.

A fresh ``np.empty`` output has no memory behind it yet: the first write to
each page costs a page fault, paid by the decode threads as they paste the
first tiles, on the read's critical path. :func:`populate` asks the kernel for those pages up front
(``madvise(MADV_POPULATE_WRITE)``, Linux 5.14+), which the read runs in a
decode thread while its requests travel. It writes nothing, so it is safe
beside threads already pasting into the same pages; where the call is not
available it does nothing. The measurements behind the constants below are in
``benchmarks/decisions.md``.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
import time
from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["MAX_BYTES", "MIN_BYTES", "populate", "spans"]

MIN_BYTES = 2**20
"""Spans smaller than this are left to fault on first write (a few pages)."""
MAX_BYTES = 64 * 2**20
"""At most this much is populated per call: about what faults in while one round
trip of object storage passes. A larger read is decode-bound for longer than its requests
travel; the rest of its pages fault in its pastes, spread over the decode."""

STEP_BYTES = 2 * 2**20
"""Bytes populated per ``madvise`` call. While one call runs, the kernel holds the
process's memory map: other threads' allocations (the response bodies arriving)
wait for the whole call; small steps let them in between."""

MIN_RATE = 2**30
"""Bytes per second below which populating stops (the rest faults in the pastes).

Populating is idle-time work, done while the requests travel. When the machine
hands out memory slowly, the response bodies arriving would wait for it; faults
taken in the pastes instead are spread over the decode and let the bodies in."""

_MADV_POPULATE_WRITE = 23
_PAGE = mmap.PAGESIZE


def _load_madvise() -> Callable[[int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    func.restype = ctypes.c_int
    madvise: Callable[[int, int, int], int] = func
    return madvise


_madvise = _load_madvise()


def spans(arrays: Iterable[np.ndarray]) -> list[tuple[int, int]]:
    """The merged ``[start, stop)`` address ranges of ``arrays``' memory, page-aligned.

    Arrays may be views (any strides) of one buffer: overlapping and adjacent
    ranges merge into one.
    """
    ranges = []
    for a in arrays:
        if a.size == 0:
            continue
        lo = hi = a.ctypes.data
        for n, stride in zip(a.shape, a.strides, strict=True):
            step = (n - 1) * stride
            lo, hi = (lo + step, hi) if step < 0 else (lo, hi + step)
        ranges.append((lo & -_PAGE, (hi + a.itemsize + _PAGE - 1) & -_PAGE))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def populate(
    arrays: Iterable[np.ndarray],
    min_bytes: int = MIN_BYTES,
    max_bytes: int = MAX_BYTES,
    min_rate: float = MIN_RATE,
) -> int:
    """Fault in, writable, the pages under ``arrays`` without changing their contents.

    Parameters
    ----------
    arrays
        Arrays (or views) about to be written, e.g. a read's outputs.
    min_bytes
        Memory spans smaller than this are skipped.
    max_bytes
        Stop after populating this many bytes (the first spans, by address).
    min_rate
        Stop after a step that ran slower than this many bytes per second.

    Returns
    -------
    int
        Bytes populated (0 where the kernel or platform lacks the call).
    """
    global _madvise
    done = 0
    for lo, hi in spans(arrays):
        if _madvise is None or done >= max_bytes:
            break
        hi = min(hi, lo + max_bytes - done)
        if hi - lo < min_bytes:
            continue
        for start in range(lo, hi, STEP_BYTES):
            size = min(STEP_BYTES, hi - start)
            began = time.perf_counter()
            if _madvise(start, size, _MADV_POPULATE_WRITE) != 0:
                # EINVAL: a kernel before 5.14. Other errors (ENOMEM, EFAULT) mean the
                # range is not plain anonymous memory: writes will fault as usual.
                if ctypes.get_errno() == 22:
                    _madvise = None
                break
            done += size
            if (time.perf_counter() - began) * min_rate > size:
                return done  # memory is slow now: leave the rest to the pastes
    return done
