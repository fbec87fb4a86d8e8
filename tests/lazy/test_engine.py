"""The ``rasteret`` engine end to end on local files: layout, laziness, georeferencing, errors."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import rioxarray
import xarray as xr
from affine import Affine
from rasterio.crs import CRS as RioCRS

import xarray_rasteret as xrr
from cogs import with_datetimes, write_tiff
from xarray_rasteret.errors import (
    AOIOutsideDataError,
    BandNotFoundError,
    MissingMetadataError,
    NotATiffError,
    ObjectChangedError,
    ReprojectionRequiredError,
    TruncatedFileError,
    UnsupportedTiffError,
)

RES = 10.0
X0, Y0 = 600_000.0, 5_000_000.0


def _record(tmp_path, name, *, col=0, row=0, seed=0, width=300, height=200, **kw):
    """Two bands (B04, B08) of one record, offset by (row, col) pixels on one UTM grid."""
    transform = Affine(RES, 0, X0 + col * RES, 0, -RES, Y0 - row * RES)
    kw.setdefault("compress", "DEFLATE")
    kw.setdefault("predictor", 2)
    kw.setdefault("nodata", 0)
    data = {}
    for b, band in enumerate(("B04", "B08")):
        path = tmp_path / f"{name}_{band}.tif"
        data[band] = write_tiff(
            path, dtype="uint16", width=width, height=height, transform=transform,
            blockxsize=64, blockysize=32, seed=seed * 2 + b, **kw,
        )
    return data


def _group(href):
    stem = href.rsplit("/", 1)[-1].removesuffix(".tif")
    rid, band = stem.rsplit("_", 1)
    return rid, band


def _one_band(tmp_path, name, **kw):
    """One single-band COG: its RasterSource and rasterio's pixels."""
    path = tmp_path / name
    write_tiff(path, **kw)
    with rasterio.open(path) as r:
        expected = r.read(1)
    return xrr.build([str(path)]).sources("band_1")[0], expected


def _corner_task(tmp_path, name):
    """A task reading the top-left 8 x 8 of a small uint8 COG, and rasterio's pixels."""
    from xarray_rasteret._read import tasks as _tasks
    from xarray_rasteret._types import Window

    src, expected = _one_band(tmp_path, name, dtype="uint8", width=64, height=64,
                              compress="DEFLATE")
    return _tasks.ReadTask(src, 0, Window(0, 8, 0, 8), np.empty((8, 8), np.uint8), 0), expected


@pytest.fixture
def collection_path(tmp_path):
    """Three dated records on one grid, the second shifted; user columns kept."""
    arrays = {
        "r1": _record(tmp_path, "r1", seed=1),
        "r2": _record(tmp_path, "r2", col=100, row=-40, seed=2),
        "r3": _record(tmp_path, "r3", seed=3),
    }
    hrefs = sorted(str(p) for p in tmp_path.glob("*.tif"))
    col = xrr.build(hrefs, group_by=_group)
    table = col.table
    when = {"r1": "2024-01-05", "r2": "2024-01-01", "r3": "2024-02-01"}
    cloud = {"r1": 10.0, "r2": 55.5, "r3": 0.0}
    ids = table.column("id").to_pylist()
    table = with_datetimes(table, when)
    table = table.append_column("cloud_cover", pa.array([cloud[i] for i in ids]))
    path = tmp_path / "col.parquet"
    xrr.Collection(table).to_parquet(path)
    return path, arrays


def test_collection_opens_on_the_union_grid(collection_path):
    path, arrays = collection_path
    ds = xr.open_dataset(path, engine="rasteret")
    assert set(ds.data_vars) == {"B04", "B08"}
    assert ds.B04.dims == ("time", "y", "x")
    assert ds.B04.dtype == np.uint16
    assert list(ds.id.values) == ["r2", "r1", "r3"]  # sorted by time
    assert list(ds.cloud_cover.values) == [55.5, 10.0, 0.0]
    assert ds.sizes == {"time": 3, "y": 240, "x": 400}
    # x/y are pixel centres of the union grid: r2 starts 40 rows higher.
    assert ds.x.values[0] == X0 + RES / 2 and ds.y.values[0] == Y0 + 40 * RES - RES / 2
    values = ds.B04.values
    np.testing.assert_array_equal(values[1, 40:240, 0:300], arrays["r1"]["B04"][0])
    np.testing.assert_array_equal(values[0, 0:200, 100:400], arrays["r2"]["B04"][0])
    assert (values[1, :40] == 0).all() and (values[1, :, 300:] == 0).all()
    # Native data: _FillValue describes the stored values, in attrs (rioxarray's rule).
    assert ds.B04.attrs["nodata"] == 0 and ds.B04.attrs["_FillValue"] == 0
    assert "_FillValue" not in ds.B04.encoding
    assert ds.rio.crs == RioCRS.from_epsg(32633)
    assert ds.rio.transform() == Affine(RES, 0, X0, 0, -RES, Y0 + 40 * RES)


def test_open_is_lazy_and_reads_only_intersecting_tiles(collection_path):
    path, arrays = collection_path
    with xrr.track() as opening:
        ds = xr.open_dataset(path, engine="rasteret")
    assert opening.requests == 0
    src = xrr.load(path).sources("B04")
    r1 = next(s for s in src if s.href.endswith("r1_B04.tif"))
    layout = r1.levels[0]
    # Rows 50..90, cols 70..130 of r1: tile rows 1..2, tile cols 1..2 (64x32 tiles).
    expected = [(r, c) for r in (1, 2) for c in (1, 2)]
    tile_bytes = sum(int(layout.tile_byte_counts[r * layout.tiles_across + c]) for r, c in expected)
    first_tile = int(layout.tile_offsets.min())
    with xrr.track() as reading:
        got = ds.B04.isel(time=1, y=slice(40 + 50, 40 + 90), x=slice(70, 130)).values
    np.testing.assert_array_equal(got, arrays["r1"]["B04"][0, 50:90, 70:130])
    # Only those tiles: no header bytes, no other tile; adjacent tiles of a row merge
    # into one request, reading through GDAL's few bytes of tile leader/trailer.
    assert tile_bytes <= reading.bytes <= tile_bytes + 16 * len(expected)
    assert 1 <= reading.requests <= len(expected)
    assert first_tile > 0


def test_bbox_time_and_filters_select(collection_path):
    path, _ = collection_path
    ds = xr.open_dataset(path, engine="rasteret", time=("2024-01-02", "2024-01-31"))
    assert list(ds.id.values) == ["r1"]
    ds = xr.open_dataset(path, engine="rasteret", filters={"cloud_cover_lt": 20})
    assert list(ds.id.values) == ["r1", "r3"]
    bbox = (X0 + 1005, Y0 - 995, X0 + 1495, Y0 - 505)
    ds = xr.open_dataset(path, engine="rasteret", bbox=bbox, bbox_crs="EPSG:32633")
    assert ds.sizes["x"] == 50 and ds.sizes["y"] == 50
    assert ds.x.values[0] == X0 + 1005 and ds.y.values[0] == Y0 - 505
    with pytest.raises(AOIOutsideDataError, match="does not intersect"):
        xr.open_dataset(path, engine="rasteret", bbox=(-70.0, -10.0, -69.0, -9.0))


def test_default_chunks_are_whole_tiles_and_equal_unchunked(collection_path):
    path, _ = collection_path
    eager = xr.open_dataset(path, engine="rasteret").load()
    lazy = xr.open_dataset(path, engine="rasteret", chunks={})
    # Whole tiles up to 2048 px a side (here the whole grid of the three records, in
    # 64 x 32 tiles), and as many time steps as fit in 128 MiB (all three).
    ny, nx = lazy.sizes["y"], lazy.sizes["x"]
    assert ny < 2048 and nx < 2048
    assert lazy.B04.encoding["preferred_chunks"] == {"time": 3, "y": ny, "x": nx}
    assert lazy.B04.chunks == ((3,), (ny,), (nx,))
    xr.testing.assert_identical(lazy.compute(), eager)
    with warnings.catch_warnings():
        # xarray warns that these chunks split the default ones: that is the point here.
        warnings.filterwarnings("ignore", "The specified chunks separate", UserWarning)
        tiles = xr.open_dataset(path, engine="rasteret", chunks={"time": 1, "y": 32, "x": 64})
        odd = xr.open_dataset(path, engine="rasteret", chunks={"x": 77, "y": 41, "time": 2})
    assert tiles.B04.chunks[0] == (1, 1, 1)
    assert set(tiles.B04.chunks[2][:-1]) == {64} and set(tiles.B04.chunks[1][:-1]) == {32}
    xr.testing.assert_identical(tiles.compute(), eager)
    xr.testing.assert_identical(odd.compute(), eager)


def test_load_async_reads_every_band(collection_path):
    import asyncio

    path, arrays = collection_path
    ds = xr.open_dataset(path, engine="rasteret")

    async def main():
        return await ds.load_async()

    loaded = asyncio.run(main())
    np.testing.assert_array_equal(loaded.B08.values[1, 40:240, :300], arrays["r1"]["B08"][0])


def test_lazy_array_pickles_and_computes_on_distributed(collection_path):
    from distributed import Client, LocalCluster

    path, _ = collection_path
    ds = xr.open_dataset(path, engine="rasteret", chunks={})
    expected = xr.open_dataset(path, engine="rasteret").B04.values
    assert pickle.loads(pickle.dumps(ds)).B04.compute().values.tolist() == expected.tolist()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        as cluster,
        Client(cluster),
    ):
        got = ds.B04.compute().values
    np.testing.assert_array_equal(got, expected)


def test_mask_and_scale(tmp_path):
    path = tmp_path / "scaled.tif"
    data = write_tiff(path, dtype="int16", nodata=-1, compress="DEFLATE")
    data[0, :5, :5] = -1
    write_tiff(path, dtype="int16", nodata=-1, compress="DEFLATE", data=data)
    with rasterio.open(path, "r+") as dst:
        dst.scales = (0.5,)
        dst.offsets = (10.0,)
    ds = xr.open_dataset(path, engine="rasteret", mask_and_scale=True)
    got = ds.band_1.values[0]
    assert got.dtype.kind == "f"
    assert np.isnan(got[:5, :5]).all()
    expected = np.where(data[0] == -1, np.nan, data[0] * 0.5 + 10.0)
    np.testing.assert_allclose(got, expected)
    raw = xr.open_dataset(path, engine="rasteret")
    assert raw.band_1.dtype == np.int16 and raw.band_1.attrs["nodata"] == -1


CRS_CASES = {
    "epsg4326": ("EPSG:4326", Affine(0.001, 0, 10.0, 0, -0.001, 50.0)),
    "epsg3857": ("EPSG:3857", Affine(30.0, 0, 1_113_194.0, 0, -30.0, 6_800_000.0)),
    "utm32718": ("EPSG:32718", Affine(20.0, 0, 300_000.0, 0, -20.0, 8_000_000.0)),
    "no-epsg-laea": (
        "+proj=laea +lat_0=45 +lon_0=-100 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs",
        Affine(100.0, 0, -50_000.0, 0, -100.0, 60_000.0),
    ),
    "south-up": ("EPSG:32633", Affine(10.0, 0, 600_000.0, 0, 10.0, 4_000_000.0)),
}


@pytest.mark.parametrize("name", list(CRS_CASES))
def test_georeferencing_matches_rioxarray(tmp_path, name):
    crs, transform = CRS_CASES[name]
    path = tmp_path / f"{name}.tif"
    write_tiff(path, dtype="float32", nodata=float("nan"), crs=crs, transform=transform,
               compress="ZSTD", predictor=3)
    ours = xr.open_dataset(path, engine="rasteret")
    theirs = rioxarray.open_rasterio(path)
    np.testing.assert_allclose(ours.x.values, theirs.x.values, rtol=0, atol=1e-9 * abs(transform.a))
    np.testing.assert_allclose(ours.y.values, theirs.y.values, rtol=0, atol=1e-9 * abs(transform.e))
    np.testing.assert_array_equal(ours.band_1.values[0], theirs.values[0])
    assert ours.rio.crs == theirs.rio.crs
    assert ours.rio.transform().almost_equals(theirs.rio.transform())
    assert np.isnan(ours.band_1.attrs["nodata"])


def test_pixel_is_point_shifted_like_gdal(tmp_path):
    path = tmp_path / "point.tif"
    write_tiff(path, dtype="uint16")
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(AREA_OR_POINT="Point")
    with rasterio.open(path) as src:
        expected = src.transform
    ours = xr.open_dataset(path, engine="rasteret")
    assert ours.rio.transform().almost_equals(expected)


def test_no_georeferencing_gives_pixel_coords_and_warns(tmp_path):
    path = tmp_path / "plain.tif"
    data = write_tiff(path, dtype="uint8", crs=None, transform=None, width=40, height=30)
    with pytest.warns(UserWarning, match="no georeferencing"):
        ds = xr.open_dataset(path, engine="rasteret")
    assert "crs_wkt" not in ds.spatial_ref.attrs
    np.testing.assert_array_equal(ds.x.values, np.arange(40) + 0.5)
    np.testing.assert_array_equal(ds.band_1.values[0], data[0])


def test_overview_level_matches_rasterio(tmp_path):
    path = tmp_path / "ovr.tif"
    write_tiff(path, dtype="uint16", width=500, height=400, compress="DEFLATE",
               overviews=(2, 4), blockxsize=128, blockysize=128)
    for level in (1, 2):
        with rasterio.open(path, overview_level=level - 1) as src:
            expected = src.read(1)
            transform = src.transform
        ds = xr.open_dataset(path, engine="rasteret", overview_level=level)
        np.testing.assert_array_equal(ds.band_1.values[0], expected)
        assert ds.rio.transform().almost_equals(transform)
    with pytest.raises(ValueError, match="overview_level=3"):
        xr.open_dataset(path, engine="rasteret", overview_level=3)


def test_engine_is_registered_and_guesses():
    engines = xr.backends.list_engines()
    entry = engines["rasteret"]
    assert "GeoTIFF" in entry.description and entry.url.startswith("https://")
    assert entry.guess_can_open("a/b/collection.parquet")
    # GeoTIFFs are left to rioxarray's engine (tests/lazy/test_conventions.py).
    assert not entry.guess_can_open("s3://bucket/x.TIF")
    assert not entry.guess_can_open("data.nc")


# ---------------------------------------------------------------------------- errors


def test_unknown_band_lists_bands(collection_path):
    path, _ = collection_path
    with pytest.raises(BandNotFoundError, match=r"B99.*B04.*B08"):
        xr.open_dataset(path, engine="rasteret", bands=["B99"])
    with pytest.raises(KeyError):
        xr.open_dataset(path, engine="rasteret", bands=["B99"])


def test_record_without_band_metadata(collection_path, tmp_path):
    path, _ = collection_path
    table = xrr.load(path).table
    i = table.schema.get_field_index("B08_metadata")
    column = table.column(i).to_pylist()
    column[0] = None
    table = table.set_column(i, "B08_metadata", pa.array(column, table.schema.field(i).type))
    broken = tmp_path / "broken.parquet"
    xrr.Collection(table).to_parquet(broken)
    with pytest.raises(MissingMetadataError, match=r"B08"):
        xr.open_dataset(broken, engine="rasteret", bands=["B08"])
    ds = xr.open_dataset(broken, engine="rasteret", bands=["B04"])
    assert ds.sizes["time"] == 3
    # Only the bands asked for are loaded from the index.
    assert ds.encoding["rasteret_collection"].bands == ["B04"]


def test_unsupported_codec_is_a_clear_error(collection_path, tmp_path):
    path, _ = collection_path
    table = xrr.load(path).table
    i = table.schema.get_field_index("B04_metadata")
    rows = table.column(i).to_pylist()
    for r in rows:
        r["compression"] = 34661  # JBIG: not a codec for multi-bit rasters
    table = table.set_column(i, "B04_metadata", pa.array(rows, table.schema.field(i).type))
    odd = tmp_path / "odd.parquet"
    xrr.Collection(table).to_parquet(odd)
    with pytest.raises(UnsupportedTiffError, match="34661"):
        xr.open_dataset(odd, engine="rasteret", bands=["B04"]).B04.values


def test_not_a_tiff(tmp_path):
    path = tmp_path / "fake.tif"
    path.write_text("this is not a tiff at all" * 100)
    with pytest.raises(NotATiffError, match="fake.tif"):
        xr.open_dataset(path, engine="rasteret")


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.tif"
    write_tiff(path, dtype="uint16", compress="DEFLATE", width=256, height=256)
    ds = xr.open_dataset(path, engine="rasteret")
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 2000)
    # Read after the cut: the size check on the response names the change.
    with pytest.raises(ObjectChangedError, match=r"cut.tif.*size"):
        ds.band_1.values
    # Indexing the cut file: its tiles run past its end.
    with pytest.raises(TruncatedFileError, match="cut.tif"):
        xr.open_dataset(path, engine="rasteret")


def test_rotated_transform_is_refused(tmp_path):
    path = tmp_path / "rot.tif"
    write_tiff(path, dtype="uint8", transform=Affine(10, 2, 600_000, 2, -10, 5_000_000))
    with pytest.raises(UnsupportedTiffError, match="rotated"):
        xr.open_dataset(path, engine="rasteret")


def test_records_on_different_grids_say_what_to_pass(tmp_path):
    write_tiff(tmp_path / "a.tif", dtype="uint8", crs="EPSG:32633")
    write_tiff(tmp_path / "b.tif", dtype="uint8", crs="EPSG:32634")
    col = xrr.build([str(tmp_path / "a.tif"), str(tmp_path / "b.tif")])
    with pytest.raises(ReprojectionRequiredError, match="crs="):
        xr.open_dataset(col, engine="rasteret")


def test_no_warnings_on_a_plain_open(collection_path):
    path, _ = collection_path
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xr.open_dataset(path, engine="rasteret").B04.isel(time=0, x=0, y=0).values


@pytest.mark.parametrize("nodata", [7, None])
def test_sparse_tiles_read_as_nodata(tmp_path, nodata):
    path = tmp_path / "sparse.tif"
    data = np.full((1, 200, 300), nodata if nodata is not None else 0, dtype="uint16")
    data[0, 70:130, 10:50] = 1234  # only a few tiles hold data
    write_tiff(path, dtype="uint16", data=data, nodata=nodata, compress="DEFLATE",
               SPARSE_OK=True, width=300, height=200)
    src = xrr.build([str(path)]).sources("band_1")[0]
    assert (src.levels[0].tile_byte_counts == 0).sum() > 0  # GDAL left tiles out
    with rasterio.open(path) as r:
        expected = r.read(1)
    got = xr.open_dataset(path, engine="rasteret").band_1.values[0]
    np.testing.assert_array_equal(got, expected)


def test_concurrent_reads_share_tiles_in_flight(collection_path):
    import asyncio

    path, arrays = collection_path
    ds = xr.open_dataset(path, engine="rasteret", cache=False)
    windows = [ds.B04.isel(time=1, y=slice(40 + 10 * i, 40 + 10 * i + 50), x=slice(0, 120))
               for i in range(6)]
    with xrr.track() as alone:
        ds.B04.isel(time=1, y=slice(40, 40 + 100), x=slice(0, 120)).values  # their union

    async def main():
        return await asyncio.gather(*(w.load_async() for w in windows))

    with xrr.track() as together:
        loaded = asyncio.run(main())
    for i, w in enumerate(loaded):
        np.testing.assert_array_equal(w.values, arrays["r1"]["B04"][0, 10 * i : 10 * i + 50, :120])
    # Six overlapping windows fetch each tile of their union once, not six times,
    # in one merged read: as few requests as the union's own read.
    assert together.bytes == alone.bytes
    assert together.requests == alone.requests


def test_reads_waiting_for_a_tile_are_pasted_by_the_read_that_decodes_it(
    collection_path, monkeypatch
):
    # Reads started in different turns of the loop share tiles in flight: the read
    # that fetches a tile pastes it for the others from its scratch buffer (no
    # decoded tile is kept for them), and their pixels are right.
    import asyncio

    from xarray_rasteret._read import fetch as _fetch

    path, arrays = collection_path
    ds = xr.open_dataset(path, engine="rasteret", cache=False)
    real = _fetch._decode_and_paste
    pasted_for_others = []

    def decode_and_paste(job, data):
        pasted = real(job, data)
        pasted_for_others.append(len(pasted))
        return pasted

    monkeypatch.setattr(_fetch, "_decode_and_paste", decode_and_paste)
    windows = [ds.B04.isel(time=1, y=slice(40 + 10 * i, 90 + 10 * i), x=slice(0, 120))
               for i in range(4)]

    async def main():
        first = asyncio.ensure_future(windows[0].load_async())
        await asyncio.sleep(0)  # the first read is planned and fetching: the others wait
        rest = [w.load_async() for w in windows[1:]]
        return await asyncio.gather(first, *rest)

    with xrr.track() as stats:
        loaded = asyncio.run(main())
    for i, w in enumerate(loaded):
        np.testing.assert_array_equal(w.values, arrays["r1"]["B04"][0, 10 * i : 10 * i + 50, :120])
    assert sum(pasted_for_others) > 0
    with xrr.track() as alone:
        ds.B04.isel(time=1, y=slice(40, 120), x=slice(0, 120)).values  # their union
    assert stats.requests == alone.requests


def test_merged_reads_decode_each_tile_once_and_survive_a_cancelled_caller(
    collection_path, monkeypatch
):
    import asyncio

    from xarray_rasteret._read import fetch as _fetch

    path, arrays = collection_path
    ds = xr.open_dataset(path, engine="rasteret", cache=False)
    decoded = []
    decode = _fetch.decode

    def counting_decode(job, data, rows_needed, *args):
        decoded.append((job.source.href, job.row, job.col))
        return decode(job, data, rows_needed, *args)

    monkeypatch.setattr(_fetch, "decode", counting_decode)
    windows = [ds.B04.isel(time=1, y=slice(40 + 10 * i, 90 + 10 * i), x=slice(0, 120))
               for i in range(6)]

    async def main():
        loads = [asyncio.ensure_future(w.load_async()) for w in windows]
        await asyncio.sleep(0)  # every load has submitted its tasks
        loads[2].cancel()
        return await asyncio.gather(*loads, return_exceptions=True)

    loaded = asyncio.run(main())
    assert isinstance(loaded[2], asyncio.CancelledError)
    for i, w in enumerate(loaded):
        if i != 2:
            np.testing.assert_array_equal(
                w.values, arrays["r1"]["B04"][0, 10 * i : 10 * i + 50, :120]
            )
    assert len(decoded) == len(set(decoded))  # no tile decoded twice


def test_a_failed_merged_read_fails_its_callers_clearly(collection_path):
    import asyncio
    import os

    path, _ = collection_path
    ds = xr.open_dataset(path, engine="rasteret", cache=False)
    os.remove(path.parent / "r1_B04.tif")  # the file behind time step 1 disappears after indexing
    windows = [ds.B04.isel(time=t, y=slice(0, 50), x=slice(0, 60)) for t in (1, 1)]

    async def main():
        return await asyncio.gather(*(w.load_async() for w in windows),
                                    return_exceptions=True)

    results = asyncio.run(main())
    for r in results:
        assert isinstance(r, Exception)
        assert "r1_B04.tif" in str(r)


def _join_while_decoding(monkeypatch, first, second):
    """Read ``first``; once its tile is decoding (held), read ``second``, then release.

    Returns the requests made and the tiles decoded.
    """
    import asyncio
    import threading

    from xarray_rasteret._read import fetch as _fetch

    started, release = threading.Event(), threading.Event()
    decode = _fetch.decode
    decoded = []

    def slow_decode(job, data, rows_needed, *args):
        decoded.append((job.row, job.col))
        started.set()
        release.wait(10)
        return decode(job, data, rows_needed, *args)

    monkeypatch.setattr(_fetch, "decode", slow_decode)

    async def main():
        loop = asyncio.get_running_loop()
        one = asyncio.create_task(_fetch.read_into([first]))
        await loop.run_in_executor(None, started.wait, 10)  # the first decode has begun
        two = asyncio.create_task(_fetch.read_into([second]))
        await asyncio.sleep(0.05)  # the second read finds the tile in flight and waits
        release.set()
        await asyncio.gather(one, two)

    with xrr.track() as stats:
        asyncio.run(main())
    return stats.requests, decoded


@pytest.mark.parametrize(
    ("size", "first", "second"),
    [
        # The first read decodes only the top 10 rows; the late one wants the bottom.
        (512, (0, 10, 0, 512), (400, 512, 0, 512)),
        # Same window: nobody waited when the decode began, so nobody else was pasted.
        (256, (0, 256, 0, 256), (0, 256, 0, 256)),
    ],
    ids=["fewer rows decoded", "joined after the decode began"],
)
def test_a_late_reader_of_a_tile_being_decoded_fetches_it_itself(
    tmp_path, monkeypatch, size, first, second
):
    """A read joining a shared tile after its decode began, unable to use it, gets its own."""
    from xarray_rasteret._read import tasks as _tasks
    from xarray_rasteret._types import Window

    src, expected = _one_band(tmp_path, "late.tif", dtype="uint16", width=size, height=size,
                              blockxsize=size, blockysize=size, compress="DEFLATE", predictor=2)
    tasks = [_tasks.ReadTask(src, 0, Window(*w), np.empty((w[1] - w[0], w[3] - w[2]), np.uint16), 0)
             for w in (first, second)]
    requests, decoded = _join_while_decoding(monkeypatch, *tasks)
    assert decoded == [(0, 0), (0, 0)]  # decoded by each read
    for task, (r0, r1, c0, c1) in zip(tasks, (first, second), strict=True):
        np.testing.assert_array_equal(task.out, expected[r0:r1, c0:c1])
    assert requests == 2  # the late read fetched the tile again


def test_pointwise_isel_reads_only_the_tiles_of_the_points(tmp_path):
    path = tmp_path / "points.tif"
    write_tiff(path, dtype="int16", width=600, height=400, compress="DEFLATE", predictor=2,
               nodata=-1)
    ds = xr.open_dataset(path, engine="rasteret")
    with rasterio.open(path) as r:
        full = r.read(1)
    src = xrr.build([str(path)]).sources("band_1")[0]
    rows = np.array([3, 397, 200, 3, -1])
    cols = np.array([5, 590, 300, 6, 0])
    with xrr.track() as stats:
        got = ds.band_1.isel(y=xr.DataArray(rows, dims="p"), x=xr.DataArray(cols, dims="p"))
        got = got.values
    np.testing.assert_array_equal(got[0], full[rows, cols])
    # Four tiles hold the five points (two share one); their bounding box is all 35.
    lay = src.levels[0]
    tiles = {(r % 400 // lay.tile_height, c // lay.tile_width)
             for r, c in zip(rows, cols, strict=True)}
    assert len(tiles) == 4
    counts = lay.tile_byte_counts.reshape(-1, lay.tiles_across)
    assert stats.bytes <= sum(int(counts[t]) for t in tiles) + 16 * len(tiles)
    # Broadcast 2-D keys, a time slice and nearest-neighbour sel agree with memory.
    mem = ds.band_1.load()
    key = {"y": xr.DataArray([[10, 20], [30, 399]], dims=("a", "b")),
           "x": xr.DataArray([7, 599], dims="b")}
    np.testing.assert_array_equal(ds.band_1.isel(**key).values, mem.isel(**key).values)
    sel = {"x": xr.DataArray(ds.x.values[[4, 500]], dims="q"),
           "y": xr.DataArray(ds.y.values[[9, 1]], dims="q")}
    np.testing.assert_array_equal(
        ds.band_1.sel(**sel, method="nearest").values, mem.sel(**sel, method="nearest").values
    )


def test_read_then_runs_each_group_once_its_own_tasks_are_read(tmp_path):
    """Each group's function runs after its tasks' pixels are in, while others still read."""
    import asyncio

    from xarray_rasteret._read import schedule as _schedule
    from xarray_rasteret._read import tasks as _tasks
    from xarray_rasteret._types import Window

    src, expected = _one_band(tmp_path, "groups.tif", dtype="uint16", width=512, height=512,
                              blockxsize=128, blockysize=128, compress="DEFLATE", predictor=2)

    def task(r0, r1, c0, c1):
        return _tasks.ReadTask(src, 0, Window(r0, r1, c0, c1),
                               np.empty((r1 - r0, c1 - c0), np.uint16), 0)

    groups = {
        "two windows": [task(0, 100, 0, 100), task(300, 512, 200, 512)],
        "shares a tile": [task(50, 120, 50, 120)],
        "outside the image": [task(600, 700, 0, 10)],
        "no tasks": [],
    }
    seen = {}

    def then(name):
        def check():
            # Every window of the group is complete when its function runs.
            seen[name] = all(
                np.array_equal(
                    t.out,
                    np.pad(expected, 200)[t.window.row_start + 200 : t.window.row_stop + 200,
                                          t.window.col_start + 200 : t.window.col_stop + 200],
                )
                for t in groups[name]
            )
        return check

    asyncio.run(_schedule.read_then([(ts, then(name)) for name, ts in groups.items()]))
    assert seen == dict.fromkeys(groups, True)


def test_read_then_propagates_errors_of_the_functions(tmp_path):
    import asyncio

    from xarray_rasteret._read import schedule as _schedule

    t, _ = _corner_task(tmp_path, "err.tif")

    def boom():
        raise ValueError("resampling failed")

    with pytest.raises(ValueError, match="resampling failed"):
        asyncio.run(_schedule.read_then([([t], boom)]))


def test_read_then_counts_a_task_listed_twice_once(tmp_path):
    import asyncio

    from xarray_rasteret._read import schedule as _schedule

    t, expected = _corner_task(tmp_path, "twice.tif")
    ran = []

    async def main():
        await asyncio.wait_for(_schedule.read_then([([t, t], lambda: ran.append(1))]), 10)

    asyncio.run(main())
    assert ran == [1]
    np.testing.assert_array_equal(t.out, expected[:8, :8])


def test_read_then_plans_more_groups_while_the_first_are_read(tmp_path):
    """``more`` runs while the first groups read; its groups are read too; tiles are counted."""
    import asyncio
    import threading

    from xarray_rasteret._read import schedule as _schedule
    from xarray_rasteret._read import tasks as _tasks
    from xarray_rasteret._types import Window

    src, expected = _one_band(tmp_path, "more.tif", dtype="uint16", width=256, height=256,
                              blockxsize=64, blockysize=64, compress="DEFLATE")

    def task(r0, r1, c0, c1):
        return _tasks.ReadTask(src, 0, Window(r0, r1, c0, c1),
                               np.empty((r1 - r0, c1 - c0), np.uint16), 0)

    first, second = task(0, 64, 0, 128), task(128, 256, 64, 256)
    first_read = threading.Event()
    ran, progress = [], []

    def more():
        # The first group's read does not wait for this function.
        assert first_read.wait(10)
        return [([second], lambda: ran.append("second"))]

    groups = [([first], lambda: (ran.append("first"), first_read.set()))]
    on_tile = lambda d, t: progress.append((d, t))  # noqa: E731
    asyncio.run(_schedule.read_then(groups, on_tile=on_tile, more=more))
    assert ran == ["first", "second"]
    np.testing.assert_array_equal(first.out, expected[:64, :128])
    np.testing.assert_array_equal(second.out, expected[128:, 64:])
    assert sum(d for d, _ in progress) == 2 + 6 and progress[-1][1] == 8


def test_read_then_runs_a_staged_first_step_while_the_tiles_travel(tmp_path):
    """A Staged function's first step starts with the read; its second runs after both."""
    import asyncio
    import threading

    from xarray_rasteret._read import schedule as _schedule
    from xarray_rasteret._read import tasks as _tasks

    t, expected = _corner_task(tmp_path, "staged.tif")
    order = []
    first_done = threading.Event()

    def first():
        order.append(("first", t.out is not None))
        first_done.set()

    def then():
        order.append(("then", first_done.is_set(), np.array_equal(t.out, expected[:8, :8])))

    asyncio.run(_schedule.read_then([([t], _tasks.Staged(first, then))]))
    assert order == [("first", True), ("then", True, True)]

    def boom():
        raise ValueError("positions failed")

    with pytest.raises(ValueError, match="positions failed"):
        asyncio.run(_schedule.read_then([([t], _tasks.Staged(boom, then))]))
    ran = []
    _tasks.Staged(lambda: ran.append(1), lambda: ran.append(2))()  # called directly: both
    assert ran == [1, 2]


def test_read_then_stops_the_first_read_when_more_fails(tmp_path):
    import asyncio

    from xarray_rasteret._read import schedule as _schedule

    t, _ = _corner_task(tmp_path, "more_err.tif")

    def more():
        raise ValueError("planning failed")

    async def main():
        with pytest.raises(ValueError, match="planning failed"):
            await asyncio.wait_for(_schedule.read_then([([t], None)], more=more), 10)
        return [x for x in asyncio.all_tasks() if x is not asyncio.current_task()]

    assert asyncio.run(main()) == []  # the first read was stopped, not left running


def test_mosaic_plan_rejects_an_output_of_the_wrong_shape(tmp_path):
    from xarray_rasteret._lazy.mosaic import Member, MosaicArray
    from xarray_rasteret._read.tasks import ReadOptions
    from xarray_rasteret.geo.grid import RasterGrid

    src, _ = _one_band(tmp_path, "plan_out.tif", dtype="uint8", width=64, height=64,
                       compress="DEFLATE")
    grid = RasterGrid(src.crs, src.transform, 64, 64)
    array = MosaicArray([[Member(src, 0, (0, 0))]], grid, np.dtype("uint8"), 0, "nearest",
                        ReadOptions())
    with pytest.raises(ValueError, match=r"out has shape \(1, 8, 8\), the key needs \(1, 64, 64\)"):
        array.plan((slice(None),) * 3, out=np.empty((1, 8, 8), np.uint8))
    out = np.empty((1, 64, 64), np.uint8)
    assert array.plan((slice(None),) * 3, out=out)[0] is out
