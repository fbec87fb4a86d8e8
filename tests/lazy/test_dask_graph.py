"""Dask graphs of the engine: default chunks, tasks carrying only their records, clusters.

Synthetic Sentinel-2-like indexes (built in the package's schema, no file
behind them) measure graphs; real COGs served on 127.0.0.1 are computed on a
2-process ``LocalCluster`` and compared with rasterio.
"""

from __future__ import annotations

import datetime as dt
import math
import pickle
import warnings

import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr
from affine import Affine

import xarray_rasteret as xrr
from cogs import with_datetimes, write_tiff
from servers import RangeHTTPServer, _Handler
from xarray_rasteret._lazy.chunking import default_chunks
from xarray_rasteret._types import RasterSource, TileEncoding, TileLayout
from xarray_rasteret.collection import Collection
from xarray_rasteret.collection.schema import make_table

S2 = 10980
TILE = 1024


def _s2_levels(i: int) -> tuple[TileLayout, ...]:
    """10980 px in 1024 px tiles and one overview; the tile tables are the record's own.

    (One overview, not the five of a real pyramid, keeps building 10k records fast.)
    """
    levels, start = [], 16384 + 977 * i
    for size in (S2, math.ceil(S2 / 2)):
        n = math.ceil(size / TILE) ** 2
        counts = np.full(n, 400_000 + i % 1000, dtype=np.int64)
        offsets = start + np.arange(n, dtype=np.int64) * counts[0]
        levels.append(TileLayout(size, size, TILE, TILE, offsets, counts))
        start = int(offsets[-1] + counts[-1])
    return tuple(levels)


def _s2_collection(n: int) -> Collection:
    """``n`` records of band B04 on one 10980 px UTM grid; the files do not exist."""
    enc = TileEncoding(compression=8, predictor=2, dtype="<u2")
    transform = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5300040.0)
    sources = [
        RasterSource(f"http://127.0.0.1:9/T33TYN_{i:05d}_B04.tif", transform, "EPSG:32633",
                     enc, _s2_levels(i), nodata=0.0)
        for i in range(n)
    ]
    t0 = dt.datetime(2017, 1, 1)
    table = make_table(
        ids=[f"S2_{i:05d}" for i in range(n)],
        datetimes=[t0 + dt.timedelta(hours=12 * i) for i in range(n)],
        geometries=[shapely.box(15.0, 47.0, 16.4, 48.0)] * n,
        crs=["EPSG:32633"] * n,
        assets={"B04": [(s.href, 1) for s in sources]},
        sources={"B04": sources},
        user={"platform": ["sentinel-2a" if i % 2 else "sentinel-2b" for i in range(n)]},
    )
    return Collection(table)


def _culled_bytes(arr) -> int:
    """Bytes of the optimized graph dask ships for ``arr`` (pickle 5, buffers counted)."""
    import dask

    (opt,) = dask.optimize(arr)
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(dict(opt.__dask_graph__()), protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(b.raw().nbytes for b in buffers)


# ---------------------------------------------------------------- graph sizes (no I/O)


def test_default_chunks_keep_a_sentinel2_stack_under_100k_tasks():
    chunks = default_chunks(TILE, TILE, (10_000, S2, S2), np.dtype("uint16"))
    assert chunks == {"time": 16, "y": 2048, "x": 2048}  # 2 tiles a side, 128 MiB
    blocks = math.ceil(10_000 / 16) * math.ceil(S2 / 2048) ** 2
    assert blocks <= 100_000
    # float32 chunks hold half as many time steps; small tiles still make 2048 px chunks.
    assert default_chunks(TILE, TILE, (100, S2, S2), np.dtype("float32"))["time"] == 8
    assert default_chunks(256, 512, (3, 5000, 5000), np.dtype("uint8")) == {
        "time": 3, "y": 2048, "x": 2048,
    }


def test_chunks_default_task_count_and_numpy_coordinates():
    n = 100
    ds = xr.open_dataset(_s2_collection(n), engine="rasteret", chunks={})
    arr = ds.B04.data
    assert arr.chunksize == (16, 2048, 2048)
    time_chunks, side = math.ceil(n / 16), math.ceil(S2 / 2048)
    assert arr.npartitions == time_chunks * side * side
    # One task per block, plus one key per time chunk holding that chunk's records.
    assert len(arr.__dask_graph__()) == arr.npartitions + time_chunks
    # Index coordinates and index columns are in memory: numpy, not dask.
    for name in ("time", "x", "y", "id", "platform"):
        assert type(ds[name].variable._data).__name__ in ("ndarray", "PandasIndexingAdapter"), name
        assert isinstance(ds[name].values, np.ndarray)
        assert ds[name].chunks is None, name


def _shipped_bytes(arr) -> int:
    """Bytes of ``arr``'s graph as it is, unoptimized: what distributed sends the scheduler."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(dict(arr.__dask_graph__()), protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(b.raw().nbytes for b in buffers)


def test_culled_window_graph_size_does_not_grow_with_the_records():
    culled, shipped = {}, {}
    for n in (1_000, 10_000):
        ds = xr.open_dataset(_s2_collection(n), engine="rasteret", chunks={})
        window = ds.B04.isel(time=n // 2, y=slice(0, 256), x=slice(0, 256)).mean()
        culled[n] = _culled_bytes(window.data)
        # A selection keeps only its own tasks, so the graph dask.distributed ships
        # (before the scheduler culls it) is as small.
        shipped[n] = _shipped_bytes(window.data)
    assert abs(culled[10_000] - culled[1_000]) < 3_000, culled
    assert abs(shipped[10_000] - shipped[1_000]) < 3_000, shipped
    assert culled[10_000] < 50_000 and shipped[10_000] < 50_000, (culled, shipped)
    # The whole array's graph does hold every record (each once).
    assert _shipped_bytes(ds.B04.data) > 100 * shipped[10_000]


def test_whole_array_pickles_lean():
    """Pickled, each record keeps only the tile table of the level it reads."""
    col = _s2_collection(20)
    ds = xr.open_dataset(col, engine="rasteret")
    back = pickle.loads(pickle.dumps(ds))
    array = back.B04.variable._data
    while not hasattr(array, "placements"):
        array = array.array
    placements = array.placements
    assert len(placements) == 20
    full = col.sources("B04")
    for p, src in zip(placements, full, strict=True):
        assert p.level == 0
        np.testing.assert_array_equal(p.source.levels[0].tile_offsets, src.levels[0].tile_offsets)
        assert all(lv.tile_offsets.size == 0 for lv in p.source.levels[1:])
        assert [lv.width for lv in p.source.levels] == [lv.width for lv in src.levels]


# ---------------------------------------------------------------- on a 2-process cluster


class _RecordingHandler(_Handler):
    """The test server's handler, recording each request's file and first byte."""

    def _respond(self, head, fault):
        spec = self.headers.get("Range") or "bytes=0-"
        start = int(spec.split("=", 1)[1].split("-", 1)[0] or 0)
        with self.server.lock:
            self.server.seen.append((self.path.rsplit("/", 1)[-1], start))
        return super()._respond(head, fault)


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0")
        as cl,
        Client(cl) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Six dated COGs of one band on one grid, served over loopback HTTP, and their collection."""
    root = tmp_path_factory.mktemp("dask-cogs")
    arrays = {}
    for i in range(6):
        name = f"s{i}_B04.tif"
        arrays[name] = write_tiff(
            root / name, dtype="uint16", width=300, height=200, blockxsize=64, blockysize=32,
            compress="DEFLATE", predictor=2, nodata=0, seed=10 + i,
            transform=Affine(10.0, 0, 600_000.0, 0, -10.0, 5_000_000.0),
        )
    server = RangeHTTPServer(root)
    server.RequestHandlerClass = _RecordingHandler
    server.seen = []
    with server:
        col = xrr.build([server.url(n) for n in sorted(arrays)], group_by=_group)
        t0 = dt.datetime(2024, 1, 1)
        when = {f"s{i}": (t0 + dt.timedelta(days=i)).date().isoformat() for i in range(6)}
        col = Collection(with_datetimes(col.table, when))
        yield server, col, root


def _group(href):
    stem = href.rsplit("/", 1)[-1].removesuffix(".tif")
    rid, band = stem.rsplit("_", 1)
    return rid, band


def test_cluster_reduction_equals_rasterio_with_no_header_request(served, cluster):
    server, col, root = served
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The specified chunks separate", UserWarning)
        ds = xr.open_dataset(col, engine="rasteret", chunks={"time": 2, "y": 64, "x": 128})
    assert ds.B04.data.npartitions == 3 * 4 * 3
    expected = np.zeros((200, 300), dtype=np.int64)
    for name in sorted(p.name for p in root.glob("*.tif")):
        with rasterio.open(root / name) as r:
            expected += r.read(1).astype(np.int64)
    data_start = {
        s.href.rsplit("/", 1)[-1]: min(int(lv.tile_offsets.min()) for lv in s.levels)
        for s in col.sources("B04")
    }
    with server.lock:
        server.seen.clear()
    total = ds.B04.astype("int64").sum("time")
    got = cluster.compute(total).result()
    np.testing.assert_array_equal(got.values, expected)
    no_dask = xr.open_dataset(col, engine="rasteret").B04.astype("int64").sum("time")
    np.testing.assert_array_equal(got.values, no_dask.values)
    with server.lock:
        seen = list(server.seen)
    assert seen, "the cluster read nothing"
    headers = [(f, start) for f, start in seen if start < data_start[f]]
    assert headers == []


def test_cluster_window_of_one_record(served, cluster):
    server, col, root = served
    ds = xr.open_dataset(col, engine="rasteret", chunks={})
    window = ds.B04.isel(time=4, y=slice(40, 104), x=slice(100, 164))
    with rasterio.open(root / "s4_B04.tif") as r:
        expected = r.read(1)[40:104, 100:164]
    np.testing.assert_array_equal(cluster.compute(window).result().values, expected)
    assert _culled_bytes(window.data) < 50_000


def test_mosaic_chunks_on_cluster_equal_unchunked(served, cluster):
    _, col, _ = served
    kw = {"engine": "rasteret", "crs": "EPSG:32633", "resolution": 20.0}
    eager = xr.open_dataset(col, **kw).B04.values
    ds = xr.open_dataset(col, chunks={}, **kw)
    assert ds.B04.chunks[0] == (6,)
    np.testing.assert_array_equal(cluster.compute(ds.B04).result().values, eager)


def test_sharded_chunks_equal_rasterio_masked_and_after_lazy_selection(served):
    _, col, root = served
    names = sorted(p.name for p in root.glob("*.tif"))
    expected = []
    for name in names:
        with rasterio.open(root / name) as r:
            expected.append(r.read(1, masked=True).astype(np.float32).filled(np.nan))
    expected_arr = np.stack(expected)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The specified chunks separate", UserWarning)
        ds = xr.open_dataset(col, engine="rasteret", mask_and_scale=True,
                             chunks={"time": 4, "y": 96, "x": 64})
    assert any(isinstance(k, str) and "-records-" in k for k in ds.B04.data.__dask_graph__())
    np.testing.assert_array_equal(ds.B04.values, expected_arr)
    # A lazy selection first, then chunks: xarray's own from_array path, same pixels.
    lazy = xr.open_dataset(col, engine="rasteret", mask_and_scale=True)
    picked = lazy.isel(time=slice(1, 4), x=slice(10, 250)).chunk({"time": 1})
    np.testing.assert_array_equal(picked.B04.values, expected_arr[1:4, :, 10:250])
