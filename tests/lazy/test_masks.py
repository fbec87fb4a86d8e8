"""``mask=``: a class or bit band of the same records drops pixels before any merge."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import xarray as xr
from affine import Affine

import xarray_rasteret as xrr
from cogs import write_tiff
from xarray_rasteret._lazy.masks import checked_mask

N = 128  # 10 m pixels a side; the class band is 64 x 64 at 20 m
DROP = [0, 3, 8, 9]
BITS = [1, 3]


def _record(root: Path, rid: str, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 5000, (N, N), dtype=np.uint16)
    data[:5, :7] = 0  # nodata
    classes = rng.integers(0, 12, (N // 2, N // 2), dtype=np.uint8)
    qa = rng.integers(0, 32, (N, N), dtype=np.uint16)
    paths = [str(root / f"{rid}_{b}.tif") for b in ("B04", "SCL", "QA")]
    for path, arr, size in zip(paths, (data, classes, qa), (10, 20, 10), strict=True):
        write_tiff(path, dtype=arr.dtype, width=arr.shape[1], height=arr.shape[0], data=arr,
                   transform=Affine(size, 0, 500_000, 0, -size, 5_000_000),
                   nodata=0 if path.endswith("B04.tif") else None, compress="DEFLATE",
                   blockxsize=32, blockysize=32)
    return paths


@pytest.fixture(scope="module")
def col(tmp_path_factory: pytest.TempPathFactory) -> xrr.Collection:
    root = tmp_path_factory.mktemp("masks")
    hrefs = [h for i, rid in enumerate("abc") for h in _record(root, rid, i)]
    built = xrr.build(hrefs, group_by=lambda h: tuple(Path(h).stem.split("_")))  # type: ignore[arg-type]
    times = {"a": "2024-05-03", "b": "2024-05-13", "c": "2024-05-23"}
    when = pa.array([np.datetime64(times[i], "us") for i in built.ids], pa.timestamp("us"))
    table = built.table.set_column(built.table.schema.get_field_index("datetime"), "datetime",
                                   when)
    return xrr.Collection(table)


def _loaded(col: xrr.Collection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each record's B04 (NaN at nodata), SCL upsampled to 10 m, QA, as NumPy arrays."""
    ds = xr.open_dataset(col, engine="rasteret", bands=["B04", "QA"])
    scl = xr.open_dataset(col, engine="rasteret", bands=["SCL"]).SCL.values
    data = ds.B04.values.astype(np.float64)
    return np.where(data == 0, np.nan, data), scl.repeat(2, axis=1).repeat(2, axis=2), \
        ds.QA.values


def _nanreduce(f, stack):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return f(stack, axis=0)


def test_classes_drop_pixels_of_each_record(col) -> None:
    data, scl, _ = _loaded(col)
    expected = np.where(np.isin(scl, DROP), np.nan, data)
    ds = xr.open_dataset(col, engine="rasteret", bands=["B04"], mask_and_scale=True,
                         mask={"band": "SCL", "drop": DROP})
    np.testing.assert_array_equal(ds.B04.values, expected.astype(np.float32))
    kept = xr.open_dataset(col, engine="rasteret", bands=["B04"], mask_and_scale=True,
                           mask={"band": "SCL", "keep": [4, 5, 6]})
    np.testing.assert_array_equal(
        kept.B04.values, np.where(np.isin(scl, [4, 5, 6]), data, np.nan).astype(np.float32)
    )


@pytest.mark.parametrize("method", ["first", "mean", "median", "max", "count"])
def test_masked_composites_equal_numpy(col, method) -> None:
    data, _, qa = _loaded(col)
    flags = (1 << BITS[0]) | (1 << BITS[1])
    masked = np.where((qa & flags) != 0, np.nan, data)
    if method == "first":
        expected = masked[0].copy()
        for layer in masked[1:]:
            expected = np.where(np.isnan(expected), layer, expected)
        expected = np.nan_to_num(expected, nan=0)
    elif method == "count":
        expected = np.isfinite(masked).sum(axis=0)
    else:
        f = {"mean": np.nanmean, "median": np.nanmedian, "max": np.nanmax}[method]
        expected = _nanreduce(f, masked)
        if method == "max":
            expected = np.nan_to_num(expected, nan=0)
    kw = dict(engine="rasteret", bands=["B04"], groupby="P1M", method=method,
              mask={"band": "QA", "bits": BITS})
    got = xr.open_dataset(col, **kw).B04.values[0]
    np.testing.assert_allclose(got, expected.astype(got.dtype), rtol=1e-6, equal_nan=True)
    chunked = xr.open_dataset(col, chunks={}, **kw).B04.values[0]
    np.testing.assert_array_equal(chunked, got)


def test_a_20m_class_mask_on_a_target_grid_and_a_callable(col) -> None:
    data, scl, _ = _loaded(col)
    ds = xr.open_dataset(col, engine="rasteret", bands=["B04"], crs="EPSG:32633",
                         resolution=10, mask={"band": "SCL", "where": lambda v: v >= 8})
    got = ds.B04.values
    np.testing.assert_array_equal(got, np.nan_to_num(np.where(scl >= 8, np.nan, data)))


def test_the_mask_band_itself_is_not_masked(col) -> None:
    ds = xr.open_dataset(col, engine="rasteret", bands=["B04", "SCL"],
                         crs="EPSG:32633", resolution=20, mask={"band": "SCL", "drop": DROP})
    raw = xr.open_dataset(col, engine="rasteret", bands=["SCL"])
    np.testing.assert_array_equal(ds.SCL.values, raw.SCL.values)


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        ("SCL", TypeError, r"mask='SCL': expected a dict \{'band': name, and one of 'drop'"),
        ({"band": "SCL"}, ValueError, r"give exactly one rule"),
        ({"band": "SCL", "drop": [1], "keep": [2]}, ValueError, r"give exactly one rule"),
        ({"band": "SCL", "drop": "3"}, TypeError, r"mask 'drop' must be a list of numbers"),
        ({"band": "QA", "bits": [64]}, ValueError, r"bit positions 0..62, not \[64.0\]"),
        ({"band": "SCL", "where": 3}, TypeError, r"'where' must be a callable"),
    ],
)
def test_bad_masks_are_named(mask, error, message) -> None:
    with pytest.raises(error, match=message):
        checked_mask(mask)


def test_an_unknown_mask_band_lists_the_bands(col) -> None:
    with pytest.raises(xrr.errors.BandNotFoundError, match=r"band 'CLOUD' is not in the"):
        xr.open_dataset(col, engine="rasteret", bands=["B04"], mask={"band": "CLOUD", "drop": [1]})
