"""``to_zarr`` round trips of masked and native datasets (issue 23).

What is written back must be the CF encoding of the file (stored dtype,
``_FillValue``, ``scale_factor``, ``add_offset``), so that any CF reader
decodes it to what rasterio's read, masked and scaled by hand, gives. Written
with ``consolidated=False``: zarr's own consolidated-metadata warning (not
part of the v3 specification) is not ours.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr
from affine import Affine

import xarray_rasteret as xrr
from cogs import write_tiff

TRANSFORM = Affine(10.0, 0, 500_000.0, 0, -10.0, 5_200_000.0)


def _scene(path, *, offset=-0.1, when="2024:05:03 10:00:00", seed=0):
    write_tiff(path, dtype="uint16", nodata=0, holes=True, seed=seed, crs="EPSG:32633",
               transform=TRANSFORM)
    with rasterio.open(path, "r+") as f:
        f.scales = (1e-4,)
        f.offsets = (offset,)
        f.update_tags(TIFFTAG_DATETIME=when)
    with rasterio.open(path) as f:
        raw = f.read(1)
    scaled = raw * 1e-4 + offset
    scaled[raw == 0] = np.nan
    return raw, scaled


def _write(ds, store):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.to_zarr(store, consolidated=False)


@pytest.mark.parametrize("mask_and_scale", [True, False], ids=["masked", "native"])
def test_to_zarr_writes_the_cf_encoding_back(tmp_path, mask_and_scale):
    raw, scaled = _scene(tmp_path / "s.tif")
    ds = xr.open_dataset(tmp_path / "s.tif", engine="rasteret", chunks={},
                         mask_and_scale=mask_and_scale)
    store = tmp_path / "out.zarr"
    _write(ds, store)
    stored = zarr.open_array(store / "band_1", mode="r")
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored[0], raw)
    assert stored.attrs["scale_factor"] == 1e-4 and stored.attrs["add_offset"] == -0.1
    assert stored.fill_value == 0 or stored.attrs.get("_FillValue") == 0
    with xr.open_zarr(store, consolidated=False) as back:
        np.testing.assert_array_equal(back.band_1.values[0], scaled)
        assert back.band_1.rio.crs == ds.band_1.rio.crs
        assert list(back.id.values) == list(ds.id.values)
    with xr.open_zarr(store, consolidated=False, mask_and_scale=False) as native:
        np.testing.assert_array_equal(native.band_1.values[0], raw)


def test_to_zarr_of_records_with_their_own_offsets(tmp_path):
    _, old = _scene(tmp_path / "a.tif", offset=0.0, when="2022:01:10 10:00:00", seed=1)
    raw_new, new = _scene(tmp_path / "b.tif", offset=-0.1, when="2022:02:10 10:00:00", seed=2)
    col = xrr.build([str(tmp_path / "a.tif"), str(tmp_path / "b.tif")])
    masked = xr.open_dataset(col, engine="rasteret", chunks={}, mask_and_scale=True)
    _write(masked, tmp_path / "m.zarr")
    with xr.open_zarr(tmp_path / "m.zarr", consolidated=False) as back:
        np.testing.assert_array_equal(back.band_1.values, np.stack([old, new]))
    with pytest.warns(UserWarning, match="different scale"):
        native = xr.open_dataset(col, engine="rasteret", chunks={})
    _write(native, tmp_path / "n.zarr")
    with xr.open_zarr(tmp_path / "n.zarr", consolidated=False, mask_and_scale=False) as back:
        # No single scale_factor/add_offset: values stay native, the per-record ones
        # travel as coordinates.
        assert "scale_factor" not in back.band_1.attrs
        np.testing.assert_array_equal(back.band_1.values[1], raw_new)
        np.testing.assert_array_equal(back.band_1_add_offset.values, [0.0, -0.1])
    with xr.open_zarr(tmp_path / "n.zarr", consolidated=False) as back:
        # A CF reader masks the shared nodata and applies no scaling.
        expected = np.where(raw_new == 0, np.nan, raw_new).astype(np.float32)
        np.testing.assert_array_equal(back.band_1.values[1], expected)


# ---------------------------------------------------------------- progress=True


def test_progress_bar_counts_the_tiles_of_a_load(tmp_path, capsys):
    path = tmp_path / "p.tif"
    # 300 x 200 pixels in 128 x 64 tiles: 3 x 4 = 12 tiles.
    write_tiff(path, dtype="uint16", crs="EPSG:32633", transform=TRANSFORM)
    with rasterio.open(path) as f:
        expected = f.read(1)
    ds = xr.open_dataset(path, engine="rasteret", progress=True)
    np.testing.assert_array_equal(ds.band_1.values[0], expected)
    err = capsys.readouterr().err
    assert "reading band_1" in err and "12/12" in err
    grid = xr.open_dataset(path, engine="rasteret", progress=True, crs="EPSG:32633",
                           resolution=10)
    np.testing.assert_array_equal(grid.band_1.values[0], expected)
    assert "12/12" in capsys.readouterr().err
    # Under dask the chunks show no bar (dask's own progress bars report them).
    lazy = xr.open_dataset(path, engine="rasteret", progress=True, chunks={})
    np.testing.assert_array_equal(lazy.band_1.compute().values[0], expected)
    assert "reading" not in capsys.readouterr().err
    quiet = xr.open_dataset(path, engine="rasteret")
    quiet.band_1.values
    assert capsys.readouterr().err == ""
