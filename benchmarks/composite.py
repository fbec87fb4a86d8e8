"""``python -m benchmarks.composite``: a monthly median, built while reading vs after loading.

One run, the same served scenes (:mod:`benchmarks.data`, UTM 33 records of
band B04, the loopback HTTP server of :mod:`benchmarks.serve`), a 2048 px
window, nodata never contributing:

* ours: ``xr.open_dataset(..., groupby="P1M", method="median")`` then ``load()``;
* xarray: ``open_dataset`` then ``load()`` of every record, nodata set to NaN,
  then ``resample(time="1MS").median()``, the usual way without a grouped read.

Both results are compared (equal where either has a value); seconds are the
best of 3, bytes and requests are counted at the server. lazycogs' ``Median``
needs Python >= 3.12 and is not run here.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .dask_scale import _served, _timed

__all__ = ["main"]


def _window(size: int) -> dict[str, slice]:
    o = (size - 2048) // 2
    return {"y": slice(o, o + 2048), "x": slice(o, o + 2048)}


def _ours(col: Any, sel: dict[str, slice]) -> Any:
    import xarray as xr

    ds = xr.open_dataset(col, engine="rasteret", groupby="P1M", method="median")
    return ds.B04.isel(sel).load()


def _load_then_median(col: Any, sel: dict[str, slice]) -> Any:
    import xarray as xr

    ds = xr.open_dataset(col, engine="rasteret")
    band = ds.B04.isel(sel).load()
    values = band.where(band != band.attrs.get("_FillValue", 0)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: NaN
        return values.resample(time="1MS").median()


def _first_rows(col: Any, sel: dict[str, slice], srv: Any) -> list[tuple[str, float, float, float]]:
    """``method="first"`` monthly, with early exit (members in waves) and without, same run."""
    import xarray as xr

    from xarray_rasteret._lazy.mosaic import MosaicArray

    def first() -> Any:
        ds = xr.open_dataset(col, engine="rasteret", groupby="P1M", method="first")
        return ds.B04.isel(sel).load()

    rows, results = [], []
    for name, early in (("ours: method='first', early exit", True),
                        ("ours: method='first', every member read", False)):
        MosaicArray.early_exit = early
        try:
            first()  # warm
            srv.reset()
            secs, out = _timed(first)
        finally:
            MosaicArray.early_exit = True
        counts = srv.counts()
        results.append(np.asarray(out.values))
        rows.append((name, secs, counts.requests / 3, counts.bytes / 3 / 2**20))
    if not np.array_equal(*results):
        raise AssertionError("method='first' with and without early exit differ")
    return rows


def print_rows(rows: Sequence[tuple[str, float, float, float]]) -> None:
    """The table of (way, seconds, requests, MB) rows, as Markdown."""
    print("| way | seconds | requests | MB |\n|---|---|---|---|")
    for name, secs, requests, mb in rows:
        print(f"| {name} | {secs:.2f} | {requests:.0f} | {mb:.1f} |")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table (one row per way) for the served scenes."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.composite", description=__doc__)
    p.add_argument("--latency-ms", type=float, default=10.0)
    a = p.parse_args(argv)
    m, srv, col = _served(a.latency_ms / 1000)
    rows = []
    try:
        sel = _window(int(m.spec["size"]))
        results = {}
        for name, fn in (("ours: groupby='P1M', method='median'", _ours),
                         ("xarray: load, then resample('1MS').median()", _load_then_median)):
            fn(col, sel)  # warm: imports, thread pools, connections
            srv.reset()
            secs, out = _timed(lambda fn=fn: fn(col, sel))
            counts = srv.counts()
            results[name] = out
            rows.append((name, secs, counts.requests / 3, counts.bytes / 3 / 2**20))
        ours, theirs = results.values()
        a_, b_ = np.asarray(ours.values, np.float64), np.asarray(theirs.values, np.float64)
        if a_.shape != b_.shape or not np.allclose(a_, b_, equal_nan=True):
            raise AssertionError("the two medians differ")
        rows += _first_rows(col, sel, srv)
    finally:
        srv.stop()
    months = len(ours.time)
    print(f"\n{len(col)} scenes, {months} month(s), 2048 x 2048 px window, "
          f"latency {a.latency_ms:.0f} ms; medians equal")
    print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
