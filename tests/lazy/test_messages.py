"""Errors of the engine name the input, the problem and the fix (issue 27)."""

from __future__ import annotations

import re

import pytest
import rasterio
import xarray as xr
from affine import Affine

import xarray_rasteret as xrr
from cogs import write_tiff
from xarray_rasteret.errors import ReprojectionRequiredError


def _scene(path, crs="EPSG:32633", res=20.0, x0=500_000.0, when=None):
    write_tiff(path, dtype="uint8", width=64, height=64, blockxsize=32, blockysize=32,
               crs=crs, transform=Affine(res, 0, x0, 0, -res, 5_200_000.0))
    if when is not None:
        with rasterio.open(path, "r+") as f:
            f.update_tags(TIFFTAG_DATETIME=when)
    return str(path)


def test_records_in_two_utm_zones_name_crs_resolution_and_the_epsg_filter(tmp_path):
    col = xrr.build([_scene(tmp_path / "a.tif"), _scene(tmp_path / "b.tif", "EPSG:32634")])
    with pytest.raises(ReprojectionRequiredError) as err:
        xr.open_dataset(col, engine="rasteret")
    msg = str(err.value)
    assert "the records of band 'band_1' are on different pixel grids" in msg
    assert "EPSG:32633, 20 m pixels" in msg and "EPSG:32634, 20 m pixels" in msg
    assert 'crs="EPSG:32633", resolution=20' in msg
    assert 'filters={"proj:epsg": 32633} (1 record(s)) or filters={"proj:epsg": 32634}' in msg
    assert "(20.0, -20.0)" not in msg
    # The fix the message names works.
    ds = xr.open_dataset(col, engine="rasteret", filters={"proj:epsg": 32634})
    assert ds.sizes["time"] == 1


def test_records_off_the_lattice_say_so(tmp_path):
    col = xrr.build([_scene(tmp_path / "a.tif"), _scene(tmp_path / "b.tif", x0=500_005.0)])
    with pytest.raises(ReprojectionRequiredError,
                       match=r"share CRS and pixel size but their pixel corners are offset.*"
                             r"corner at \(500005, 5200000\).*resolution=20"):
        xr.open_dataset(col, engine="rasteret")


def test_bands_of_two_resolutions_name_both_pixel_sizes(tmp_path):
    col = xrr.build([_scene(tmp_path / "a.tif"), _scene(tmp_path / "b.tif", res=10.0)],
                    group_by=lambda p: ("scene", "B20" if p.endswith("a.tif") else "B10"))
    assert sorted(col.bands) == ["B10", "B20"]
    with pytest.raises(ReprojectionRequiredError) as err:
        xr.open_dataset(col, engine="rasteret")
    msg = str(err.value)
    assert re.search(r"bands '.+' and '.+' are on different pixel grids", msg)
    assert "20 m pixels" in msg and "10 m pixels" in msg
    assert "resolution=10" in msg and "bands=[...]" in msg


def test_no_match_shows_the_time_range_and_the_filters(tmp_path):
    col = xrr.build([_scene(tmp_path / "a.tif", when="2022:01:10 10:00:00"),
                     _scene(tmp_path / "b.tif", when="2022:03:01 09:30:00")])
    with pytest.raises(ValueError) as err:
        xr.open_dataset(col, engine="rasteret", time=("2023-01-01", "2023-02-01"),
                        filters={"proj:epsg": 32634})
    msg = str(err.value)
    assert "time=('2023-01-01" in msg and "filters={'proj:epsg': 32634}" in msg
    assert "its 2 record(s) span 2022-01-10T10:00:00 to 2022-03-01T09:30:00" in msg
    assert "'proj:epsg' has 32633" in msg
    assert "Widen time= or change filters=" in msg
