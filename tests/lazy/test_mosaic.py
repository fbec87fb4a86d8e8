"""Mosaics: ``groupby=`` merges the records of a group into one time step, first valid wins."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rasterio.merge
import xarray as xr
from affine import Affine
from test_target_grid import agreement, collection, is_valid, rio_reproject, write_scene

from xarray_rasteret._lazy.groups import solar_day

# Same solar day at 18 E (UTC + 72 min), different UTC dates for one of them.
T1, T2, T3 = "2024-05-03T09:40:00", "2024-05-03T09:40:07", "2024-05-04T09:40:00"


@pytest.fixture(scope="module")
def same_grid(tmp_path_factory):
    """Three scenes on one UTM 33 lattice: a and b overlap on one day, c a day later."""
    d = tmp_path_factory.mktemp("mosaic")
    a = write_scene(d / "a.tif", 32633, -2000, 1200, dtype="uint16", seed=1)
    b = write_scene(d / "b.tif", 32633, -600, 600, dtype="uint16", seed=2)
    c = write_scene(d / "c.tif", 32633, -1500, 1000, dtype="uint16", seed=3)
    return {"a": a, "b": b, "c": c}


def test_solar_day_shifts_by_longitude():
    t = np.array(["2024-05-03T23:30", "2024-05-03T23:30", "2024-05-04T00:30"], "datetime64[ns]")
    got = solar_day(t, np.array([15.0, -15.0, -15.0]))
    assert got.tolist() == [np.datetime64("2024-05-04"), np.datetime64("2024-05-03"),
                            np.datetime64("2024-05-03")]


def test_same_day_scenes_merge_like_rasterio_merge(same_grid):
    col = collection(list(same_grid.values()), [T1, T2, T3])
    ds = xr.open_dataset(col, engine="rasteret", groupby="solar_day")
    assert ds.sizes["time"] == 2
    assert ds.time.values[0] == np.datetime64(T1, "ns")
    assert list(ds.id.values) == ["a", "c"]
    got = ds.band_1.values
    # rasterio.merge on the same bounds (the union of all records), same order.
    bounds = ds.rio.bounds()
    with rasterio.open(same_grid["a"]) as a, rasterio.open(same_grid["b"]) as b:
        exp, _ = rasterio.merge.merge([a, b], bounds=bounds, method="first")
    assert np.count_nonzero(exp[0] == 0) > 0  # gaps remain where neither has data
    np.testing.assert_array_equal(got[0], exp[0])
    with rasterio.open(same_grid["c"]) as c:
        exp_c, _ = rasterio.merge.merge([c], bounds=bounds)
    np.testing.assert_array_equal(got[1], exp_c[0])


def test_order_is_by_datetime_then_id(same_grid):
    # b first in time: b's pixels win where both are valid.
    col = collection([same_grid["a"], same_grid["b"]], [T2, T1])
    got = xr.open_dataset(col, engine="rasteret", groupby="solar_day").band_1.values[0]
    with rasterio.open(same_grid["b"]) as b, rasterio.open(same_grid["a"]) as a:
        exp, _ = rasterio.merge.merge([b, a], method="first")
    np.testing.assert_array_equal(got, exp[0])
    # Equal times: by id.
    col = collection([same_grid["b"], same_grid["a"]], [T1, T1])
    ds = xr.open_dataset(col, engine="rasteret", groupby="solar_day")
    assert list(ds.id.values) == ["a"]
    with rasterio.open(same_grid["a"]) as a, rasterio.open(same_grid["b"]) as b:
        exp, _ = rasterio.merge.merge([a, b], method="first")
    np.testing.assert_array_equal(ds.band_1.values[0], exp[0])


def test_without_groupby_duplicate_times_stay_separate(same_grid):
    col = collection([same_grid["a"], same_grid["b"]], [T1, T1])
    ds = xr.open_dataset(col, engine="rasteret")
    assert ds.sizes["time"] == 2
    assert (ds.time.values == np.datetime64(T1, "ns")).all()


def test_groupby_a_column(same_grid):
    import pyarrow as pa

    import xarray_rasteret as xrr

    col = collection(list(same_grid.values()), [T1, T2, T3])
    tiles = {"a": "X", "b": "Y", "c": "X"}
    table = col.table.append_column("tile", pa.array([tiles[i] for i in col.ids]))
    ds = xr.open_dataset(xrr.Collection(table), engine="rasteret", groupby="tile")
    assert ds.sizes["time"] == 2 and list(ds.tile.values) == ["X", "Y"]
    with rasterio.open(same_grid["a"]) as a, rasterio.open(same_grid["c"]) as c:
        exp, _ = rasterio.merge.merge([a, c], bounds=ds.rio.bounds(), method="first")
    np.testing.assert_array_equal(ds.band_1.values[0], exp[0])
    with pytest.raises(ValueError, match="neither 'solar_day' nor a column"):
        xr.open_dataset(col, engine="rasteret", groupby="nope")


@pytest.fixture(scope="module")
def two_zone_day(tmp_path_factory):
    """Same-day scenes in zones 33 and 34, overlapping across 18 E, with nodata holes."""
    d = tmp_path_factory.mktemp("zones-day")
    a = write_scene(d / "a.tif", 32633, -2000, 1200, dtype="uint16", seed=1)
    b = write_scene(d / "b.tif", 32634, -1200, 1000, dtype="uint16", seed=2)
    return collection([a, b], [T1, T2]), [a, b]


def _merge_first(arrays):
    out = arrays[0].copy()
    for arr in arrays[1:]:
        take = ~is_valid(out) & is_valid(arr)
        out[take] = arr[take]
    return out


@pytest.mark.parametrize("method", ["nearest", "bilinear", "average"])
@pytest.mark.parametrize("crs,res", [("EPSG:4326", 1e-4), ("EPSG:32634", 20.0)])
def test_cross_crs_mosaic_matches_rasterio_warp_then_merge(two_zone_day, crs, res, method):
    col, paths = two_zone_day
    ds = xr.open_dataset(col, engine="rasteret", crs=crs, resolution=res, resampling=method,
                         groupby="solar_day")
    assert ds.sizes["time"] == 1
    gt = [float(v) for v in ds.spatial_ref.attrs["GeoTransform"].split()]
    from affine import Affine

    transform = Affine.from_gdal(*gt)
    shape = (ds.sizes["y"], ds.sizes["x"])
    exp = _merge_first([rio_reproject(p, transform, shape, crs, method) for p in paths])
    got = ds.band_1.values[0]
    values, masks = agreement(got, exp, method)
    assert values >= (0.995 if method == "nearest" else 0.95) and masks >= 0.995


@pytest.mark.filterwarnings("ignore:The specified chunks separate:UserWarning")
def test_mosaic_chunk_invariance(two_zone_day, same_grid):
    col, _ = two_zone_day
    kw = dict(engine="rasteret", crs="EPSG:4326", resolution=1.5e-4, resampling="cubic",
              groupby="solar_day")
    full = xr.open_dataset(col, **kw).band_1.values
    for chunks in ({}, {"x": 29, "y": 31}):
        np.testing.assert_array_equal(xr.open_dataset(col, chunks=chunks, **kw).band_1.values,
                                      full)
    native = collection(list(same_grid.values()), [T1, T2, T3])
    kw = dict(engine="rasteret", groupby="solar_day")
    full = xr.open_dataset(native, **kw).band_1.values
    np.testing.assert_array_equal(
        xr.open_dataset(native, chunks={"x": 50, "y": 70}, **kw).band_1.values, full
    )


def test_mosaic_dataset_pickles(two_zone_day):
    import pickle

    col, _ = two_zone_day
    ds = xr.open_dataset(col, engine="rasteret", crs="EPSG:4326", resolution=2e-4,
                         groupby="solar_day")
    again = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(again.band_1.values, ds.band_1.values)


def test_warped_positions_are_computed_ahead_within_a_budget(two_zone_day, monkeypatch):
    """Source positions are computed while tiles travel when the budget allows; same pixels."""
    from xarray_rasteret._lazy import mosaic as _mosaic
    from xarray_rasteret._read import tasks as _tasks
    from xarray_rasteret.geo._positions import positions

    col, _ = two_zone_day
    kw = dict(engine="rasteret", crs="EPSG:4326", resolution=1e-4, resampling="bilinear",
              groupby="solar_day")
    staged = []
    plain_staged = _mosaic.MosaicArray.staged
    plain_before = _mosaic.MosaicArray._before_pixels
    computed_ahead = []

    def spy(self, then, jobs, budget, **kw):
        fn = plain_staged(self, then, jobs, budget, **kw)
        staged.append(isinstance(fn, _tasks.Staged))
        return fn

    def spy_before(self, unfilled, warped):
        computed_ahead.append(len(warped))
        return plain_before(self, unfilled, warped)

    monkeypatch.setattr(_mosaic.MosaicArray, "staged", spy)
    monkeypatch.setattr(_mosaic.MosaicArray, "_before_pixels", spy_before)
    monkeypatch.setattr(_mosaic.MosaicArray, "early_exit", False)  # one read, not waves
    positions.clear()
    ahead = xr.open_dataset(col, **kw).band_1.values
    assert staged == [True] and computed_ahead[0] > 0 and len(positions) > 0
    monkeypatch.setattr(_mosaic.PositionBudget, "__init__",
                        lambda self, limit=None: setattr(self, "left", 0))
    positions.clear()
    late = xr.open_dataset(col, **kw).band_1.values
    # Still staged (the output is filled first), but no positions computed ahead.
    assert staged == [True, True] and computed_ahead[1] == 0
    np.testing.assert_array_equal(ahead, late)


def test_a_lone_record_on_the_lattice_is_read_straight_into_the_output(same_grid, monkeypatch):
    from xarray_rasteret._lazy import mosaic as _mosaic

    merged = []
    plain = _mosaic.MosaicArray._assemble

    def spy(self, out, dst, step):
        merged.append([job.member.source.href.rsplit("/", 1)[-1] for job in step])
        return plain(self, out, dst, step)

    monkeypatch.setattr(_mosaic.MosaicArray, "_assemble", spy)
    monkeypatch.setattr(_mosaic.MosaicArray, "early_exit", False)  # one read, not waves
    col = collection(list(same_grid.values()), [T1, T2, T3])
    ds = xr.open_dataset(col, engine="rasteret", groupby="solar_day")
    got = ds.band_1.values
    assert merged == [["a.tif", "b.tif"]]  # c, alone on its day, had no buffer and no merge
    with rasterio.open(same_grid["c"]) as c:
        exp, _ = rasterio.merge.merge([c], bounds=ds.rio.bounds())
    assert np.count_nonzero(exp[0] == 0) > 0  # outside c and in its holes: the fill value
    np.testing.assert_array_equal(got[1], exp[0])


@pytest.mark.parametrize(("fill", "straight"), [(0, True), (7, False)])
def test_a_record_is_read_straight_only_when_its_missing_values_are_the_fill(
    same_grid, fill, straight
):
    """uint16, nodata 0: read straight with fill 0; merged (nodata becomes 7) with fill 7."""
    from xarray_rasteret._lazy.mosaic import Member, MosaicArray
    from xarray_rasteret._read.tasks import ReadOptions
    from xarray_rasteret.geo.grid import RasterGrid

    col = collection([same_grid["c"]], [T3])
    src = col.sources("band_1")[0]
    lv = src.levels[0]
    # The output grid: the scene with a 5-pixel margin all round.
    grid = RasterGrid(src.crs, src.transform @ Affine.translation(-5, -5),
                      lv.width + 10, lv.height + 10)
    member = Member(src, 0, (5, 5))
    array = MosaicArray([[member]], grid, np.dtype("uint16"), fill, "nearest", ReadOptions())
    assert array.reads_straight(member) is straight
    got = array._getitem((slice(None),) * 3)
    with rasterio.open(same_grid["c"]) as r:
        stored = r.read(1)
    exp = np.full((lv.height + 10, lv.width + 10), fill, np.uint16)
    exp[5:-5, 5:-5] = np.where(stored == 0, fill, stored)
    np.testing.assert_array_equal(got[0], exp)


def test_reads_straight_needs_the_same_dtype_and_missing_values_equal_to_the_fill(same_grid):
    from dataclasses import replace

    from xarray_rasteret._lazy.mosaic import Member, MosaicArray
    from xarray_rasteret._read.tasks import ReadOptions
    from xarray_rasteret.geo.grid import RasterGrid

    src = collection([same_grid["c"]], [T3]).sources("band_1")[0]
    grid = RasterGrid(src.crs, src.transform, src.levels[0].width, src.levels[0].height)

    def straight(dtype, fill, nodata, offset=(0, 0)):
        encoding = replace(src.encoding, dtype=np.dtype(dtype).str)
        member = Member(replace(src, encoding=encoding, nodata=nodata), 0, offset)
        array = MosaicArray([[member]], grid, np.dtype(dtype), fill, "nearest", ReadOptions())
        return array.reads_straight(member)

    assert straight("uint16", 0, 0) and straight("uint16", 0, None)
    assert not straight("uint16", 7, 0) and not straight("uint16", 7, None)
    assert not straight("uint16", 0, 0, offset=None)  # resampled
    assert straight("float32", np.nan, np.nan) and straight("float32", np.nan, None)
    # NaN pixels are missing too: with a finite fill they would be kept as NaN.
    assert not straight("float32", -9999.0, -9999.0) and not straight("float32", 0.0, None)
    # Another dtype needs the merge's conversion.
    member = Member(src, 0, (0, 0))
    assert not MosaicArray([[member]], grid, np.dtype("int32"), 0, "nearest",
                           ReadOptions()).reads_straight(member)
