"""``method="first"``/``"last"`` read members in waves: later members only where pixels are missing.

Counted at a loopback range server; pixels against the read of every member
(``MosaicArray.early_exit = False``, the reference path).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import xarray as xr
from affine import Affine
from test_dask_graph import _RecordingHandler

import xarray_rasteret as xrr
from cogs import write_tiff
from servers import RangeHTTPServer
from xarray_rasteret._lazy import early_exit
from xarray_rasteret._lazy.mosaic import MosaicArray

N, TILE = 128, 32
HOLE = (slice(32, 64), slice(64, 96))  # tile (1, 2) of r0 is all nodata
CLOUD = (slice(0, 10), slice(0, 10))  # in tile (0, 0) of r0, class 9
CLEAN_FIRST = {"r1": 0, "r2": 1, "r3": 2, "r0": 3}
HOLEY_FIRST = {"r0": 0, "r1": 1, "r2": 2, "r3": 3}


def _record(root: Path, rid: str, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 5000, (N, N), dtype=np.uint16)
    scl = np.full((N, N), 4, dtype=np.uint8)
    if rid == "r0":
        data[HOLE] = 0
        scl[CLOUD] = 9
    paths = [str(root / f"{rid}_{b}.tif") for b in ("B04", "SCL")]
    for path, arr in zip(paths, (data, scl), strict=True):
        write_tiff(path, dtype=arr.dtype, width=N, height=N, data=arr,
                   transform=Affine(10, 0, 500_000, 0, -10, 5_000_000),
                   nodata=0 if path.endswith("B04.tif") else None, compress="DEFLATE",
                   blockxsize=TILE, blockysize=TILE)
    return paths


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """Four records (B04, SCL) of one day on one grid, served over loopback HTTP."""
    root = tmp_path_factory.mktemp("early-exit")
    names = [Path(h).name for i in range(4) for h in _record(root, f"r{i}", i)]
    server = RangeHTTPServer(root)
    server.RequestHandlerClass = _RecordingHandler
    server.seen = []
    with server:
        built = xrr.build([server.url(n) for n in names],
                          group_by=lambda h: tuple(Path(h).stem.split("_")))  # type: ignore[arg-type]
        table = built.table
        for name, rank in (("clean_first", CLEAN_FIRST), ("holey_first", HOLEY_FIRST)):
            table = table.append_column(name, pa.array([rank[i] for i in built.ids]))
        table = table.append_column("tile", pa.array(["T1"] * len(built.ids)))
        pairs = {"r0": "A", "r1": "A", "r2": "B", "r3": "C"}
        table = table.append_column("pair", pa.array([pairs[i] for i in built.ids]))
        yield server, xrr.Collection(table)


def _counted(server, read):
    """``read()``'s result, the requests per file and the bytes sent, at the server."""
    server.reset()
    with server.lock:
        server.seen.clear()
    values = read()
    with server.lock:
        seen, sent = list(server.seen), server.stats.bytes_sent
    per_file: dict[str, list[int]] = {}
    for name, start in seen:
        per_file.setdefault(name, []).append(start)
    return values, per_file, sent


def _open(col, **kw):
    kw.setdefault("bands", ["B04"])
    kw.setdefault("groupby", "tile")
    return xr.open_dataset(col, engine="rasteret", **kw)


def _reference(monkeypatch, col, **kw):
    with monkeypatch.context() as m:
        m.setattr(MosaicArray, "early_exit", False)
        return _open(col, **kw).B04.values


def _tile_start(col, rid: str, tile: tuple[int, int]) -> int:
    src = next(s for s in col.sources("B04") if s.href.endswith(f"/{rid}_B04.tif"))
    lv = src.levels[0]
    return int(lv.tile_offsets[tile[0] * lv.tiles_across + tile[1]])


def test_a_covering_first_member_is_the_only_one_fetched(served, monkeypatch) -> None:
    server, col = served
    kw = dict(sortby="clean_first")
    ref, ref_files, ref_bytes = _counted(server, lambda: _reference(monkeypatch, col, **kw))
    got, files, sent = _counted(server, lambda: _open(col, **kw).B04.values)
    np.testing.assert_array_equal(got, ref)
    assert set(ref_files) == {f"r{i}_B04.tif" for i in range(4)}
    assert set(files) == {"r1_B04.tif"}
    assert sent < 0.3 * ref_bytes, (sent, ref_bytes)


def test_a_hole_fetches_the_next_member_for_its_tile_only(served, monkeypatch) -> None:
    server, col = served
    kw = dict(sortby="holey_first")
    ref = _reference(monkeypatch, col, **kw)
    got, files, _ = _counted(server, lambda: _open(col, **kw).B04.values)
    np.testing.assert_array_equal(got, ref)
    assert set(files) == {"r0_B04.tif", "r1_B04.tif"}
    assert files["r1_B04.tif"] == [_tile_start(col, "r1", (1, 2))]
    # The hole is filled by r1, the rest is r0's.
    assert (got[0][HOLE] != 0).all()


def test_masked_pixels_fetch_the_next_member_where_dropped(served, monkeypatch) -> None:
    server, col = served
    kw = dict(sortby="holey_first", mask={"band": "SCL", "drop": [9]})
    ref = _reference(monkeypatch, col, **kw)
    got, files, _ = _counted(server, lambda: _open(col, **kw).B04.values)
    np.testing.assert_array_equal(got, ref)
    assert set(files) == {"r0_B04.tif", "r0_SCL.tif", "r1_B04.tif", "r1_SCL.tif"}
    wanted = sorted(_tile_start(col, "r1", t) for t in [(0, 0), (1, 2)])
    assert sorted(files["r1_B04.tif"]) == wanted


@pytest.mark.parametrize("method", ["first", "last"])
@pytest.mark.parametrize("sortby", ["clean_first", "holey_first", "-holey_first"])
@pytest.mark.parametrize("masked", [False, True])
def test_pixels_equal_every_member_read_chunked_or_not(served, monkeypatch, method, sortby,
                                                       masked) -> None:
    _, col = served
    kw = dict(method=method, sortby=sortby,
              mask={"band": "SCL", "drop": [9]} if masked else None)
    ref = _reference(monkeypatch, col, **kw)
    np.testing.assert_array_equal(_open(col, **kw).B04.values, ref)
    np.testing.assert_array_equal(_open(col, chunks={}, **kw).B04.values, ref)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The specified chunks separate", UserWarning)
        small = _open(col, chunks={"y": 48, "x": 80}, **kw).B04.values
    np.testing.assert_array_equal(small, ref)


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_resampled_members_read_by_blocks_equal_every_member_read(served, monkeypatch,
                                                                  resampling) -> None:
    server, col = served
    monkeypatch.setattr(early_exit, "BLOCK", 16)  # later waves read blocks of the hole
    kw = dict(sortby="holey_first", crs="EPSG:4326", resampling=resampling)
    ref, _, ref_bytes = _counted(server, lambda: _reference(monkeypatch, col, **kw))
    got, files, sent = _counted(server, lambda: _open(col, **kw).B04.values)
    np.testing.assert_array_equal(got, ref)
    assert "r2_B04.tif" not in files and "r3_B04.tif" not in files
    assert len(files["r1_B04.tif"]) < 16 and sent < 0.5 * ref_bytes, (files, sent, ref_bytes)


def test_lone_members_and_groups_in_one_key_equal_every_member_read(served, monkeypatch) -> None:
    """Steps of one member (read straight) and of several (in waves) in the same chunk."""
    server, col = served
    kw = dict(groupby="pair", sortby="holey_first")
    ref = _reference(monkeypatch, col, **kw)
    got, files, _ = _counted(server, lambda: _open(col, **kw).B04.values)
    assert got.shape[0] == 3
    np.testing.assert_array_equal(got, ref)
    assert files["r1_B04.tif"] == [_tile_start(col, "r1", (1, 2))]
    assert {"r2_B04.tif", "r3_B04.tif"} <= set(files)
    lazy = _open(col, chunks={"time": 3}, **kw).B04
    np.testing.assert_array_equal(lazy.values, ref)


def test_selections_and_async_loads_equal_every_member_read(served, monkeypatch) -> None:
    import asyncio

    _, col = served
    kw = dict(sortby="holey_first", progress=True)
    ref = _reference(monkeypatch, col, **kw)
    band = _open(col, **kw).B04
    cols = [5, 70, 90]
    np.testing.assert_array_equal(band[:, 20:70:3, cols].values, ref[:, 20:70:3][:, :, cols])
    assert band[:, 10:10, :].values.shape == (1, 0, N)

    async def both():
        return await asyncio.gather(band.isel(y=slice(30, 70)).load_async(),
                                    band.isel(x=slice(60, 128)).load_async())

    top, right = asyncio.run(both())
    np.testing.assert_array_equal(top.values, ref[:, 30:70])
    np.testing.assert_array_equal(right.values, ref[:, :, 60:128])
