"""The engine against rasterio, pixel for pixel, over the whole test matrix of tests/cogs.py.

Each case is written once with rasterio, opened with ``xr.open_dataset(...,
engine="rasteret")`` and compared in full and over 20 random windows; the
same windows, partly outside the raster, go through the read path directly
and are compared with rasterio's pixels padded with the fill value.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import rasterio
import xarray as xr

from cogs import CASES, Case
from xarray_rasteret._read.fetch import read_into
from xarray_rasteret._read.tasks import ReadTask
from xarray_rasteret._sync import sync
from xarray_rasteret._types import Window
from xarray_rasteret.ingest import build

N_WINDOWS = 20


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cases")


def _written(case_dir, case: Case):
    path = case_dir / f"{case.name}.tif"
    if not path.exists():
        case.write(path)
    return path


def _random_windows(rng, height, width, n=N_WINDOWS):
    out = []
    for _ in range(n):
        h = int(rng.integers(1, max(2, height // 2)))
        w = int(rng.integers(1, max(2, width // 2)))
        r = int(rng.integers(-h // 2, height - h // 2))
        c = int(rng.integers(-w // 2, width - w // 2))
        out.append(Window(r, r + h, c, c + w))
    return out


def _padded(full, w: Window, fill):
    count, height, width = full.shape
    out = np.full((count, w.height, w.width), fill, dtype=full.dtype)
    r0, r1 = max(w.row_start, 0), min(w.row_stop, height)
    c0, c1 = max(w.col_start, 0), min(w.col_stop, width)
    if r0 < r1 and c0 < c1:
        out[:, r0 - w.row_start : r1 - w.row_start, c0 - w.col_start : c1 - w.col_start] = full[
            :, r0:r1, c0:c1
        ]
    return out


def _assert_same(ours, theirs, case: Case, what: str):
    if case.max_abs_diff:
        # YCbCr JPEG: rasterio's libjpeg 9 upsamples chroma unlike libjpeg-turbo
        # (tests/cogs.py states the measured bound).
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        diff = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
        worst = diff.max(initial=0)  # a window clipped to nothing has no pixels to differ
        assert worst <= case.max_abs_diff, f"{case.name}: {what}: max diff {worst}"
        return
    if np.issubdtype(theirs.dtype, np.floating):
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{case.name}: {what}")
    else:
        assert ours.dtype == theirs.dtype, f"{case.name}: dtype {ours.dtype} != {theirs.dtype}"
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{case.name}: {what}")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_engine_matches_rasterio(case_dir, case):
    path = _written(case_dir, case)
    with rasterio.open(path) as src:
        expected = src.read()
        count, height, width = src.count, src.height, src.width
        fill = src.nodata if src.nodata is not None else 0
        # crc32, not hash(): str hashes change per process, and so would the windows.
        rng = np.random.default_rng(zlib.crc32(case.name.encode()))
        windows = _random_windows(rng, height, width)
    # rasterio's boundless reads go through a float64 VRT (int64 loses bits), so the
    # boundless oracle is rasterio's full read padded with the fill value.
    boundless = [_padded(expected, w, fill) for w in windows]

    ds = xr.open_dataset(path, engine="rasteret")
    assert list(ds.data_vars) == [f"band_{i + 1}" for i in range(count)]
    for i in range(count):
        var = ds[f"band_{i + 1}"]
        assert var.dims == ("time", "y", "x")
        assert var.dtype == expected.dtype
        _assert_same(var.values[0], expected[i], case, f"full band {i + 1}")
        for w in windows:
            r0, r1 = max(w.row_start, 0), min(w.row_stop, height)
            c0, c1 = max(w.col_start, 0), min(w.col_stop, width)
            got = var.isel(time=0, y=slice(r0, r1), x=slice(c0, c1)).values
            _assert_same(got, expected[i, r0:r1, c0:c1], case, f"band {i + 1} window {w}")

    # Windows partly outside the raster, straight through the read path.
    sources = build([str(path)]).sources
    for i in range(count):
        src_i = sources(f"band_{i + 1}")[0]
        outs = [np.full(w.shape, fill, dtype=expected.dtype) for w in windows]
        sync(read_into([ReadTask(src_i, 0, w, o) for w, o in zip(windows, outs, strict=True)]))
        for w, got, theirs in zip(windows, outs, boundless, strict=True):
            _assert_same(got, theirs[i], case, f"boundless band {i + 1} window {w}")
