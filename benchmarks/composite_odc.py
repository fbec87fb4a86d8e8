"""``python -m benchmarks.composite_odc``: our grouped reads vs odc-stac's, same served scenes.

The scenes, items and window of :mod:`benchmarks.composite` (12 UTM 33
records of band B04 on the loopback HTTP server, a 2048 px window). odc-stac
gets the same STAC items (as ``pystac.Item``), the window as its ``geobox=``
and the band's dtype and nodata (the items carry no ``raster:bands``):

* first valid pixel per solar day: ours ``groupby="solar_day", method="first"``
  vs odc-stac ``load(items, groupby="solar_day")`` with its default fuse (here
  every scene is its own solar day);
* first valid pixel per month, groups of 6 records: ours ``groupby="P1M"`` vs
  odc-stac's ``groupby=`` a callable giving the month, default fuse;
* monthly median: ours ``groupby="P1M", method="median"`` vs odc-stac's
  ``load`` of every record, nodata to NaN, then ``resample(time="1MS").median()``.

Each odc-stac run is in a fresh process, as :mod:`benchmarks.peers` runs
GDAL: no header, block or connection cache survives from one run to the
next; GDAL has :data:`benchmarks.peers.GDAL_OPTIONS`. Seconds are the best of
3 (odc-stac's measured inside its process, imports excluded), requests and
bytes per run counted at the server, pixels compared exactly (median: NaN
where neither has a value).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .composite import _window
from .dask_scale import _served, _timed

__all__ = ["main"]

POOL = 8
"""odc-stac's read threads (its ``pool=``)."""


def _month(item: Any, parsed: Any, idx: int) -> str:
    """odc-stac group key: the item's UTC month (our ``groupby="P1M"``)."""
    return parsed.nominal_datetime.strftime("%Y-%m")


def _odc_run(items: list[dict[str, Any]], bbox_affine: tuple[float, ...], crs: str, way: str,
             gdal: dict[str, str]) -> tuple[float, np.ndarray, list[str]]:
    """One odc-stac load in this (fresh) process: seconds, pixels, time labels."""
    import time

    # Set in the environment (as benchmarks.peers does), GDAL reads them in every thread.
    os.environ.update(gdal)
    import odc.stac
    import pystac
    from affine import Affine
    from odc.geo.geobox import GeoBox

    geobox = GeoBox((2048, 2048), Affine(*bbox_affine), crs)
    # Items without a collection take this config as is (a "*" key would be ignored).
    cfg = {"assets": {"B04": {"data_type": "uint16", "nodata": 0}}}
    pitems = [pystac.Item.from_dict(it) for it in items]
    groupby: Any = {"solar_day": "solar_day", "month": _month, "median": "id"}[way]
    t = time.perf_counter()
    ds = odc.stac.load(pitems, bands=["B04"], groupby=groupby, geobox=geobox,
                       resampling="nearest", stac_cfg=cfg, pool=POOL)
    band = ds.B04
    if way == "median":
        values = band.where(band != 0).astype("float32")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: NaN
            band = values.sortby("time").resample(time="1MS").median()
    out = np.asarray(band.values)
    secs = time.perf_counter() - t
    return secs, out, [str(v) for v in band.time.values]


def _odc(items: list[dict[str, Any]], affine: tuple[float, ...], crs: str, way: str,
         srv: Any) -> tuple[float, np.ndarray, Any]:
    """Best of 3 odc-stac runs, each in a fresh spawned process; counts of the 3."""
    from . import composite_odc  # by its module name, not __main__, for spawn
    from .peers import GDAL_OPTIONS

    ctx = multiprocessing.get_context("spawn")
    srv.reset()
    best, out = float("inf"), None
    for _ in range(3):
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
            job = pool.submit(composite_odc._odc_run, items, affine, crs, way, GDAL_OPTIONS)
            secs, out, _ = job.result()
        best = min(best, secs)
    return best, out, srv.counts()


def _ours(col: Any, sel: dict[str, slice], way: str) -> Any:
    import xarray as xr

    kw = {"solar_day": {"groupby": "solar_day", "method": "first"},
          "month": {"groupby": "P1M", "method": "first"},
          "median": {"groupby": "P1M", "method": "median"}}[way]
    return xr.open_dataset(col, engine="rasteret", **kw).B04.isel(sel).load()


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table: per composite, ours and odc-stac's seconds, requests, MB, equality."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.composite_odc", description=__doc__)
    p.add_argument("--latency-ms", type=float, default=10.0)
    a = p.parse_args(argv)
    from .data import stac_items

    m, srv, col = _served(a.latency_ms / 1000)
    items = [it for it in stac_items(m, srv.http_url) if it["properties"]["proj:epsg"] == 32633]
    rows = []
    try:
        sel = _window(int(m.spec["size"]))
        for way, label in (("solar_day", "first valid per solar day"),
                           ("month", "first valid per month"),
                           ("median", "monthly median")):
            _ours(col, sel, way)  # warm: imports, thread pools, connections
            srv.reset()
            secs, ours = _timed(lambda way=way: _ours(col, sel, way))
            counts = srv.counts()
            t = ours.rio.transform()
            affine = (t.a, t.b, t.c, t.d, t.e, t.f)
            o_secs, theirs, o_counts = _odc(items, affine, "EPSG:32633", way, srv)
            a_, b_ = np.asarray(ours.values), np.asarray(theirs)
            if way == "median":
                equal = a_.shape == b_.shape and np.array_equal(a_, b_, equal_nan=True)
            else:
                equal = a_.shape == b_.shape and a_.dtype == b_.dtype and np.array_equal(a_, b_)
            verdict = ("equal" if equal
                       else f"DIFFER ({a_.shape} {a_.dtype} vs {b_.shape} {b_.dtype})")
            rows.append((f"{label}: ours", secs, counts, verdict))
            rows.append((f"{label}: odc-stac", o_secs, o_counts, verdict))
    finally:
        srv.stop()
    print(f"\n{len(col)} scenes, 2048 x 2048 px window, latency {a.latency_ms:.0f} ms, "
          f"odc-stac pool={POOL}, {os.cpu_count()} cores")
    print("| composite | seconds | requests | MB | pixels |\n|---|---|---|---|---|")
    for name, secs, counts, verdict in rows:
        print(f"| {name} | {secs:.2f} | {counts.requests / 3:.0f} | "
              f"{counts.bytes / 3 / 2**20:.1f} | {verdict} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
