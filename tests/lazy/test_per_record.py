"""Scale, offset and nodata that differ between the records of one band (issue 23).

Two Sentinel-2-like baselines: before 04.00 reflectance is ``DN * 1e-4``, from
04.00 on ``DN * 1e-4 - 0.1`` (the -1000 DN offset). rasterio's read of each
file, masked and scaled by hand with that file's own values, is the oracle.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

import xarray_rasteret as xrr
from cogs import write_tiff

TRANSFORM = Affine(10.0, 0, 500_000.0, 0, -10.0, 5_200_000.0)


def _scene(path, when, *, scale, offset, nodata=0, seed=0):
    write_tiff(path, dtype="uint16", nodata=nodata, holes=True, seed=seed,
               crs="EPSG:32633", transform=TRANSFORM)
    with rasterio.open(path, "r+") as f:
        f.scales = (scale,)
        f.offsets = (offset,)
        f.update_tags(TIFFTAG_DATETIME=when)


def _expected(path):
    """rasterio's pixels of ``path``, masked by its nodata and scaled by its own values."""
    with rasterio.open(path) as f:
        raw = f.read(1)
        scale, offset, nodata = f.scales[0], f.offsets[0], f.nodata
    out = raw.astype(np.float64) * scale + offset
    out[raw == nodata] = np.nan
    return raw, out


def _two_offsets(tmp_path, names, times):
    """Two one-band records, offsets 0 and -0.1 (scale 1e-4), as a collection file."""
    files = [tmp_path / f"{n}.tif" for n in names]
    for f, when, offset, seed in zip(files, times, (0.0, -0.1), (1, 2), strict=True):
        _scene(f, when, scale=1e-4, offset=offset, seed=seed)
    path = tmp_path / "col.parquet"
    xrr.build([str(f) for f in files]).to_parquet(path)
    return path, files


@pytest.fixture
def baselines(tmp_path):
    """Two records of one band: baseline 03.01 (offset 0) and 04.00 (offset -0.1)."""
    return _two_offsets(tmp_path, ("old", "new"), ("2022:01:10 10:00:00", "2022:02:10 10:00:00"))


def _open(path, **kw):
    return xr.open_dataset(path, engine="rasteret", **kw)


def test_masked_each_record_decoded_with_its_own_offset(baselines):
    path, files = baselines
    ds = _open(path, mask_and_scale=True)
    assert ds.band_1.dtype == np.float64
    assert "scale_factor" not in ds.band_1.attrs and "add_offset" not in ds.band_1.attrs
    for i, f in enumerate(files):
        raw, expected = _expected(f)
        assert np.isnan(expected).any() and (raw != 0).any()
        np.testing.assert_array_equal(ds.band_1.values[i], expected)


def test_masked_per_record_through_dask_async_and_points(baselines):
    path, files = baselines
    expected = np.stack([_expected(f)[1] for f in files])
    lazy = _open(path, mask_and_scale=True, chunks={})
    assert lazy.band_1.chunks is not None
    np.testing.assert_array_equal(lazy.band_1.compute().values, expected)
    # One dask task per record and tile block: each shard decodes its own record.
    sharded = lazy.band_1.chunk(time=1, y=64)
    assert sharded.chunks[0] == (1, 1)
    np.testing.assert_array_equal(sharded.compute().values, expected)
    ds = _open(path, mask_and_scale=True)
    loaded = xr.Dataset({"b": ds.band_1}).load_async
    import asyncio

    np.testing.assert_array_equal(asyncio.run(loaded()).b.values, expected)
    ys = xr.DataArray([0, 5, 150], dims="p")
    xs = xr.DataArray([3, 200, 299], dims="p")
    np.testing.assert_array_equal(
        ds.band_1.isel(y=ys, x=xs).values, expected[:, [0, 5, 150], [3, 200, 299]]
    )
    # A single time step (integer key) and a reversed selection.
    np.testing.assert_array_equal(ds.band_1.isel(time=1).values, expected[1])
    np.testing.assert_array_equal(ds.band_1.isel(time=[1, 0]).values, expected[::-1])


def test_masked_per_record_on_a_target_grid(baselines):
    path, files = baselines
    ds = _open(path, mask_and_scale=True, crs="EPSG:32633", resolution=10)
    expected = np.stack([_expected(f)[1] for f in files])
    assert ds.band_1.shape == expected.shape
    np.testing.assert_array_equal(ds.band_1.values, expected)


def test_native_keeps_values_and_puts_per_record_values_on_time(baselines):
    path, files = baselines
    with pytest.warns(UserWarning,
                      match=r"band 'band_1' have different scale.*mask_and_scale=True"):
        ds = _open(path)
    for i, f in enumerate(files):
        np.testing.assert_array_equal(ds.band_1.values[i], _expected(f)[0])
    assert "scale_factor" not in ds.band_1.attrs and "add_offset" not in ds.band_1.attrs
    assert ds.band_1.attrs["_FillValue"] == 0  # the same in both records: kept
    np.testing.assert_array_equal(ds.band_1_scale_factor.values, [1e-4, 1e-4])
    np.testing.assert_array_equal(ds.band_1_add_offset.values, [0.0, -0.1])
    assert ds.band_1_add_offset.dims == ("time",)
    # The user's own decoding with the coordinates gives the oracle.
    by_hand = (ds.band_1.where(ds.band_1 != 0) * ds.band_1_scale_factor
               + ds.band_1_add_offset)
    np.testing.assert_array_equal(by_hand.values, np.stack([_expected(f)[1] for f in files]))


def test_records_that_agree_keep_cf_attributes(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    _scene(a, "2022:01:10 10:00:00", scale=1e-4, offset=-0.1, seed=1)
    _scene(b, "2022:02:10 10:00:00", scale=1e-4, offset=-0.1, seed=2)
    path = tmp_path / "c.parquet"
    xrr.build([str(a), str(b)]).to_parquet(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = _open(path)
    assert ds.band_1.attrs["add_offset"] == -0.1
    assert not any(name.startswith("band_1_") for name in ds.coords)


def test_nodata_that_differs_masks_each_record_by_its_own(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    _scene(a, "2022:01:10 10:00:00", scale=1.0, offset=0.0, nodata=0, seed=1)
    _scene(b, "2022:02:10 10:00:00", scale=1.0, offset=0.0, nodata=65535, seed=2)
    path = tmp_path / "c.parquet"
    xrr.build([str(a), str(b)]).to_parquet(path)
    ds = _open(path, mask_and_scale=True)
    assert ds.band_1.dtype == np.float32  # as xr.decode_cf of a uint16 band
    for i, f in enumerate((a, b)):
        np.testing.assert_array_equal(ds.band_1.values[i], _expected(f)[1].astype(np.float32))
    with pytest.warns(UserWarning, match="different scale, offset or nodata"):
        native = _open(path)
    assert "_FillValue" not in native.band_1.attrs and "nodata" not in native.band_1.attrs
    np.testing.assert_array_equal(native.band_1_nodata.values, [0.0, 65535.0])


def test_grouped_records_that_differ_are_refused(tmp_path):
    path, _ = _two_offsets(tmp_path, ("a", "b"), ("2022:01:10 10:00:00", "2022:01:10 10:05:00"))
    with pytest.raises(ValueError, match=r"band 'band_1'.*different \(scale, offset, nodata\)"
                       r".*without groupby="):
        _open(path, mask_and_scale=True, groupby="solar_day")


# ---------------------------------------------------------------- complex nodata


@pytest.fixture
def cint16(tmp_path):
    """A CInt16 band with nodata 0 written by rasterio; values with real part 0 and imag not."""
    path = tmp_path / "c.tif"
    rng = np.random.default_rng(3)
    data = (rng.integers(-2, 3, (64, 96)) + 1j * rng.integers(-2, 3, (64, 96))).astype(np.complex64)
    with rasterio.open(path, "w", driver="GTiff", width=96, height=64, count=1,
                       dtype="complex_int16", nodata=0, crs="EPSG:32633", transform=TRANSFORM,
                       tiled=True, blockxsize=32, blockysize=32) as f:
        f.write(data, 1)
    assert ((data.real == 0) & (data.imag != 0)).any()
    return path


def _gdal_masked(path):
    """rasterio's masked read (GDAL's nodata mask) with NaN+NaNj where masked."""
    with rasterio.open(path) as f:
        masked = f.read(1, masked=True)
    out = masked.data.astype(np.complex64)
    out[masked.mask] = complex(np.nan, np.nan)
    return out


def test_complex_nodata_masks_by_the_real_part_as_gdal(cint16):
    expected = _gdal_masked(cint16)
    ds = xr.open_dataset(cint16, engine="rasteret", mask_and_scale=True)
    assert ds.band_1.dtype == np.complex64
    np.testing.assert_array_equal(ds.band_1.values[0], expected)
    import rioxarray

    theirs = rioxarray.open_rasterio(cint16, mask_and_scale=True).values[0]
    np.testing.assert_array_equal(ds.band_1.values[0], theirs)
    # The same on a target grid (the mosaic path) and through dask.
    grid = xr.open_dataset(cint16, engine="rasteret", mask_and_scale=True,
                           crs="EPSG:32633", resolution=10)
    np.testing.assert_array_equal(grid.band_1.values[0], expected)
    lazy = xr.open_dataset(cint16, engine="rasteret", mask_and_scale=True, chunks={})
    np.testing.assert_array_equal(lazy.band_1.compute().values[0], expected)
    # Native values are untouched.
    with rasterio.open(cint16) as f:
        raw = f.read(1)
    np.testing.assert_array_equal(xr.open_dataset(cint16, engine="rasteret").band_1.values[0], raw)
