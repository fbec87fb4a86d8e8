"""One fetch and one decode serve every sample of a pixel-interleaved tile.

``ds.load()`` loads the band variables one after another; for a chunky file
with many samples each would fetch and decode every tile again. The decoded
tile cache (``_read/_tile_cache.py``) makes the whole load cost the requests
and bytes of one pass over the tiles, counted at the store.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin

import xarray_rasteret as xrr
from xarray_rasteret._read._tile_cache import TileCache, tile_cache
from xarray_rasteret._read.fetch import read_into
from xarray_rasteret._read.tasks import ReadTask
from xarray_rasteret._sync import sync
from xarray_rasteret._types import Window
from xarray_rasteret.ingest import build

SAMPLES, SIDE, TILE = 31, 256, 64


@pytest.fixture(scope="module")
def chunky(tmp_path_factory):
    path = tmp_path_factory.mktemp("chunky") / "many_samples.tif"
    rng = np.random.default_rng(0)
    data = rng.integers(0, 50, (SAMPLES, SIDE, SIDE)).astype("uint16")
    with rasterio.open(
        path, "w", driver="GTiff", width=SIDE, height=SIDE, count=SAMPLES, dtype="uint16",
        tiled=True, blockxsize=TILE, blockysize=TILE, interleave="pixel", compress="deflate",
        transform=from_origin(500000, 4100000, 10, 10), crs="EPSG:32633",
    ) as dst:  # fmt: skip
        dst.write(data)
    return path, data


def _one_pass(path) -> xrr.ReadStats:
    """Requests and bytes of reading every sample in one read (each tile once)."""
    coll = build([str(path)])
    tasks = [
        ReadTask(src, 0, Window(0, SIDE, 0, SIDE), np.empty((SIDE, SIDE), "uint16"), fill=0)
        for b in range(SAMPLES)
        for src in coll.sources(f"band_{b + 1}")
    ]
    tile_cache.clear()
    with xrr.track() as stats:
        sync(read_into(tasks))
    return stats


def test_load_costs_one_pass_over_the_tiles(chunky) -> None:
    path, data = chunky
    once = _one_pass(path)
    n = SIDE // TILE
    tiles = n * n
    with rasterio.open(path) as src:
        stored = sum(src.block_size(1, r, c) for r in range(n) for c in range(n))
    assert once.requests >= 1 and stored <= once.bytes <= stored + 1024 * tiles

    tile_cache.clear()
    ds = xr.open_dataset(path, engine="rasteret")
    with xrr.track() as stats:
        ds.load()
    assert (stats.requests, stats.bytes) == (once.requests, once.bytes)
    for b in range(SAMPLES):
        np.testing.assert_array_equal(ds[f"band_{b + 1}"].values[0], data[b])
    assert len(tile_cache) == 0  # every sample pasted: nothing left held


def test_a_window_then_its_other_bands(chunky) -> None:
    path, data = chunky
    tile_cache.clear()
    ds = xr.open_dataset(path, engine="rasteret")
    window = {"y": slice(10, 100), "x": slice(70, 200)}
    with xrr.track() as first:
        got1 = ds.band_1.isel(time=0, **window).values
    with xrr.track() as rest:
        got2 = ds.band_2.isel(time=0, **window).values
        got31 = ds.band_31.isel(time=0, **window).values
    assert first.requests > 0 and rest.requests == 0
    np.testing.assert_array_equal(got1, data[0, 10:100, 70:200])
    np.testing.assert_array_equal(got2, data[1, 10:100, 70:200])
    np.testing.assert_array_equal(got31, data[30, 10:100, 70:200])
    # A taller window wants rows the cached partial tiles lack: fetched again, right.
    with xrr.track() as taller:
        got = ds.band_3.isel(time=0, y=slice(0, 256), x=slice(70, 200)).values
    assert taller.requests > 0
    np.testing.assert_array_equal(got, data[2, :, 70:200])


def test_cache_is_bounded_and_keyed_by_version() -> None:
    cache = TileCache(max_bytes=3 * 4096, idle_seconds=60)
    tile = np.ones((32, 32, 4), np.uint8)  # 4096 bytes
    keys = [("f.tif", 100 * i, 100 * i + 50, 1000, "etag-1") for i in range(5)]
    for key in keys:
        cache.put(key, tile, samples=4, used={0})
    assert len(cache) == 3 and cache.nbytes == 3 * 4096  # full: later tiles not admitted
    assert cache.get(keys[4], 32, {1}) is None
    assert cache.get(("f.tif", 0, 50, 1000, "etag-2"), 32, {1}) is None  # another version
    assert cache.get(keys[0], 33, {1}) is None  # more rows than held
    for sample in (1, 2):
        assert cache.get(keys[0], 32, {sample}) is not None
    assert cache.get(keys[0], 32, {3}) is not None  # the last sample: dropped after
    assert len(cache) == 2 and cache.get(keys[0], 32, {3}) is None
    cache.put(keys[3], tile, samples=4, used={0, 1, 2, 3})  # nothing left to serve
    assert keys[3] not in cache._entries


def test_idle_entries_expire() -> None:
    cache = TileCache(max_bytes=2**20, idle_seconds=0.05)
    cache.put(("f.tif", 0, 10, None, None), np.ones((4, 4, 2)), samples=2, used={0})
    assert len(cache) == 1
    time.sleep(0.1)
    assert cache.get(("f.tif", 0, 10, None, None), 4, {1}) is None and len(cache) == 0


def test_idle_entries_are_dropped_without_another_read(chunky, monkeypatch) -> None:
    # Reading one band of many keeps the tiles for the others; nobody comes for them.
    path, data = chunky
    tile_cache.clear()
    monkeypatch.setattr(tile_cache, "idle_seconds", 0.2)
    ds = xr.open_dataset(path, engine="rasteret")
    np.testing.assert_array_equal(ds.band_5.values[0], data[4])
    assert len(tile_cache) == (SIDE // TILE) ** 2
    deadline = time.monotonic() + 5
    while len(tile_cache) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(tile_cache) == 0 and tile_cache.nbytes == 0
