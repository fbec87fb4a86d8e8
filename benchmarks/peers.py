"""The peers: rasterio (sequential and thread pool) and rioxarray, with COG-friendly GDAL settings.

Every run happens in a fresh process (see :mod:`benchmarks.worker`), so no
GDAL header, block or connection cache survives from one run to the next;
within a run GDAL caches as users configure it (``VSI_CACHE``, block cache).
Each file is opened once per run and all of that file's windows, warps or
points are read from the open dataset.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np

from .scenarios import Scenario, Unit

__all__ = ["GDAL_OPTIONS", "PEERS", "gdal_config", "run_peer"]

GDAL_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(64 << 20),
    "GDAL_CACHEMAX": "256",
    "GDAL_NUM_THREADS": "ALL_CPUS",
    "GDAL_HTTP_MAX_RETRY": "3",
}
"""Config options of every peer run (the usual settings for COGs on object storage)."""

POOL_THREADS = 16


def gdal_config(mode: str, s3_endpoint: str | None = None) -> dict[str, str]:
    """GDAL config options for ``mode`` (``"http"`` or ``"s3"``)."""
    opts = dict(GDAL_OPTIONS)
    if mode == "s3":
        assert s3_endpoint is not None
        opts.update(
            {
                "AWS_S3_ENDPOINT": s3_endpoint.split("://", 1)[1],
                "AWS_HTTPS": "NO",
                "AWS_VIRTUAL_HOSTING": "FALSE",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
            }
        )
    return opts


def _read_unit_rasterio(unit: Unit, url: str) -> list[np.ndarray]:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    with rasterio.open(url) as src:
        if unit.kind == "windows":
            return [src.read(1, window=Window(c, r, w, h)) for r, c, h, w in unit.windows]
        if unit.kind == "whole":
            return [src.read(1)]
        if unit.kind == "sample":
            assert unit.points is not None
            xs, ys = unit.points
            vals = np.fromiter(
                (v[0] for v in src.sample(zip(xs, ys, strict=True), indexes=1)), src.dtypes[0]
            )
            return [vals]
        if unit.kind == "warp":
            out = []
            for t, h, w in unit.warps:
                with WarpedVRT(
                    src,
                    crs="EPSG:32633",
                    transform=t,
                    width=w,
                    height=h,
                    resampling=Resampling.nearest,
                    nodata=0,
                    tolerance=1e-9,
                ) as vrt:
                    out.append(vrt.read(1))
            return out
        if unit.kind == "profile":
            p = src.profile
            t = p["transform"]
            return [np.array([p["width"], p["height"], t.a, t.c, t.e, t.f], float)]
    raise ValueError(unit.kind)


def _read_unit_rioxarray(unit: Unit, url: str) -> list[np.ndarray]:
    import rioxarray
    import xarray as xr
    from rasterio.enums import Resampling

    # One band, one file: a DataArray (not the Dataset or list for subdatasets).
    da = cast(xr.DataArray, rioxarray.open_rasterio(url))
    try:
        if unit.kind == "profile":
            t = da.rio.transform()
            return [np.array([da.rio.width, da.rio.height, t.a, t.c, t.e, t.f], float)]
        da = da.isel(band=0)
        if unit.kind == "windows":
            return [
                da.isel(y=slice(r, r + h), x=slice(c, c + w)).values for r, c, h, w in unit.windows
            ]
        if unit.kind == "whole":
            return [da.values]
        if unit.kind == "sample":
            assert unit.points is not None
            xs, ys = unit.points
            sel = da.sel(
                x=xr.DataArray(xs, dims="p"), y=xr.DataArray(ys, dims="p"), method="nearest"
            )
            return [sel.values]
        if unit.kind == "warp":
            out = []
            for t, h, w in unit.warps:
                target = _target_array(t, h, w)
                x0, y1 = t * (0, 0)
                x1, y0 = t * (w, h)
                pad = 3 * abs(t.a)
                clip = da.rio.clip_box(x0 - pad, y0 - pad, x1 + pad, y1 + pad, crs="EPSG:32633")
                res = clip.rio.reproject_match(target, resampling=Resampling.nearest, nodata=0)
                out.append(res.values)
            return out
    finally:
        da.close()
    raise ValueError(unit.kind)


def _target_array(t: Any, h: int, w: int) -> Any:
    """An empty DataArray on the target grid, for ``reproject_match``."""
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    x = t.c + (np.arange(w) + 0.5) * t.a
    y = t.f + (np.arange(h) + 0.5) * t.e
    da = xr.DataArray(np.zeros((h, w), np.uint16), coords={"y": y, "x": x}, dims=("y", "x"))
    return da.rio.write_crs("EPSG:32633").rio.write_transform(t)


def _gather(
    scenario: Scenario, units: list[Unit], results: list[list[np.ndarray]]
) -> Callable[[], np.ndarray]:
    """The function laying the per-unit results out as the scenario's array (untimed)."""

    def layout() -> np.ndarray:
        if len(units) == 1 and units[0].slots == [()]:
            return results[0][0]
        out = scenario.empty()
        for unit, arrays in zip(units, results, strict=True):
            for slot, arr in zip(unit.slots, arrays, strict=True):
                out[slot] = arr
        return out

    return layout


def _sequential(
    read: Callable[[Unit, str], list[np.ndarray]],
) -> Callable[..., Callable[[], np.ndarray]]:
    def run(scenario: Scenario, url_of: Callable[[str], str]) -> Callable[[], np.ndarray]:
        return _gather(scenario, scenario.units, [read(u, url_of(u.file)) for u in scenario.units])

    return run


def _pooled(
    read: Callable[[Unit, str], list[np.ndarray]],
) -> Callable[..., Callable[[], np.ndarray]]:
    def run(scenario: Scenario, url_of: Callable[[str], str]) -> Callable[[], np.ndarray]:
        import rasterio

        def task(u: Unit) -> list[np.ndarray]:
            with rasterio.Env():  # one Env per thread, as rasterio asks
                return read(u, url_of(u.file))

        with ThreadPoolExecutor(POOL_THREADS) as pool:
            results = list(pool.map(task, scenario.units))
        return _gather(scenario, scenario.units, results)

    return run


PEERS: dict[str, Callable[..., Callable[[], np.ndarray]]] = {
    "rasterio": _sequential(_read_unit_rasterio),
    "rasterio-pool": _pooled(_read_unit_rasterio),
    "rioxarray": _sequential(_read_unit_rioxarray),
}
"""Peer name -> ``run(scenario, url_of) -> layout``, ``layout()`` giving the array."""


def run_peer(
    name: str, scenario: Scenario, url_of: Callable[[str], str], config: dict[str, str]
) -> Callable[[], np.ndarray]:
    """Run peer ``name`` on ``scenario`` under the GDAL ``config`` (in this fresh process)."""
    import rasterio

    # GDAL reads config options from the environment; set there, they reach every
    # thread (rasterio.Env options are thread-local) and this process is fresh.
    os.environ.update(config)
    with rasterio.Env():
        return PEERS[name](scenario, url_of)
