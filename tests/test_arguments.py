"""Argument slips fail at the call, with a message naming the argument and the fix."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.geometry

import xarray_rasteret as xrr
from xarray_rasteret._arguments import (
    checked_bands,
    checked_bbox,
    checked_max_concurrent,
    checked_resolution,
    checked_time,
)

SLIPS = [
    (lambda: checked_max_concurrent(0), ValueError, r"max_concurrent=0: it must be an integer >= 1"),  # noqa: E501
    (lambda: checked_max_concurrent(2.5), ValueError, r"max_concurrent=2.5"),
    (lambda: checked_max_concurrent(True), ValueError, r"max_concurrent=True"),
    (lambda: checked_bands([]), ValueError, r"bands=\[\] selects no band: pass bands=None"),
    (lambda: checked_bands(["B04", 4]), TypeError, r"4 is a int; a GeoTIFF's samples are named"),
    (lambda: checked_bands(["B04", "B04"]), ValueError, r"names \['B04'\] more than once"),
    (lambda: checked_bands(4), TypeError, r"bands=4: expected a band name or a list"),
    (lambda: checked_bbox((1, 2, 3), "EPSG:4326"), ValueError, r"has 3 values; expected 4"),
    (lambda: checked_bbox((11, 46, 10, 47), "EPSG:4326"), ValueError,
     r"is inverted \(xmin > xmax\).*antimeridian"),
    (lambda: checked_bbox((0, 1, 1, 0), "EPSG:4326"), ValueError, r"inverted \(ymin > ymax\)"),
    (lambda: checked_bbox((0, 0, float("nan"), 1), "EPSG:4326"), ValueError, r"must be finite"),
    (lambda: checked_bbox(("a", 0, 1, 1), "EPSG:4326"), TypeError, r"must be numbers"),
    (lambda: checked_bbox("0,0,1,1", "EPSG:4326"), TypeError, r"expected four numbers"),
    (lambda: checked_bbox(shapely.Polygon(), "EPSG:4326"), ValueError, r"empty Polygon"),
    (lambda: checked_bbox((500000, 4000000, 510000, 4010000), "EPSG:4326"), ValueError,
     r"is not longitude/latitude.*pass bbox_crs= the CRS of these coordinates"),
    (lambda: checked_time(slice("2024-01", "2024-02", 2)), ValueError, r"takes no step"),
    (lambda: checked_time(("2024-01",)), ValueError, r"expected \(start, end\)"),
    (lambda: checked_resolution(-10), ValueError, r"must be positive and finite"),
    (lambda: checked_resolution((10, 0)), ValueError, r"must be positive and finite"),
    (lambda: checked_resolution("10"), TypeError, r"one number or \(x, y\)"),
    (lambda: checked_resolution((1, 2, 3)), TypeError, r"one number or \(x, y\)"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "kind", "pattern"), SLIPS)
def test_slips_are_refused_by_name(call, kind, pattern) -> None:
    with pytest.raises(kind, match=pattern):
        call()


def test_good_spellings_are_normalized() -> None:
    assert checked_max_concurrent(np.int64(8)) == 8
    assert checked_bands("B04") == ("B04",)
    assert checked_bands(iter(["B04", "B08"])) == ("B04", "B08")
    assert checked_bands(None) is None
    assert checked_bbox([1, 2, 3, 4], "EPSG:4326") == (1.0, 2.0, 3.0, 4.0)
    # A geometry, shapely or GeoJSON, stands for its extent (odc-stac's geopolygon).
    tri = shapely.Polygon([(1, 2), (3, 2), (2, 4)])
    assert checked_bbox(tri, "EPSG:4326") == (1.0, 2.0, 3.0, 4.0)
    assert checked_bbox(shapely.geometry.mapping(tri), "EPSG:4326") == (1.0, 2.0, 3.0, 4.0)
    # Projected coordinates are fine in a projected bbox_crs.
    box = checked_bbox((500000, 4000000, 510000, 4010000), "EPSG:32633")
    assert box == (500000.0, 4000000.0, 510000.0, 4010000.0)
    assert checked_time(slice("2024-01", None)) == ("2024-01", None)
    assert checked_time("2024-06") == ("2024-06", "2024-06")
    day = dt.date(2024, 6, 1)
    assert checked_time(day) == (day, day)
    assert checked_time(["2024-01", "2024-02"]) == ("2024-01", "2024-02")
    assert checked_resolution(10) == 10.0
    assert checked_resolution((10, 20)) == (10.0, 20.0)


def test_degrees_meant_as_metres_warn() -> None:
    with pytest.warns(UserWarning, match=r"20 degrees per pixel; for metres, give a projected"):
        checked_resolution(20, "EPSG:4326")


def test_helpers_check_their_arguments(sample_folder: Path) -> None:
    coll = xrr.load(sample_folder / "s2.parquet")
    box = coll.bounds
    with pytest.raises(ValueError, match=r"max_concurrent=0: it must be an integer >= 1"):
        xrr.get_numpy(coll, geometries=box, bands=["B04"], max_concurrent=0)
    with pytest.raises(ValueError, match=r"bands=\[\] selects no band"):
        xrr.get_numpy(coll, geometries=box, bands=[])
    with pytest.raises(ValueError, match=r"bands is required"):
        xrr.get_numpy(coll, geometries=box, bands=None)


def test_open_dataset_checks_its_arguments(sample_folder: Path) -> None:
    import xarray as xr

    path = sample_folder / "s2.parquet"
    slips = [
        ({"bbox": (1, 2, 3)}, ValueError, r"has 3 values; expected 4"),
        ({"bbox": (16.32, 45.11, 16.29, 45.13)}, ValueError, r"is inverted"),
        ({"bbox": (600000, 4995000, 601000, 4996000)}, ValueError, r"bbox_crs='EPSG:32633'"),
        ({"max_concurrent": 0}, ValueError, r"max_concurrent=0"),
        ({"bands": []}, ValueError, r"bands=\[\] selects no band"),
        ({"crs": "EPSG:32633", "resolution": 1e-6}, ValueError,
         r"asks for a \d+ x \d+ grid .* pass a coarser resolution="),
    ]  # fmt: skip
    for kwargs, kind, pattern in slips:
        with pytest.raises(kind, match=pattern):
            xr.open_dataset(path, engine="rasteret", **kwargs)
    # Spellings that work: a geometry as bbox, one band as a string, a time slice, a month.
    field = shapely.box(16.29, 45.11, 16.32, 45.13)
    by_shape = xr.open_dataset(path, engine="rasteret", bbox=field)
    by_box = xr.open_dataset(path, engine="rasteret", bbox=field.bounds)
    assert by_shape.sizes == by_box.sizes and (by_shape.x == by_box.x).all()
    import geopandas as gpd

    utm = gpd.GeoSeries([field], crs=4326).to_crs(32633)
    by_series = xr.open_dataset(path, engine="rasteret", bbox=utm)  # its CRS, not EPSG:4326
    assert by_series.sizes["x"] >= by_box.sizes["x"] and by_series.sizes["time"] == 4
    with pytest.raises(ValueError, match=r"bbox is in EPSG:32633 but bbox_crs='EPSG:3035'"):
        xr.open_dataset(path, engine="rasteret", bbox=utm, bbox_crs="EPSG:3035")
    one = xr.open_dataset(path, engine="rasteret", bands="B04")
    assert list(one.data_vars) == ["B04"]
    window = slice("2024-05-01", "2024-05-10")
    assert xr.open_dataset(path, engine="rasteret", time=window).sizes["time"] == 2
    assert xr.open_dataset(path, engine="rasteret", time="2024-05").sizes["time"] == 4
    with pytest.warns(UserWarning, match=r"20 degrees per pixel"):
        xr.open_dataset(path, engine="rasteret", crs="EPSG:4326", resolution=20)


def test_build_checks_its_concurrency(sample_folder: Path) -> None:
    with pytest.raises(ValueError, match=r"max_concurrent=0: it must be an integer >= 1"):
        xrr.build(sample_folder / "items.json", max_concurrent=0)
