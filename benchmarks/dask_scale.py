"""``python -m benchmarks.dask_scale``: dask graphs of the engine, now vs the goals of issue 25.

Rows measured
-------------
* ``chunks={}`` on a synthetic Sentinel-2-like index (10k records x 1 band,
  10980 px images in 1024 px tiles, built in the package's schema with
  :func:`~xarray_rasteret.collection.schema.make_table`; no file is read):
  task count, open + graph build time, pickled graph size.
* One 256x256 window of one record of a 10k-record index (records cloned
  from the served COGs of :mod:`benchmarks.data`, so pixels are real),
  computed on a 2-process ``distributed.LocalCluster``: time and pickled
  size of the culled graph.
* 12 scenes, mean of a 2048 px window: ``chunks={}`` on 1 worker x 1 thread
  vs the same read without dask.
* Speedup from 1 to 2 process workers on a latency-bound read (the loopback
  HTTP server with a per-request delay; overview 1, one task per scene).

``--records N`` changes the synthetic index size (default 10000).
"""

from __future__ import annotations

import argparse
import datetime as dt
import pickle
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

__all__ = ["main", "synthetic_s2_collection", "cloned_collection"]

S2_SIZE = 10980
S2_TILE = 1024


def _levels(size: int, tile: int, rng: np.random.Generator) -> tuple[Any, ...]:
    from xarray_rasteret._types import TileLayout

    levels = []
    offset = 16384
    while True:
        n = (-(-size // tile)) ** 2
        counts = rng.integers(200_000, 900_000, n).astype(np.int64)
        offsets = offset + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        offset = int(offsets[-1] + counts[-1])
        levels.append(TileLayout(size, size, tile, tile, offsets, counts))
        if size <= tile:
            break
        size = -(-size // 2)
    return tuple(levels)


def synthetic_s2_collection(n: int, seed: int = 0) -> Any:
    """A collection of ``n`` records of one band B04, S2-like, whose files do not exist.

    Every record lies on one 10980 px UTM grid in 1024 px tiles with
    overviews; tile offsets are random (as distinct per record as real ones).
    """
    import shapely
    from affine import Affine

    from xarray_rasteret._types import RasterSource, TileEncoding
    from xarray_rasteret.collection import Collection
    from xarray_rasteret.collection.schema import make_table

    rng = np.random.default_rng(seed)
    enc = TileEncoding(compression=8, predictor=2, dtype="<u2")
    transform = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5300040.0)
    t0 = dt.datetime(2017, 1, 1)
    sources, times, ids = [], [], []
    for i in range(n):
        href = f"http://127.0.0.1:9/s2/T33TYN_{i:06d}_B04.tif"
        levels = _levels(S2_SIZE, S2_TILE, rng)
        sources.append(RasterSource(href, transform, "EPSG:32633", enc, levels, nodata=0.0,
                                    size=int(levels[-1].tile_offsets[-1]) + 10**6))
        times.append(t0 + dt.timedelta(hours=12 * i))
        ids.append(f"S2_T33TYN_{i:06d}")
    geom = shapely.box(15.0, 47.0, 16.4, 48.0)
    table = make_table(
        ids=ids, datetimes=times, geometries=[geom] * n, crs=["EPSG:32633"] * n,
        assets={"B04": [(s.href, 1) for s in sources]}, sources={"B04": sources},
    )
    return Collection(table, name="synthetic-s2")


def cloned_collection(base: Any, band: str, n: int) -> Any:
    """``n`` records cycling over ``base``'s records of ``band`` (real files), distinct times."""
    from xarray_rasteret.collection import Collection
    from xarray_rasteret.collection.schema import make_table

    src = base.sources(band)
    geoms = list(base.geometries)
    t0 = dt.datetime(2017, 1, 1)
    pick = [i % len(src) for i in range(n)]
    table = make_table(
        ids=[f"clone_{i:06d}" for i in range(n)],
        datetimes=[t0 + dt.timedelta(hours=6 * i) for i in range(n)],
        geometries=[geoms[k] for k in pick],
        crs=[src[k].crs for k in pick],
        assets={band: [(src[k].href, 1) for k in pick]},
        sources={band: [src[k] for k in pick]},
    )
    return Collection(table, name="clones")


def pickled_size(obj: Any) -> int:
    """Bytes of ``obj`` pickled as distributed sends it (protocol 5, buffers counted)."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(b.raw().nbytes for b in buffers)


def culled_graph(arr: Any) -> dict[Any, Any]:
    """The optimized (culled, fused) graph dask would ship for computing ``arr``."""
    import dask

    (opt,) = dask.optimize(arr)
    return dict(opt.__dask_graph__())


def _timed(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _row(rows: list[tuple[str, str, str]], what: str, now: str, goal: str) -> None:
    rows.append((what, now, goal))
    print(f"  {what}: {now}  (goal {goal})", flush=True)


def graph_rows(rows: list[tuple[str, str, str]], n: int) -> None:
    """``chunks={}`` task count, build time and pickled graph size on ``n`` S2 records."""
    import xarray as xr

    xr.open_dataset(synthetic_s2_collection(20), engine="rasteret", chunks={})  # imports
    col = synthetic_s2_collection(n)
    lazy, _ = _timed(lambda: xr.open_dataset(col, engine="rasteret"), repeats=1)
    t = time.perf_counter()
    ds = xr.open_dataset(col, engine="rasteret", chunks={})
    build = time.perf_counter() - t
    arr = ds["B04"].data
    graph = arr.__dask_graph__()
    tasks = len(graph)
    if tasks <= 300_000:
        t = time.perf_counter()
        size = f"{pickled_size(dict(graph)) / 1e6:.1f} MB pickled ({time.perf_counter() - t:.1f} s)"
    else:  # pickling a graph this size takes minutes (about 18 s per 100k tasks)
        size = "not pickled (too many tasks)"
    _row(rows, f"chunks={{}} graph, {n} S2 records x 1 band",
         f"{tasks} tasks (chunks {ds['B04'].data.chunksize}), {build:.2f} s to open and build "
         f"(open without chunks {lazy:.2f} s), "
         f"{size}", "<= 100k tasks, < 2 s")
    win = ds["B04"].isel(time=n // 2, y=slice(0, 256), x=slice(0, 256)).mean()
    culled = pickled_size(culled_graph(win.data))
    _row(rows, f"culled one-window graph, {n} S2 records", f"{culled / 1e3:.1f} kB",
         "< 50 kB whatever the collection size")


def _served(latency: float) -> tuple[Any, Any, Any]:
    import xarray_rasteret as xrr

    from .data import Spec, ensure_data, stac_items
    from .serve import Servers

    m = ensure_data(Spec())
    srv = Servers(m.root, latency)
    items = [it for it in stac_items(m, srv.http_url) if it["properties"]["proj:epsg"] == 32633]
    col = xrr.build(items, bands=["B04"])
    return m, srv, col


def _compute(client: Any, job: Any) -> Any:
    return client.compute(job).result()


def _cluster(workers: int) -> Any:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                           dashboard_address=":0")
    return cluster, Client(cluster)


def window_row(rows: list[tuple[str, str, str]], col: Any, n: int) -> None:
    """One 256x256 window of one record of an ``n``-record index, on 2 process workers."""
    import xarray as xr

    big = cloned_collection(col, "B04", n)
    ds = xr.open_dataset(big, engine="rasteret", chunks={})
    win = ds["B04"].isel(time=n // 2, y=slice(512, 768), x=slice(512, 768)).mean()
    graph_size = pickled_size(culled_graph(win.data))
    import dask

    (culled,) = dask.optimize(win)
    cluster, client = _cluster(2)
    with cluster, client:
        client.compute(win).result()  # warm the workers (imports)
        secs, _ = _timed(partial(_compute, client, win))
        secs_culled, _ = _timed(partial(_compute, client, culled))
    _row(rows, f"one 256x256 window of one record, distributed, {n}-record dataset",
         f"{secs:.2f} s; culled first (dask.optimize) {secs_culled:.2f} s, "
         f"culled graph {graph_size / 1e3:.1f} kB",
         "< 0.2 s, graph < 50 kB whatever the collection size")


def mean_row(rows: list[tuple[str, str, str]], col: Any, srv: Any, size: int) -> None:
    """Mean of a 2048 px window of every scene: 1 worker x 1 thread vs no dask."""
    import xarray as xr

    lazy = xr.open_dataset(col, engine="rasteret")
    o = (size - 2048) // 2
    sel = {"y": slice(o, o + 2048), "x": slice(o, o + 2048)}
    bare, ref = _timed(lambda: lazy["B04"].isel(sel).load().astype("float64").mean().values)
    chunked = xr.open_dataset(col, engine="rasteret", chunks={})
    job = chunked["B04"].isel(sel).astype("float64").mean()
    cluster, client = _cluster(1)
    with cluster, client:
        client.compute(job).result()
        srv.reset()
        secs, got = _timed(lambda: client.compute(job).result())
        requests = srv.counts().requests
    if not np.isclose(float(got.values), float(ref)):
        raise AssertionError(f"dask mean {float(got.values)} != no-dask mean {float(ref)}")
    _row(rows, f"{len(col)} scenes, mean of a 2048 px window, 1 worker x 1 thread",
         f"{secs:.2f} s ({secs / bare:.2f}x); without dask {bare:.2f} s "
         f"[{requests} requests in 3 runs, chunks {job.data.npartitions} -> "
         f"{chunked['B04'].data.chunksize}]", "within 1.5x of the no-dask read")


def speedup_row(rows: list[tuple[str, str, str]], col: Any, srv: Any, latency: float) -> None:
    """1 -> 2 process workers on a latency-bound read: overview 1, one task per scene."""
    import warnings

    import xarray as xr

    srv.set_latency(latency)
    with warnings.catch_warnings():
        # one time step per chunk splits the default chunks: that is the point here
        warnings.simplefilter("ignore", UserWarning)
        ds = xr.open_dataset(col, engine="rasteret", overview_level=1, chunks={"time": 1})
    job = ds["B04"].astype("float64").mean(("y", "x"))
    times = []
    for workers in (1, 2):
        cluster, client = _cluster(workers)
        with cluster, client:
            client.compute(job).result()
            secs, _ = _timed(partial(_compute, client, job), repeats=3)
            times.append(secs)
    _row(rows, f"speedup 1 -> 2 process workers (latency {latency * 1e3:.0f} ms per request, "
         f"{len(col)} scenes at overview 1, {job.data.npartitions} tasks)",
         f"{times[0] / times[1]:.2f}x ({times[0]:.2f} s -> {times[1]:.2f} s)", ">= 1.9x")


def chunks_row(rows: list[tuple[str, str, str]], col: Any) -> None:
    """Every scene whole: default ``chunks={}`` (dask's threaded scheduler) vs load() vs
    load_async(), on the same served files (issue 23's chunking line)."""
    import asyncio

    import xarray as xr

    def eager() -> Any:
        return xr.open_dataset(col, engine="rasteret").load()

    def chunked() -> Any:
        return xr.open_dataset(col, engine="rasteret", chunks={}).compute()

    def concurrent() -> Any:
        return asyncio.run(xr.open_dataset(col, engine="rasteret").load_async())

    t_load, ref = _timed(eager)
    t_dask, got = _timed(chunked)
    t_async, got_async = _timed(concurrent)
    for other in (got, got_async):
        if not (other["B04"].values == ref["B04"].values).all():
            raise AssertionError("a chunked or async load differs from load()")
    tasks = xr.open_dataset(col, engine="rasteret", chunks={})["B04"].data.npartitions
    _row(rows, f"{len(col)} whole scenes ({ref['B04'].nbytes / 2**20:.0f} MiB): chunks={{}} "
         "compute vs load() vs load_async()",
         f"{t_dask:.2f} s ({t_dask / t_load:.2f}x, {tasks} tasks) vs {t_load:.2f} s vs "
         f"{t_async:.2f} s", "chunks={} within 1.5x of load()")


ROWS = ("graph", "window", "mean", "speedup", "chunks")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the dask rows of issue 25, now vs goal."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.dask_scale", description=__doc__)
    p.add_argument("--records", type=int, default=10_000)
    p.add_argument("--latency-ms", type=float, default=10.0)
    p.add_argument("--slow-latency-ms", type=float, default=200.0,
                   help="per-request delay of the latency-bound (speedup) row")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated among {ROWS}")
    a = p.parse_args(argv)
    which = set(a.rows.split(","))
    rows: list[tuple[str, str, str]] = []
    print(f"dask scale benchmark, {a.records} records", flush=True)
    if "graph" in which:
        graph_rows(rows, a.records)
    if which & {"window", "mean", "speedup", "chunks"}:
        m, srv, col = _served(a.latency_ms / 1000)
        try:
            if "window" in which:
                window_row(rows, col, a.records)
            if "mean" in which:
                mean_row(rows, col, srv, int(m.spec["size"]))
            if "speedup" in which:
                speedup_row(rows, col, srv, a.slow_latency_ms / 1000)
            if "chunks" in which:
                chunks_row(rows, col)
        finally:
            srv.stop()
    print("\n| | now | goal |\n|---|---|---|")
    for what, now, goal in rows:
        print(f"| {what} | {now} | {goal} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
