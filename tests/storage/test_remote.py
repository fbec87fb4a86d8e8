"""Build and read over real loopback servers: moto S3 and a misbehaving HTTP range server."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr
from affine import Affine

import xarray_rasteret as xrr
from cogs import with_datetimes, write_tiff
from xarray_rasteret.errors import (
    ObjectChangedError,
    ObjectNotFoundError,
    PermissionDeniedError,
    TileDecodeError,
)
from xarray_rasteret.helpers import get_gdf

TRANSFORM = Affine(10.0, 0, 600_000.0, 0, -10.0, 5_000_000.0)


def _cogs(directory, n, *, size=256, prefix="r"):
    names = []
    for i in range(n):
        name = f"{prefix}{i:02d}_B04.tif"
        write_tiff(
            directory / name, dtype="uint16", width=size, height=size, transform=TRANSFORM,
            compress="DEFLATE", predictor=2, nodata=0, blockxsize=64, blockysize=64, seed=i,
        )
        names.append(name)
    return names


def _lonlat(x, y):
    from pyproj import Transformer

    return Transformer.from_crs(32633, 4326, always_xy=True).transform(x, y)


def _group(href):
    stem = href.rsplit("/", 1)[-1].removesuffix(".tif")
    return tuple(stem.split("_"))


def _dated(col):
    start = np.datetime64("2024-01-01")
    when = {rid: str(start + i) for i, rid in enumerate(sorted(col.ids))}
    return xrr.Collection(with_datetimes(col.table, when))


@pytest.fixture
def served(http_server, tmp_path):
    """Four COGs in the HTTP server's root, and the same collection built locally."""
    root = Path(http_server.root)
    names = _cogs(root, 4)
    local = _dated(xrr.build([str(root / n) for n in names], group_by=_group))
    return http_server, names, local


def test_s3_build_remote_collection_and_read(s3_server, tmp_path):
    names = _cogs(tmp_path, 3)
    for name in names:
        s3_server.upload(f"cogs/{name}", (tmp_path / name).read_bytes(), public=True)
    opts = s3_server.storage_options
    hrefs = [f"s3://{s3_server.bucket}/cogs/{n}" for n in names]
    with xrr.track() as building:
        col = _dated(xrr.build(hrefs, group_by=_group, storage_options=opts))
    assert building.requests == len(hrefs)  # one header request per file, nothing else
    local_path = tmp_path / "col.parquet"
    col.to_parquet(local_path)
    s3_server.upload("col.parquet", local_path.read_bytes(), public=True)

    ds = xr.open_dataset(f"s3://{s3_server.bucket}/col.parquet", engine="rasteret",
                         storage_options=opts)
    local = _dated(xrr.build([str(tmp_path / n) for n in names], group_by=_group))
    expected = xr.open_dataset(local, engine="rasteret")
    np.testing.assert_array_equal(ds.B04.values, expected.B04.values)
    with rasterio.open(tmp_path / names[1]) as src:
        np.testing.assert_array_equal(ds.B04.values[1], src.read(1))

    # The anonymous (unsigned) path reads the public objects too.
    anon = {"anon": True, "endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"}
    window = xr.open_dataset(local_path, engine="rasteret", storage_options=anon).B04.isel(
        x=slice(10, 90), y=slice(30, 70)
    )
    np.testing.assert_array_equal(window.values, expected.B04.values[:, 30:70, 10:90])

    # The helpers read the remote collection through the same options.
    point = shapely.Point(*_lonlat(600_000 + 505, 5_000_000 - 1205))
    table = xrr.sample_points(f"s3://{s3_server.bucket}/col.parquet", points=[point],
                              bands=["B04"], storage_options=opts)
    assert table.column("value").to_pylist() == list(expected.B04.values[:, 120, 50])


def test_http_reads_survive_faults(served):
    server, names, local = served
    hrefs = [server.url(n) for n in names]
    opts = {"timeout": 0.5, "backoff": 0.01, "max_backoff": 0.05, "max_attempts": 12}
    col = _dated(xrr.build(hrefs, group_by=_group, storage_options=opts))
    expected = xr.open_dataset(local, engine="rasteret").B04.values
    server.set_faults(p_503=0.2, p_drop=0.05, p_truncate=0.05, p_slow=0.03, slow_seconds=1.0,
                      seed=7)
    ds = xr.open_dataset(col, engine="rasteret", storage_options=opts, cache=False)
    with xrr.track() as stats:
        got = ds.B04.values
        windows = [
            ds.B04.isel(x=slice(i % 8 * 20, i % 8 * 20 + 70), y=slice(5 * i, 5 * i + 90)).values
            for i in range(30)
        ]
    np.testing.assert_array_equal(got, expected)
    for i, w in enumerate(windows):
        np.testing.assert_array_equal(
            w, expected[:, 5 * i : 5 * i + 90, i % 8 * 20 : i % 8 * 20 + 70]
        )
    faults = server.stats.faults
    print(f"{server.stats.requests} requests, faults injected {faults}; "
          f"client retries {stats.retries}")
    assert {"503", "drop", "truncate", "slow"} <= set(faults)  # every kind happened
    assert stats.retries >= sum(faults.values())


def test_http_404_and_403_name_the_url(served):
    server, names, _ = served
    col = _dated(xrr.build([server.url(n) for n in names], group_by=_group))
    ds = xr.open_dataset(col, engine="rasteret")
    server.set_faults(missing=frozenset({names[0]}), forbidden=frozenset({names[1]}))
    with pytest.raises(ObjectNotFoundError, match=names[0]):
        ds.B04.isel(time=0).values
    with pytest.raises(PermissionDeniedError, match=rf"{names[1]}.*(credentials|requester)"):
        ds.B04.isel(time=1).values
    with pytest.raises(ObjectNotFoundError, match="nope.tif"):
        xrr.build([server.url("nope.tif")])


def test_500_window_reads_over_40_cogs_bounded_in_flight(http_server):
    root = Path(http_server.root)
    names = _cogs(root, 40, prefix="m")
    col = _dated(xrr.build([http_server.url(n) for n in names], group_by=_group))
    http_server.set_faults(latency=0.02)
    # 13 AOIs x 40 records = 520 (window, COG) reads in one call.
    from pyproj import Transformer

    to_ll = Transformer.from_crs(32633, 4326, always_xy=True)
    rng = np.random.default_rng(1)
    boxes = []
    for _ in range(13):
        x = 600_000 + rng.uniform(200, 2300)
        y = 5_000_000 - rng.uniform(200, 2300)
        lon0, lat0 = to_ll.transform(x - 150, y - 150)
        lon1, lat1 = to_ll.transform(x + 150, y + 150)
        boxes.append(shapely.box(lon0, lat0, lon1, lat1))
    http_server.reset()
    http_server.set_faults(latency=0.02)
    gdf = get_gdf(col, geometries=boxes, bands=["B04"], max_concurrent=32)
    assert len(gdf) == 13 * 40
    print(f"520 window reads: server max in flight {http_server.stats.max_in_flight}, "
          f"{http_server.stats.requests} requests")
    assert http_server.stats.max_in_flight <= 32
    assert http_server.stats.max_in_flight >= 16  # really concurrent
    for row in gdf.sample(40, random_state=0).itertuples():
        t = Affine(*row.transform)
        col_off, row_off = round((t.c - TRANSFORM.c) / 10), round((TRANSFORM.f - t.f) / 10)
        h, w = row.data.shape
        with rasterio.open(root / f"{row.record_id}_B04.tif") as src:
            expected = src.read(1, window=((row_off, row_off + h), (col_off, col_off + w)))
        inside = row.data != 0
        np.testing.assert_array_equal(row.data[inside], expected[inside])


def test_replaced_object_raises_staleness_error(served, tmp_path):
    server, names, _ = served
    col = _dated(xrr.build([server.url(n) for n in names], group_by=_group))
    ds = xr.open_dataset(col, engine="rasteret")
    ds.B04.isel(time=0, x=slice(0, 10), y=slice(0, 10)).values  # fine before
    replacement = tmp_path / "other.tif"
    write_tiff(replacement, dtype="uint16", width=256, height=256, transform=TRANSFORM,
               compress="DEFLATE", seed=99)
    shutil.copy(replacement, Path(server.root) / names[0])
    with pytest.raises(ObjectChangedError, match=names[0]):
        ds.B04.isel(time=0).values
    # Opting out skips the check: the old tile offsets now point into other bytes,
    # which the decoder refuses (never silently wrong pixels here).
    unchecked = xr.open_dataset(col, engine="rasteret", check_unchanged=False)
    with pytest.raises(TileDecodeError, match=names[0]):
        unchecked.B04.isel(time=0, x=slice(0, 8), y=slice(0, 8)).values


def test_obstore_store_as_backend(tmp_path):
    from obstore.store import LocalStore as ObLocalStore

    names = _cogs(tmp_path, 2)
    store = ObLocalStore(prefix=str(tmp_path))
    col = _dated(xrr.build([str(tmp_path / n) for n in names], group_by=_group, backend=store))
    ds = xr.open_dataset(col, engine="rasteret", backend=store)
    with rasterio.open(tmp_path / names[1]) as src:
        np.testing.assert_array_equal(ds.B04.values[1], src.read(1))


def test_progress_bar_reports_tiles(served, capsys):
    server, names, local = served
    aoi = shapely.Point(*_lonlat(600_000 + 1000, 5_000_000 - 1000)).buffer(0.003)
    xrr.get_numpy(local, geometries=aoi, bands=["B04"], progress=True)
    err = capsys.readouterr().err
    assert "reading tiles" in err and "tile" in err
