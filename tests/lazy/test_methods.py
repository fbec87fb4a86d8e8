"""``method=`` and ``sortby=`` of grouped opens against a NumPy reference on loaded records."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pyarrow as pa
import pytest
import xarray as xr
from test_mosaic import same_grid  # noqa: F401  (a module-scoped fixture)
from test_target_grid import collection

import xarray_rasteret as xrr

TIMES = {"a": "2024-05-03T09:40", "b": "2024-05-28T09:40", "c": "2024-05-30T09:40"}
REDUCE = {
    "mean": np.nanmean, "median": np.nanmedian, "std": np.nanstd, "min": np.nanmin,
    "max": np.nanmax,
}  # fmt: skip


@pytest.fixture(scope="module")
def col(same_grid):  # noqa: F811
    base = collection([same_grid[k] for k in "abc"], [TIMES[k] for k in "abc"])
    clouds = pa.array([{"a": 30.0, "b": 5.0, "c": None}[i] for i in base.ids])
    return xrr.Collection(base.table.append_column("eo:cloud_cover", clouds))


@pytest.fixture(scope="module")
def stack(col):
    """Every record alone on the union grid, float64 with NaN where it has no valid pixel."""
    ds = xr.open_dataset(col, engine="rasteret")
    values = ds.band_1.values.astype(np.float64)
    return np.where(values == 0, np.nan, values), list(ds.id.values)


def _reference(stack: np.ndarray, method: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "count":
            return np.isfinite(stack).sum(axis=0)
        return REDUCE[method](stack, axis=0)


@pytest.mark.parametrize("method", ["mean", "median", "std", "min", "max", "count"])
def test_methods_equal_numpy_on_the_loaded_records(col, stack, method) -> None:
    values, _ = stack
    ds = xr.open_dataset(col, engine="rasteret", groupby="P1M", method=method)
    got = ds.band_1.values[0]
    expected = _reference(values, method)
    if method in ("min", "max"):
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, np.nan_to_num(expected, nan=0).astype(np.uint16))
    elif method == "count":
        assert got.dtype == np.uint16 and "_FillValue" not in ds.band_1.attrs
        np.testing.assert_array_equal(got, expected)
    else:
        assert got.dtype == np.float32 and np.isnan(ds.band_1.attrs["_FillValue"])
        np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-6, equal_nan=True)
    chunked = xr.open_dataset(col, engine="rasteret", groupby="P1M", method=method, chunks={})
    np.testing.assert_array_equal(chunked.band_1.values[0], got)


def test_a_callable_reduces_the_stack(col, stack) -> None:
    p90 = functools.partial(np.nanpercentile, q=90)
    ds = xr.open_dataset(col, engine="rasteret", groupby="P1M", method=p90)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanpercentile(stack[0], 90, axis=0)
    np.testing.assert_allclose(ds.band_1.values[0], expected.astype(np.float32), rtol=1e-6,
                               equal_nan=True)


def test_last_and_sortby_order_the_members(col, stack) -> None:
    values, ids = stack
    order = {rid: k for k, rid in enumerate(ids)}

    def first_valid(records: list[str]) -> np.ndarray:
        out = np.full(values.shape[1:], np.nan)
        for rid in reversed(records):
            layer = values[order[rid]]
            out = np.where(np.isfinite(layer), layer, out)
        return np.nan_to_num(out, nan=0).astype(np.uint16)

    last = xr.open_dataset(col, engine="rasteret", groupby="P1M", method="last")
    np.testing.assert_array_equal(last.band_1.values[0], first_valid(["c", "b", "a"]))
    # Least cloudy first, the record without cloud cover last.
    clear = xr.open_dataset(col, engine="rasteret", groupby="P1M", sortby="eo:cloud_cover")
    np.testing.assert_array_equal(clear.band_1.values[0], first_valid(["b", "a", "c"]))
    assert list(clear.id.values) == ["b"]  # a group's coordinates are its first member's
    cloudy = xr.open_dataset(col, engine="rasteret", groupby="P1M", sortby="-eo:cloud_cover")
    np.testing.assert_array_equal(cloudy.band_1.values[0], first_valid(["a", "b", "c"]))


def test_mean_decodes_with_scale_and_std_without_offset(col, stack) -> None:
    values, _ = stack
    mean = xr.open_dataset(col, engine="rasteret", groupby="P1M", method="mean",
                           mask_and_scale=True)
    np.testing.assert_allclose(mean.band_1.values[0], _reference(values, "mean"), rtol=1e-6)
    # std(scale * v + offset) = |scale| * std(v): the offset must not be applied.
    from dataclasses import replace

    from xarray_rasteret._lazy.methods import method_params
    from xarray_rasteret._lazy.records import StepParams

    first = replace(col.sources("band_1")[0], scale=-1e-4, offset=-0.1)
    params = StepParams(np.array([-1e-4]), np.array([-0.1]), (0.0,))
    src, out = method_params("std", first, params)
    assert (src.scale, src.offset, out.scale.tolist(), out.offset.tolist()) == (
        1e-4, 0.0, [1e-4], [0.0])
    src, out = method_params("count", first, params)
    assert (src.nodata, src.scale, src.offset, out.nodata) == (None, 1.0, 0.0, (None,))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"method": "mean"}, r"method='mean' merges the records of a group: pass groupby="),
        ({"groupby": "P1M", "method": "mode"}, r"method='mode' is not a merge method: give "
                                               r"one of \['first', 'last', 'min'"),
        ({"sortby": "eo:cloud_cover"}, r"sortby='eo:cloud_cover' orders the records of a "
                                       r"group: pass groupby="),
        ({"groupby": "P1M", "sortby": "nope"}, r"sortby='nope' is not a column of the "
                                               r"collection \(prefix '-' to sort descending\)"),
    ],
)
def test_slips_are_named(col, kw, message) -> None:
    with pytest.raises(ValueError, match=message):
        xr.open_dataset(col, engine="rasteret", **kw)
