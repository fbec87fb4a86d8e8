"""Output pages faulted in ahead of the pixels: contents kept, bounds right, reads unchanged."""

from __future__ import annotations

import mmap
import resource
import sys
import threading

import numpy as np
import pytest
import rasterio

import xarray_rasteret as xrr
from cogs import write_tiff
from xarray_rasteret._read import fetch as _fetch
from xarray_rasteret._read import pages as _pages
from xarray_rasteret._read import tasks as _tasks
from xarray_rasteret._sync import sync
from xarray_rasteret._types import Window

PAGE = mmap.PAGESIZE


def test_spans_merge_the_views_of_one_buffer():
    out = np.empty((3, 1000, 1000), np.uint16)
    lo = out.ctypes.data
    (span,) = _pages.spans([out[2], out[0], out[1]])
    assert span[0] == lo & -PAGE
    assert span[1] >= lo + out.nbytes
    assert span[1] - span[0] < out.nbytes + 2 * PAGE


def test_spans_cover_strided_and_reversed_views():
    base = np.empty((500, 2000), np.uint16)
    view = base[::-2, 100:900]  # negative row stride: the last row is lowest in memory
    (span,) = _pages.spans([view])
    first = view[-1, 0:1].ctypes.data
    last = view[0, -1:].ctypes.data + view.itemsize
    assert span[0] <= first < last <= span[1]
    assert _pages.spans([np.empty((0, 10))]) == []


def test_memory_apart_stays_separate_spans():
    base = np.empty(3 * 2**21, np.uint8)
    a, b = base[: 2**21], base[2 * 2**21 :]
    spans = _pages.spans([b, a])
    assert len(spans) == 2
    assert spans[0][0] <= a.ctypes.data < b.ctypes.data < spans[1][1]


def _write_faults(arr: np.ndarray) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arr[...] = 7
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _fresh(nbytes: int) -> np.ndarray:
    """Anonymous memory no one has touched (``np.empty`` may reuse faulted pages)."""
    return np.frombuffer(mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE), np.uint16)


def test_populate_keeps_contents_and_takes_the_faults_off_the_writes():
    cold = _fresh(8 * 2**20)
    assert _write_faults(cold) >= cold.nbytes // 2**21  # a fault per page, 2 MB pages or less

    arr = _fresh(8 * 2**20)
    done = _pages.populate([arr], min_rate=0.0)  # all of it, however slow memory is now
    if sys.platform.startswith("linux") and done:
        assert done >= arr.nbytes
        assert _write_faults(arr) <= 1  # the pages are there
    else:  # no MADV_POPULATE_WRITE here: nothing done
        assert done == 0
        _write_faults(arr)
    assert np.all(arr == 7)
    before = arr.copy()
    _pages.populate([arr])
    np.testing.assert_array_equal(arr, before)


def test_populate_is_safe_beside_writers_and_honours_its_limits():
    arr = np.empty(16 * 2**20, np.uint8)
    writer = threading.Thread(target=lambda: arr.__setitem__(slice(None), 3))
    writer.start()
    done = _pages.populate([arr], max_bytes=4 * 2**20)
    writer.join()
    assert np.all(arr == 3)  # populate wrote nothing
    assert done <= 4 * 2**20
    assert _pages.populate([np.empty(2**16, np.uint8)]) == 0  # under min_bytes


def test_populate_asks_in_steps_so_other_threads_can_map_memory(monkeypatch):
    # While one madvise call runs, the kernel holds the memory map: another thread's
    # allocation waited for the whole call (100 ms to 2 s for 1 GB on the dev VM).
    calls = []
    real = _pages._madvise

    def record(addr: int, size: int, advice: int) -> int:
        calls.append((addr, size))
        return 0 if real is None else real(addr, size, advice)

    monkeypatch.setattr(_pages, "_madvise", record)
    arr = _fresh(9 * 2**20 + PAGE)
    done = _pages.populate([arr], min_rate=0.0)
    assert done == sum(size for _, size in calls) >= arr.nbytes
    assert max(size for _, size in calls) <= _pages.STEP_BYTES
    assert len(calls) == -(-done // _pages.STEP_BYTES)
    starts = [addr for addr, _ in calls]
    assert starts == sorted(starts)
    # No gaps, no overlap:
    assert all(a + s == b for (a, s), (b, _) in zip(calls[:-1], calls[1:], strict=True))


def test_populate_stops_after_a_slow_step(monkeypatch):
    # Memory slower than min_rate: one step, the rest is left to fault in the pastes.
    calls = []
    monkeypatch.setattr(_pages, "_madvise", lambda addr, size, advice: calls.append(size) or 0)
    arr = _fresh(8 * 2**20)
    assert _pages.populate([arr], min_rate=float("inf")) == _pages.STEP_BYTES
    assert len(calls) == 1
    calls.clear()
    assert _pages.populate([arr], min_rate=0.0) >= arr.nbytes
    assert len(calls) == 4


def test_a_read_populates_its_output_and_matches_rasterio(tmp_path, monkeypatch):
    path = tmp_path / "big.tif"
    write_tiff(path, dtype="uint16", width=1100, height=1000, compress="DEFLATE", predictor=2,
               blockxsize=256, blockysize=256)
    with rasterio.open(path) as r:
        expected = r.read(1)
    src = xrr.build([str(path)]).sources("band_1")[0]
    calls = []
    real = _fetch.populate

    def spy(arrays, *args, **kwargs):
        calls.append([a.nbytes for a in arrays])
        return real(arrays, *args, **kwargs)

    monkeypatch.setattr(_fetch, "populate", spy)
    out = np.empty((1000, 1100), np.uint16)
    sync(_fetch.read_into([_tasks.ReadTask(src, 0, Window(0, 1000, 0, 1100), out, 0)]))
    assert calls == [[out.nbytes]]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("fill", [0, 9])
def test_a_read_past_the_image_fills_the_rest(tmp_path, fill):
    path = tmp_path / "edge.tif"
    write_tiff(path, dtype="uint16", width=900, height=700, compress="DEFLATE",
               blockxsize=256, blockysize=256)
    with rasterio.open(path) as r:
        expected = r.read(1)
    src = xrr.build([str(path)]).sources("band_1")[0]
    out = np.empty((1000, 1100), np.uint16)
    sync(_fetch.read_into([_tasks.ReadTask(src, 0, Window(-100, 900, -50, 1050), out, fill)]))
    np.testing.assert_array_equal(out[100:800, 50:950], expected)
    outside = np.ones(out.shape, bool)
    outside[100:800, 50:950] = False
    assert np.all(out[outside] == fill)
