"""xarray-rasteret in each scenario, two ways.

``rasteret``
    The xarray engine: ``xr.open_dataset(collection, engine="rasteret")`` then
    ``isel`` windows; several windows are read concurrently with
    ``asyncio.gather`` of ``load_async``; S5 selects the points with
    vectorized ``isel``. S3 (cross-CRS) opens the scenes on one grid of the
    target CRS (``open_dataset(crs=..., resolution=...)``) and selects the
    AOIs from it.
``rasteret-helpers``
    The AOI helpers ``get_numpy`` / ``sample_points``; for S3, ``get_numpy``
    with ``target_crs`` (one grid per AOI), when the installed version has
    them; otherwise the scenario reports ``n/a``.

Both start from the collection GeoParquet written by the build step, so the
timed read includes loading the index and opening the dataset.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .data import MAIN_EPSG, Manifest
from .scenarios import Scenario, cross_scenes, pixel_indices

__all__ = ["OURS", "NotAvailable", "prepare", "run_ours"]


class NotAvailable(Exception):
    """The tool cannot run this scenario (the feature is not in this version)."""


PHASES: dict[str, float] = {}
"""Seconds spent opening datasets / loading the collection in the last run (``open``)."""


def _open(parquet: str, bands: list[str], epsg: int, options: dict[str, Any]) -> Any:
    import xarray as xr

    t0 = time.perf_counter()
    ds = xr.open_dataset(
        parquet,
        engine="rasteret",
        bands=bands,
        filters={"proj:epsg": epsg},
        storage_options=options.get("storage_options"),
        max_concurrent=options.get("max_concurrent", 64),
    )
    PHASES["open"] = PHASES.get("open", 0.0) + time.perf_counter() - t0
    return ds


def _offsets(ds: Any, transform: list[float]) -> tuple[int, int]:
    """Row and column of the dataset's first pixel on the grid ``transform``."""
    a, _, c, _, e, f = transform
    col = round((float(ds.x[0]) - a / 2 - c) / a)
    row = round((float(ds.y[0]) - e / 2 - f) / e)
    return row, col


def _layout(arrays: list[np.ndarray]) -> Any:
    """The harness's layout of one array per AOI: stacked after the clock stops."""
    return lambda: np.stack(arrays)


async def _gather_loads(arrays: list[Any]) -> list[np.ndarray]:
    loaded = await asyncio.gather(*(a.load_async() for a in arrays))
    return [x.values for x in loaded]


def _engine(scenario: Scenario, m: Manifest, parquet: str, options: dict[str, Any]) -> Any:
    name = scenario.name
    out = scenario.empty()
    n = m.aoi_size
    grid = m.main[0].transform
    if name == "Build":
        return _build(scenario, m, options)
    if name == "S1":
        ds = _open(parquet, ["B04", "B08"], MAIN_EPSG, options)
        r0, c0 = _offsets(ds, grid)
        r, c = m.aois[0]
        sub = ds[["B04", "B08"]].isel(y=slice(r - r0, r - r0 + n), x=slice(c - c0, c - c0 + n))
        b04, b08 = asyncio.run(_gather_loads([sub.B04, sub.B08]))
        out[0], out[1] = b04, b08
        return out
    if name == "S2":
        ds = _open(parquet, ["B04"], MAIN_EPSG, options)
        r0, c0 = _offsets(ds, grid)
        subs = [
            ds.B04.isel(y=slice(r - r0, r - r0 + n), x=slice(c - c0, c - c0 + n)) for r, c in m.aois
        ]
        return _layout(asyncio.run(_gather_loads(subs)))
    if name == "S3":
        return _cross_reproject(scenario, m, parquet, options)
    if name in ("S4", "M"):
        ds = _open(parquet, ["B04"], MAIN_EPSG, options)
        r0, c0 = _offsets(ds, grid)
        s = m.main[0]
        sel = ds.B04.isel(y=slice(-r0, s.height - r0), x=slice(-c0, s.width - c0))
        # The engine's own output array, not a copy into ``out``: M measures its peak
        # memory, and a first-touch copy of 32 MB costs 3-60 ms here (page faults).
        return sel.values if name == "M" else sel.isel(time=0).values
    if name == "S5":
        import xarray as xr

        ds = _open(parquet, ["B04"], MAIN_EPSG, options)
        r0, c0 = _offsets(ds, grid)
        pts = np.asarray(m.points).T
        rows, cols = pixel_indices(m, (pts[0], pts[1]), m.main[0])
        sel = ds.B04.isel(y=xr.DataArray(rows - r0, dims="p"), x=xr.DataArray(cols - c0, dims="p"))
        out[...] = sel.transpose("time", "p").values
        return out
    raise KeyError(name)


@functools.lru_cache(maxsize=4)
def _stac_items(root: str, base_url: str) -> list[dict[str, Any]]:
    from .data import stac_items

    return stac_items(Manifest.load(root), base_url)


def prepare(scenario: Scenario, m: Manifest, options: dict[str, Any]) -> None:
    """Make, before the clock, the input a user already has: Build's STAC items."""
    if scenario.name == "Build":
        _stac_items(m.root, options["base_url"])


def _build(scenario: Scenario, m: Manifest, options: dict[str, Any]) -> np.ndarray:
    import xarray_rasteret as xrr

    items = _stac_items(m.root, options["base_url"])
    col = xrr.build(items, storage_options=options.get("storage_options"))
    return _profiles(scenario, col)


def _profiles(scenario: Scenario, col: Any) -> np.ndarray:
    out = scenario.empty()
    by_href = {}
    for band in ("B02", "B04", "B08"):
        for s in col.sources(band):
            by_href[s.href.rsplit("/", 1)[-1]] = s
    for unit in scenario.units:
        s = by_href[unit.file]
        t = s.transform
        out[unit.slots[0]] = [s.levels[0].width, s.levels[0].height, t.a, t.c, t.e, t.f]
    return out


def _boxes(m: Manifest, corners: list[list[int]]) -> list[Any]:
    import shapely

    inset = 0.05 * abs(m.main[0].transform[0])  # keep edges off pixel boundaries
    out = []
    for r, c in corners:
        x0, y0, x1, y1 = m.aoi_bounds(r, c)
        out.append(shapely.box(x0 + inset, y0 + inset, x1 - inset, y1 - inset))
    return out


def _helper_api() -> Any:
    """``xarray_rasteret`` if it exports the helpers, else its ``helpers`` module."""
    import xarray_rasteret as xrr

    if hasattr(xrr, "get_numpy"):
        return xrr
    try:
        from xarray_rasteret import helpers
    except ImportError:
        return xrr
    return helpers


def _helpers(
    scenario: Scenario, m: Manifest, parquet: str, options: dict[str, Any]
) -> np.ndarray | Callable[[], np.ndarray]:
    import xarray_rasteret

    xrr = _helper_api()
    name = scenario.name
    if name in ("S1", "S2", "S3") and not hasattr(xrr, "get_numpy"):
        raise NotAvailable("xarray_rasteret.get_numpy not in this version")
    if name == "S5" and not hasattr(xrr, "sample_points"):
        raise NotAvailable("xarray_rasteret.sample_points not in this version")
    t0 = time.perf_counter()
    storage_options = options.get("storage_options")
    col = xarray_rasteret.load(parquet)
    PHASES["open"] = time.perf_counter() - t0
    crs = f"EPSG:{MAIN_EPSG}"
    only_main: dict[str, Any] = {"proj:epsg": MAIN_EPSG, "storage_options": storage_options}
    if name == "S1":
        arr = xrr.get_numpy(
            col,
            geometries=_boxes(m, m.aois[:1]),
            bands=["B04", "B08"],
            geometry_crs=crs,
            **only_main,
        )
        return np.ascontiguousarray(arr.transpose(1, 0, 2, 3))
    if name == "S2":
        arr = xrr.get_numpy(
            col, geometries=_boxes(m, m.aois), bands=["B04"], geometry_crs=crs, **only_main
        )
        # get_numpy is record-major (as rasteret); the scenario is AOI-major.
        aois, records, h, w = scenario.shape
        return arr.reshape(records, aois, h, w).swapaxes(0, 1)
    if name == "S3":
        ids = [s.id for s in cross_scenes(m)]
        sub = col.filter(id=ids)
        arr = xrr.get_numpy(
            sub,
            geometries=_boxes(m, m.cross_aois),
            bands=["B04"],
            geometry_crs=crs,
            target_crs=crs,
            storage_options=storage_options,
        )
        order = [sub.ids.index(i) for i in ids]
        arr = arr.reshape(len(ids), len(m.cross_aois), *arr.shape[-2:]).swapaxes(0, 1)
        return arr if order == sorted(order) else arr[:, order]
    if name == "S5":
        import shapely

        pts = shapely.points(np.asarray(m.points))
        tbl = xrr.sample_points(col, points=pts, bands=["B04"], geometry_crs=crs, **only_main)

        def layout() -> np.ndarray:  # the table, as the scenario's array, after the clock
            order = {s.id: i for i, s in enumerate(m.main)}
            out = scenario.empty()
            rid = tbl.column("record_id").to_pylist()
            pi = tbl.column("point_index").to_numpy()
            val = tbl.column("value").to_numpy(zero_copy_only=False)
            out[np.array([order[r] for r in rid]), pi] = val
            return out

        return layout
    raise NotAvailable("no helper for this scenario (the engine path is the API)")


def _cross_reproject(
    scenario: Scenario, m: Manifest, parquet: str, options: dict[str, Any]
) -> np.ndarray:
    """S3 with the engine's own reprojection: ``open_dataset(crs=..., resolution=...)``."""
    from xarray_rasteret.backend import RasteretBackendEntrypoint

    if "crs" not in RasteretBackendEntrypoint.open_dataset_parameters:
        raise NotAvailable("open_dataset(crs=..., resolution=...) not in this version")
    import xarray as xr

    ids = [s.id for s in cross_scenes(m)]
    t0 = time.perf_counter()
    ds = xr.open_dataset(
        parquet,
        engine="rasteret",
        bands=["B04"],
        filters={"id": ids},
        crs=f"EPSG:{MAIN_EPSG}",
        resolution=abs(m.main[0].transform[0]),
        resampling="nearest",
        storage_options=options.get("storage_options"),
        max_concurrent=options.get("max_concurrent", 64),
    )
    PHASES["open"] = time.perf_counter() - t0
    order = [list(ds.id.values).index(i) for i in ids]
    r0, c0 = _offsets(ds, m.main[0].transform)
    n = m.aoi_size
    subs = [
        ds.B04.isel(time=order, y=slice(r - r0, r - r0 + n), x=slice(c - c0, c - c0 + n))
        for r, c in m.cross_aois
    ]
    return _layout(asyncio.run(_gather_loads(subs)))


def xrr_errors() -> Any:
    """The ``xarray_rasteret.errors`` module."""
    from xarray_rasteret import errors

    return errors


OURS = {"rasteret": _engine, "rasteret-helpers": _helpers}
"""Tool name -> ``run(scenario, manifest, parquet, options) -> array``."""


def run_ours(
    name: str, scenario: Scenario, m: Manifest, parquet: str, options: dict[str, Any]
) -> np.ndarray:
    """Run xarray-rasteret tool ``name`` on ``scenario``."""
    return OURS[name](scenario, m, parquet, options)
