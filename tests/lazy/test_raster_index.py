"""``coords="raster_index"``: x/y by rasterix's ``RasterIndex``, vs the default and rasterio."""

from __future__ import annotations

import math
import pickle
import sys

import numpy as np
import pytest
import rasterio
import rasterio.windows
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.windows import Window
from test_datatree import BANDS as TREE_BANDS
from test_datatree import _collection as tree_collection
from test_datatree import _write as tree_write
from test_target_grid import collection, write_scene

rasterix = pytest.importorskip("rasterix")

# Two scenes of one solar day and one a day later, on one UTM 33 lattice (10 m).
TIMES = ["2024-05-03T09:40:00", "2024-05-03T09:40:07", "2024-05-04T09:40:00"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    d = tmp_path_factory.mktemp("raster-index")
    return [
        write_scene(d / "a.tif", 32633, -2000, 1200, dtype="uint16", seed=1),
        write_scene(d / "b.tif", 32633, -600, 600, dtype="uint16", seed=2),
        write_scene(d / "c.tif", 32633, -1500, 1000, dtype="uint16", seed=3),
    ]


def _both(source, **kw):
    """The default open and the raster-index open of ``source``."""
    default = xr.open_dataset(source, engine="rasteret", **kw)
    indexed = xr.open_dataset(source, engine="rasteret", coords="raster_index", **kw)
    return default, indexed


def _geotransform(ds):
    return Affine.from_gdal(*(float(v) for v in ds.spatial_ref.attrs["GeoTransform"].split()))


def _assert_same_grid(default, indexed):
    """Same pixels, same x/y (to rounding of the last bit), the index on the GeoTransform."""
    index = indexed.xindexes["x"]
    assert isinstance(index, rasterix.RasterIndex)
    assert indexed.xindexes["y"] is index
    res = abs(index.transform().a)
    for axis in ("x", "y"):
        np.testing.assert_allclose(indexed[axis].values, default[axis].values, rtol=0,
                                   atol=1e-9 * res)
    assert index.transform() == _geotransform(indexed) == _geotransform(default)
    assert indexed.spatial_ref.attrs == default.spatial_ref.attrs
    for name in default.data_vars:
        np.testing.assert_array_equal(indexed[name].values, default[name].values)


def test_index_type_values_and_no_coordinate_arrays(scenes):
    default, indexed = _both(scenes[0])
    _assert_same_grid(default, indexed)
    # The values are computed from the transform: no array is stored.
    assert type(indexed.x.variable._data).__name__ == "CoordinateTransformIndexingAdapter"
    assert list(indexed.data_vars) == list(default.data_vars)
    assert indexed.x.attrs["standard_name"] == default.x.attrs["standard_name"]
    assert indexed.x.attrs["units"] == default.x.attrs["units"] == "metre"


def test_transform_round_trips_with_rasterio_and_rioxarray(scenes):
    default, indexed = _both(scenes[0])
    with rasterio.open(scenes[0]) as src:
        assert indexed.xindexes["x"].transform() == src.transform
    assert indexed.rio.transform() == default.rio.transform() == _geotransform(default)
    assert indexed.rio.crs == default.rio.crs
    # A window keeps an exact index: its transform is rioxarray's of the default window.
    part = indexed.isel(x=slice(17, 90), y=slice(5, 61))
    expected = default.isel(x=slice(17, 90), y=slice(5, 61)).rio.transform(recalc=True)
    assert part.xindexes["x"].transform() == expected
    assert part.rio.transform(recalc=True) == expected


def test_isel_window_equals_rasterio_and_the_default(scenes):
    default, indexed = _both(scenes[0])
    window = Window(col_off=17, row_off=5, width=73, height=56)
    with rasterio.open(scenes[0]) as src:
        expected = src.read(1, window=window)
        expected_transform = src.window_transform(window)
    key = {"x": slice(17, 90), "y": slice(5, 61)}
    got = indexed.band_1.isel(time=0, **key)
    np.testing.assert_array_equal(got.values, expected)
    np.testing.assert_array_equal(got.values, default.band_1.isel(time=0, **key).values)
    assert got.xindexes["x"].transform() == expected_transform
    # A point and a strided window: the same pixels as the default too.
    for k in ({"x": 40, "y": 7}, {"x": slice(0, None, 3), "y": slice(10, 50, 2)}):
        np.testing.assert_array_equal(indexed.band_1.isel(**k).values,
                                      default.band_1.isel(**k).values)


def test_sel_by_pixel_centres_equals_the_default(scenes):
    default, indexed = _both(scenes[0])
    x, y = default.x.values, default.y.values
    key = {"x": slice(x[12], x[80]), "y": slice(y[3], y[50])}
    got = indexed.band_1.sel(**key)
    exp = default.band_1.sel(**key)
    assert got.sizes == exp.sizes == {"time": 1, "y": 48, "x": 69}
    np.testing.assert_array_equal(got.values, exp.values)
    np.testing.assert_allclose(got.x.values, exp.x.values, rtol=0, atol=1e-8)
    assert isinstance(got.xindexes["x"], rasterix.RasterIndex)


def test_sel_by_bounds_takes_the_cells_containing_them_as_rasterio_windows(scenes):
    """Bounds inside cells: every pixel whose cell holds a bound (rasterio's covering window)."""
    _, indexed = _both(scenes[0])
    t = indexed.xindexes["x"].transform()
    # 30 % and 60 % into cells, so neither a centre nor an edge.
    left, right = t.c + 12.3 * t.a, t.c + 80.6 * t.a
    top, bottom = t.f + 3.3 * t.e, t.f + 50.6 * t.e
    got = indexed.band_1.sel(x=slice(left, right), y=slice(top, bottom)).isel(time=0)
    with rasterio.open(scenes[0]) as src:
        w = rasterio.windows.from_bounds(left, bottom, right, top, src.transform)
        c0, r0 = math.floor(w.col_off), math.floor(w.row_off)
        c1, r1 = math.ceil(w.col_off + w.width), math.ceil(w.row_off + w.height)
        window = Window(c0, r0, c1 - c0, r1 - r0)
        expected = src.read(1, window=window)
        assert got.xindexes["x"].transform() == src.window_transform(window)
    assert (c0, r0, c1, r1) == (12, 3, 81, 51)
    np.testing.assert_array_equal(got.values, expected)


def test_chunked_open_keeps_the_index_and_lazy_coordinates(scenes):
    default, indexed = _both(scenes[0], chunks={})
    assert indexed.band_1.chunks is not None
    # x/y stay computed by the index, not dask arrays (which index wrong: ds.x[0]).
    assert type(indexed.x.variable._data).__name__ == "CoordinateTransformIndexingAdapter"
    assert indexed.x[0].shape == () and float(indexed.x[0]) == float(default.x[0])
    assert indexed.rio.transform() == default.rio.transform()
    _assert_same_grid(default, indexed)
    rechunked = indexed.chunk({"x": 64, "y": 64}).isel(x=slice(3, 200))
    assert type(rechunked.x.variable._data).__name__ == "CoordinateTransformIndexingAdapter"
    np.testing.assert_array_equal(rechunked.band_1.values,
                                  default.band_1.isel(x=slice(3, 200)).values)


def test_groupby_and_target_grid_opens(scenes):
    col = collection(scenes, TIMES)
    default, indexed = _both(col, groupby="solar_day", method="first")
    assert indexed.sizes["time"] == 2
    _assert_same_grid(default, indexed)
    default, indexed = _both(col, crs="EPSG:4326", resolution=1e-4, resampling="bilinear",
                             mask_and_scale=True)
    _assert_same_grid(default, indexed)
    assert indexed.xindexes["x"].crs == default.rio.crs


def test_open_datatree_gives_each_group_its_own_index(tmp_path):
    files = {r: tree_write(tmp_path, r) for r in "ab"}
    col = tree_collection(files, "ab")
    tree = xr.open_datatree(col, engine="rasteret", coords="raster_index")
    for name, res in {"r10m": 10, "r20m": 20, "r60m": 60}.items():
        group = tree[name].to_dataset()
        index = group.xindexes["x"]
        assert isinstance(index, rasterix.RasterIndex)
        assert index.transform() == Affine(res, 0, 500_000.0, 0, -res, 5_000_000.0)
    alone = xr.open_dataset(col, engine="rasteret", coords="raster_index",
                            bands=[b for b, r in TREE_BANDS.items() if r == 20])
    xr.testing.assert_identical(tree["r20m"].to_dataset().load(), alone.load())


def test_pickles_with_its_index(scenes):
    _, indexed = _both(scenes[0], chunks={})
    back = pickle.loads(pickle.dumps(indexed))
    assert isinstance(back.xindexes["x"], rasterix.RasterIndex)
    xr.testing.assert_identical(back.load(), indexed.load())


def test_unknown_coords_value_is_refused(scenes):
    with pytest.raises(ValueError, match=r"coords='index' is not a coordinate layout: pass "
                                         r"coords='arrays' .* or coords='raster_index'"):
        xr.open_dataset(scenes[0], engine="rasteret", coords="index")


def test_without_rasterix_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "rasterix", None)  # import now raises ImportError
    monkeypatch.delitem(sys.modules, "xarray_rasteret._lazy._rasterix", raising=False)
    # Before any I/O: the path does not exist.
    message = (r"coords='raster_index' needs rasterix, which is not installed: "
               r"pip install \"xarray-rasteret\[rasterix\]\"")
    with pytest.raises(ImportError, match=message):
        xr.open_dataset(str(tmp_path / "missing.tif"), engine="rasteret",
                        coords="raster_index")
