"""``python -m benchmarks.composite_lazycogs``: our monthly median vs lazycogs' ``MedianMethod``.

lazycogs needs Python >= 3.12, so this runs in a 3.12 environment holding
both (``python3.12 -m venv v && v/bin/pip install -e . lazycogs rasterio``,
then ``v/bin/python -m benchmarks.composite_lazycogs``). One run, the same
served scenes, items and 2048 px window as :mod:`benchmarks.composite`:

* ours: ``xr.open_dataset(..., groupby="P1M", method="median")``, the window
  ``isel``-ed, then ``load()``;
* lazycogs: ``lazycogs.open(items.parquet, bbox=<the window>, crs="EPSG:32633",
  resolution=10, time_period="P1M", mosaic_method=MedianMethod)`` then
  ``load()``; the items written as stac-geoparquet by rustac, read through
  an obstore ``HTTPStore`` on the loopback server.

Seconds are the best of 3 (warm), requests and bytes per run counted at the
server. Pixels are compared where either has a value; where none is valid we
give NaN and lazycogs its nodata (0), which is counted as the same.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from .composite import _window, print_rows
from .dask_scale import _served, _timed

__all__ = ["main"]


def _ours(col: Any, sel: dict[str, slice]) -> Any:
    import xarray as xr

    ds = xr.open_dataset(col, engine="rasteret", groupby="P1M", method="median")
    return ds.B04.isel(sel).load()


def _duckdb_client() -> Any:
    """rustac's DuckDB client, its extensions from ``RASTERET_DUCKDB_EXTENSIONS`` if set.

    rustac's client downloads DuckDB's spatial, icu and parquet extensions on
    first use; offline, point the variable at a folder laid out as DuckDB's
    (``v1.5.5/linux_amd64/spatial.duckdb_extension``, ...), e.g. filled from the
    ``duckdb-extension-*`` wheels of rustac's DuckDB version.
    """
    from rustac import DuckdbClient

    folder = os.environ.get("RASTERET_DUCKDB_EXTENSIONS")
    if folder is None:
        return DuckdbClient()
    return DuckdbClient(install_extensions=False, extension_directory=folder)


def _lazycogs(parquet: str, bbox: tuple[float, ...], base_url: str, client: Any) -> Any:
    import lazycogs
    from obstore.store import HTTPStore

    store = HTTPStore.from_url(base_url, client_options={"allow_http": True})
    da = lazycogs.open(
        parquet, bbox=bbox, crs="EPSG:32633", resolution=10.0, bands=["B04"],
        time_period="P1M", mosaic_method=lazycogs.MedianMethod, store=store,
        path_from_href=lambda href: href[len(base_url):], duckdb_client=client,
    )
    return da.sel(band="B04").load()


def _compare(ours: Any, theirs: Any) -> str:
    a = np.asarray(ours.values, np.float64)
    b = np.asarray(theirs.values, np.float64)
    if a.shape != b.shape:
        return f"DIFFER: shapes {a.shape} vs {b.shape}"
    b = np.where(b == 0, np.nan, b)  # lazycogs' nodata where no record is valid
    same = np.isclose(a, b, rtol=0, atol=0, equal_nan=True)
    if same.all():
        return "equal"
    return f"DIFFER at {int((~same).sum())} of {same.size} pixels"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table: ours and lazycogs' seconds, requests, MB, and whether they agree."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.composite_lazycogs",
                                description=__doc__)
    p.add_argument("--latency-ms", type=float, default=10.0)
    a = p.parse_args(argv)
    import rustac

    from .data import stac_items

    m, srv, col = _served(a.latency_ms / 1000)
    items = [it for it in stac_items(m, srv.http_url) if it["properties"]["proj:epsg"] == 32633]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        parquet = os.path.join(tmp, "items.parquet")
        rustac.write_sync(parquet, items)
        try:
            sel = _window(int(m.spec["size"]))
            ours = _ours(col, sel)  # warm: imports, thread pools, connections
            c, a_, _, f, _, e = map(float, ours.spatial_ref.attrs["GeoTransform"].split())
            n = ours.sizes["x"]
            client = _duckdb_client()
            bbox = (c, f + e * n, c + a_ * n, f)
            ways = (("ours: groupby='P1M', method='median'", lambda: _ours(col, sel)),
                    ("lazycogs: time_period='P1M', MedianMethod",
                     lambda: _lazycogs(parquet, bbox, srv.http_url, client)))
            results = {}
            for name, fn in ways:
                fn()  # warm
                srv.reset()
                secs, out = _timed(fn)
                counts = srv.counts()
                results[name] = out
                rows.append((name, secs, counts.requests / 3, counts.bytes / 3 / 2**20))
            verdict = _compare(*results.values())
        finally:
            srv.stop()
    from importlib.metadata import version

    print(f"\n{len(col)} scenes, {len(ours.time)} month(s), 2048 x 2048 px window, latency "
          f"{a.latency_ms:.0f} ms, lazycogs {version('lazycogs')}; medians {verdict}")
    print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
