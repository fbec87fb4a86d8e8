"""Rasters whose outline has no (complete) longitude/latitude footprint still open and read.

Other bodies (Mars) have no CRS84 footprint at all; a geostationary full disk
has corners off the globe, where the projection is undefined. Each is written
with rasterio and compared with it; the footprint is what can be projected,
or none, with a :class:`FootprintWarning` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest
import shapely
import xarray as xr
from affine import Affine

import xarray_rasteret as xrr
from xarray_rasteret.geo.footprint import FootprintWarning, footprint_crs84

rasterio = pytest.importorskip("rasterio")

MARS = "+proj=eqc +lat_ts=0 +lat_0=0 +lon_0=0 +x_0=0 +y_0=0 +R=3396190 +units=m +no_defs"
GEOS = "+proj=geos +h=35786023 +lon_0=-75 +sweep=x +ellps=GRS80 +units=m +no_defs"
DISK = 5_434_894.0  # half the width of a GOES full disk, metres


def _write(path: Path, crs: str, transform: Affine, size: int = 32) -> Path:
    data = (np.arange(size * size, dtype="uint16") * 7).reshape(1, size, size)
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint16",
        crs=crs, transform=transform, tiled=True, blockxsize=16, blockysize=16,
    ) as dst:  # fmt: skip
        dst.write(data)
    return path


def _check_against_rasterio(path: Path, ds: xr.Dataset) -> None:
    with rasterio.open(path) as src:
        expected = src.read(1)
        crs = pyproj.CRS(src.crs.to_wkt(version="WKT2_2019"))
        t = src.transform
    np.testing.assert_array_equal(ds.band_1.values[0], expected)
    assert pyproj.CRS(ds.spatial_ref.attrs["crs_wkt"]) == crs
    np.testing.assert_allclose(ds.x.values, t.c + t.a * (np.arange(ds.sizes["x"]) + 0.5))
    np.testing.assert_allclose(ds.y.values, t.f + t.e * (np.arange(ds.sizes["y"]) + 0.5))


def _open(path: Path, match: str) -> tuple[xr.Dataset, Any]:
    with pytest.warns(FootprintWarning, match=match):
        collection = xrr.build([str(path)])
    with pytest.warns(FootprintWarning, match=match):
        ds = xr.open_dataset(path, engine="rasteret")
    ds.load()
    return ds, collection.geometries[0]


def test_raster_on_mars_reads_without_a_footprint(tmp_path: Path) -> None:
    path = _write(tmp_path / "mars.tif", MARS, Affine(200.0, 0, -3200.0, 0, -200.0, 3200.0))
    ds, footprint = _open(path, "not on the Earth")
    _check_against_rasterio(path, ds)
    assert footprint is None


def test_geostationary_full_disk_footprint_is_what_projects(tmp_path: Path) -> None:
    step = 2 * DISK / 32
    path = _write(tmp_path / "disk.tif", GEOS, Affine(step, 0, -DISK, 0, -step, DISK))
    ds, footprint = _open(path, "outside the domain")
    _check_against_rasterio(path, ds)
    assert footprint is not None and footprint.is_valid
    lon0, lat0, lon1, lat1 = footprint.bounds
    assert all(np.isfinite(footprint.bounds))
    # The disk is seen from above 75°W: it reaches ~81° of latitude either side.
    assert -90 <= lat0 < -70 and 70 < lat1 <= 90
    assert lon0 < -140 and lon1 > -10


def test_raster_wholly_off_the_disk_has_no_footprint(tmp_path: Path) -> None:
    # The top-left corner of a full-disk grid: space only.
    corner = Affine(1000.0, 0, -DISK, 0, -1000.0, DISK)
    path = _write(tmp_path / "space.tif", GEOS, corner, size=16)
    ds, footprint = _open(path, "no part of the image projects")
    _check_against_rasterio(path, ds)
    assert footprint is None


def test_footprint_warning_names_the_image() -> None:
    with pytest.warns(FootprintWarning, match=r"^s3://b/mars\.tif: the image's CRS is not on"):
        assert footprint_crs84(Affine.identity(), 4, 4, MARS, name="s3://b/mars.tif") is None


def test_footprint_on_the_earth_is_unchanged() -> None:
    # A UTM tile: the outline as before, and no warning (warnings are errors here).
    t = Affine(10.0, 0, 500_000.0, 0, -10.0, 5_000_000.0)
    poly = footprint_crs84(t, 100, 100, "EPSG:32633")
    assert isinstance(poly, shapely.Polygon) and poly.is_valid
    x0, y0, x1, y1 = poly.bounds
    assert 14.99 < x0 < x1 < 15.02 and 45.1 < y0 < y1 < 45.2
