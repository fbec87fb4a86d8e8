"""Common target grids: ``crs=``/``resolution=``/``align=`` against rasterio.warp.reproject.

The scenes straddle the meridian 18 E shared by UTM zones 33 and 34 at 20 N,
where the two zones' grids are rotated by about 2 degrees against each other.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import rasterio.warp
import xarray as xr
from affine import Affine
from pyproj import Transformer
from rasterio.enums import Resampling as RioResampling

import xarray_rasteret as xrr
from cogs import write_tiff
from xarray_rasteret.errors import ReprojectionRequiredError
from xarray_rasteret.geo.target import (
    as_resolution,
    default_crs,
    default_resolution,
    target_grid,
)

METHODS = ["nearest", "bilinear", "cubic", "average", "mode"]
LON, LAT = 18.0, 20.0
# (crs, resolution) of the target grids checked against GDAL.
TARGETS = {
    "utm33-10m": ("EPSG:32633", 10.0),
    "utm34-25m": ("EPSG:32634", 25.0),
    "wgs84": ("EPSG:4326", 1e-4),
}


# --------------------------------------------------------------------------- scenes


def utm_origin(epsg: int, dx: float, dy: float) -> tuple[float, float]:
    """A 10 m lattice point ``(dx, dy)`` metres from (LON, LAT) in ``epsg``."""
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(LON, LAT)
    return round(x / 10) * 10 + dx, round(y / 10) * 10 + dy


def write_scene(path, epsg, dx, dy, *, dtype, seed, width=256, height=240, **kw):
    """One scene with nodata holes (0 for integers, NaN for floats) near (LON, LAT)."""
    x0, y0 = utm_origin(epsg, dx, dy)
    kw.setdefault("nodata", 0 if np.dtype(dtype).kind in "iu" else None)
    write_tiff(
        path, dtype=dtype, width=width, height=height, crs=f"EPSG:{epsg}",
        transform=Affine(10.0, 0.0, x0, 0.0, -10.0, y0), holes=True, seed=seed,
        compress="DEFLATE", blockxsize=64, blockysize=64, **kw,
    )
    return str(path)


def collection(paths, times, ids=None):
    """A collection of single-band records with the given datetimes."""
    col = xrr.build(list(paths))
    table = col.table
    order = col.ids
    names = [p.rsplit("/", 1)[-1].removesuffix(".tif") for p in paths]
    by_id = dict(zip(names, times, strict=True))
    table = table.set_column(
        table.schema.get_field_index("datetime"),
        "datetime",
        pa.array([np.datetime64(by_id[i], "us") for i in order], pa.timestamp("us")),
    )
    return xrr.Collection(table)


@pytest.fixture(scope="module", params=["uint16", "float32"])
def two_zones(request, tmp_path_factory):
    """Scene ``a`` in zone 33 and ``b`` in zone 34, overlapping across 18 E."""
    d = tmp_path_factory.mktemp(f"zones-{request.param}")
    a = write_scene(d / "a.tif", 32633, -2000, 1200, dtype=request.param, seed=1)
    b = write_scene(d / "b.tif", 32634, -600, 1200, dtype=request.param, seed=2)
    return collection([a, b], ["2024-05-03T09:40", "2024-05-08T09:40"]), {"a": a, "b": b}


def grid_of(ds):
    gt = [float(v) for v in ds.spatial_ref.attrs["GeoTransform"].split()]
    return Affine.from_gdal(*gt), ds.sizes["y"], ds.sizes["x"]


def rio_reproject(path, transform, shape, crs, method, *, overview_level=None):
    """GDAL's warp of one file onto a grid; nodata (or NaN) where nothing lands.

    NaN is always missing data for us, also in float files without a nodata
    tag; GDAL does the same when told nodata is NaN (without it, NaN would
    spread through bilinear, cubic and average kernels).
    """
    kw = {} if overview_level is None else {"overview_level": overview_level}
    with rasterio.open(path, **kw) as src:
        arr = src.read(1)
        nodata = src.nodata
        if nodata is None and arr.dtype.kind == "f":
            nodata = np.nan
        fill = nodata
        out = np.full(shape, fill, dtype=arr.dtype)
        rasterio.warp.reproject(
            arr, out, src_transform=src.transform, src_crs=src.crs, src_nodata=nodata,
            dst_transform=transform, dst_crs=crs, dst_nodata=fill,
            resampling=getattr(RioResampling, method),
        )
    return out


def is_valid(a):
    # Outside every record the output holds nodata, else 0 (NaN never, as in native
    # reads); the test data is never 0, so 0 and NaN both mean "no data" here.
    return (~np.isnan(a) & (a != 0)) if a.dtype.kind == "f" else a != 0


def agreement(got, exp, method):
    """Share of pixels (valid in either) that agree, and of pixels whose validity agrees."""
    vg, ve = is_valid(got), is_valid(exp)
    either = vg | ve
    both = vg & ve
    if method in ("bilinear", "cubic"):
        g, e = got[both].astype(np.float64), exp[both].astype(np.float64)
        if got.dtype.kind == "f":
            ok = np.abs(g - e) <= 1e-4 * np.maximum(np.abs(e), 1e-12)
        else:
            ok = np.abs(g - e) <= 1
    else:
        ok = got[both] == exp[both]
    values = ok.sum() / max(1, either.sum())
    masks = (vg == ve).mean()
    return float(values), float(masks)


THRESHOLD = {"nearest": 0.995, "bilinear": 0.95, "cubic": 0.95, "average": 0.95, "mode": 0.95}


# --------------------------------------------------------------------------- units


def test_target_grid_snaps_outwards_to_the_lattice():
    g = target_grid("EPSG:32633", 20, (500_005.0, 4_999_990.0, 500_101.0, 5_000_041.0))
    assert (g.transform.c, g.transform.f, g.width, g.height) == (500_000.0, 5_000_060.0, 6, 4)
    assert g.transform.a == 20 and g.transform.e == -20
    exact = target_grid("EPSG:32633", (10, 5), (100.0, 200.0, 150.0, 230.0))
    assert (exact.transform.c, exact.transform.f, exact.width, exact.height) == (100, 230, 5, 6)
    shifted = target_grid("EPSG:32633", 10, (100.0, 200.0, 150.0, 230.0), align=(5, 5))
    assert (shifted.transform.c, shifted.transform.f, shifted.shape) == (95, 235, (4, 6))


def test_resolution_and_crs_defaults():
    assert as_resolution(10) == (10.0, 10.0)
    assert as_resolution((20, -30)) == (20.0, 30.0)
    for bad in (0, -0.0, math.inf, (1, 2, 3)):
        with pytest.raises(ValueError):
            as_resolution(bad)
    assert default_crs(["EPSG:32634", "EPSG:32633", "EPSG:32633", None]) == "EPSG:32633"
    with pytest.raises(ValueError, match="no record has a CRS"):
        default_crs([None])
    from xarray_rasteret.geo.grid import RasterGrid

    x0, y0 = utm_origin(32633, 0, 0)
    g10 = RasterGrid("EPSG:32633", Affine(10, 0, x0, 0, -10, y0), 100, 100)
    g20 = RasterGrid("EPSG:32633", Affine(20, 0, x0, 0, -20, y0), 50, 50)
    assert default_resolution([g20, g10], "EPSG:32633") == (10.0, 10.0)
    deg = default_resolution([g10], "EPSG:4326")
    assert deg[0] == deg[1] and 8e-5 < deg[0] < 1e-4  # 10 m at 20 N, square pixels


@pytest.mark.parametrize(("src", "dst"), [
    ("EPSG:32643", "EPSG:32644"), ("EPSG:32633", "EPSG:4326"), ("EPSG:32633", "EPSG:3857"),
    ("EPSG:32633", "EPSG:32634"),
])  # fmt: skip
def test_default_resolution_is_gdals_suggested_warp_output(src, dst):
    from rasterio.crs import CRS
    from rasterio.warp import calculate_default_transform

    from xarray_rasteret.geo.grid import RasterGrid

    x0, y0 = 600000.0, 4000000.0
    grid = RasterGrid(src, Affine(10, 0, x0, 0, -10, y0), 10980, 8000)
    gdal, _, _ = calculate_default_transform(
        CRS.from_string(src), CRS.from_string(dst), 10980, 8000, *grid.bounds
    )
    rx, ry = default_resolution([grid], dst)
    assert rx == pytest.approx(gdal.a, rel=1e-12) and ry == pytest.approx(-gdal.e, rel=1e-12)


# --------------------------------------------------------------------------- oracle


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("target", list(TARGETS))
def test_matches_rasterio_reproject(two_zones, target, method, record_property):
    col, paths = two_zones
    crs, res = TARGETS[target]
    ds = xr.open_dataset(col, engine="rasteret", crs=crs, resolution=res, resampling=method)
    transform, h, w = grid_of(ds)
    got = ds.band_1.values
    assert list(ds.id.values) == ["a", "b"]
    for i, rid in enumerate(["a", "b"]):
        exp = rio_reproject(paths[rid], transform, (h, w), crs, method)
        values, masks = agreement(got[i], exp, method)
        record_property(f"{rid}_values", values)
        record_property(f"{rid}_masks", masks)
        assert values >= THRESHOLD[method], (rid, values)
        assert masks >= 0.995, (rid, masks)


@pytest.mark.parametrize("dst", ["EPSG:32634", "EPSG:4326"])
def test_crs_alone_gives_gdals_default_grid(two_zones, dst):
    """``crs=`` without resolution, align or bbox: calculate_default_transform's grid
    (origin, pixel size and shape), and on it the pixels GDAL warps to."""
    from rasterio.crs import CRS
    from rasterio.warp import calculate_default_transform

    _, paths = two_zones
    with rasterio.open(paths["a"]) as src:
        gdal, w, h = calculate_default_transform(
            src.crs, CRS.from_string(dst), src.width, src.height, *src.bounds
        )
    ds = xr.open_dataset(xrr.build([paths["a"]]), engine="rasteret", crs=dst)
    transform, height, width = grid_of(ds)
    assert (width, height) == (w, h)
    assert transform.almost_equals(gdal, precision=1e-9 * abs(gdal.a))
    exp = rio_reproject(paths["a"], transform, (height, width), dst, "nearest")
    values, masks = agreement(ds.band_1.isel(time=0).values, exp, "nearest")
    assert values >= THRESHOLD["nearest"] and masks >= 0.995, (values, masks)


def test_bbox_and_align_define_the_grid(two_zones):
    col, paths = two_zones
    x0, y0 = utm_origin(32633, -1000, 0)
    bbox = (x0 + 3, y0 - 803, x0 + 1207, y0 + 2)
    ds = xr.open_dataset(col, engine="rasteret", crs="EPSG:32633", resolution=20,
                         bbox=bbox, bbox_crs="EPSG:32633", align=(5, 5),
                         resampling="bilinear")
    transform, h, w = grid_of(ds)
    assert (transform.c - 5) % 20 == 0 and (transform.f - 5) % 20 == 0
    assert transform.c <= bbox[0] < transform.c + 20 and transform.f >= bbox[3]
    assert w * 20 >= bbox[2] - bbox[0] and h * 20 >= bbox[3] - bbox[1]
    exp = rio_reproject(paths["a"], transform, (h, w), "EPSG:32633", "bilinear")
    values, _ = agreement(ds.band_1.isel(time=0).values, exp, "bilinear")
    assert values >= 0.95


def test_without_a_target_mixed_grids_still_raise(two_zones):
    col, _ = two_zones
    with pytest.raises(ReprojectionRequiredError, match="crs="):
        xr.open_dataset(col, engine="rasteret")


def test_default_crs_and_resolution(two_zones):
    col, _ = two_zones
    ds = xr.open_dataset(col, engine="rasteret", resolution=30)
    assert ds.rio.crs.to_epsg() == 32633  # the first of two equally common CRSs
    ds = xr.open_dataset(col, engine="rasteret", crs="EPSG:32634")
    transform, _, _ = grid_of(ds)
    assert transform.a == 10 and transform.e == -10


def test_unknown_resampling(two_zones):
    col, _ = two_zones
    with pytest.raises(ValueError, match="unknown resampling 'lanczos'"):
        xr.open_dataset(col, engine="rasteret", crs="EPSG:4326", resampling="lanczos")


# --------------------------------------------------------------------------- chunks


@pytest.mark.filterwarnings("ignore:The specified chunks separate:UserWarning")
@pytest.mark.parametrize("method", METHODS)
def test_chunk_invariance(two_zones, method):
    col, _ = two_zones
    kw = dict(engine="rasteret", crs="EPSG:4326", resolution=1.3e-4, resampling=method)
    full = xr.open_dataset(col, **kw).band_1.values
    for chunks in ({}, {"x": 37, "y": 23}, {"x": 1, "y": 200}):
        var = xr.open_dataset(col, chunks=chunks, **kw).band_1
        assert var.chunks is not None
        np.testing.assert_array_equal(var.values, full)
    # Point and strided selections agree too.
    lazy = xr.open_dataset(col, **kw).band_1
    np.testing.assert_array_equal(lazy.isel(x=slice(3, None, 7), y=[0, 5, 40]).values,
                                  full[:, [0, 5, 40]][:, :, 3::7])


def test_gathered_async_loads_plan_off_the_event_loop(two_zones, monkeypatch):
    # Windows loaded together with load_async equal the eager read; each is planned
    # in a decode thread, so the loop sends one window's requests while the next
    # is planned (planned on the loop, every plan ran before any request).
    import asyncio
    import threading

    from xarray_rasteret._lazy.mosaic import MosaicArray

    col, _ = two_zones
    kw = dict(engine="rasteret", crs="EPSG:4326", resolution=1.3e-4, resampling="nearest")
    full = xr.open_dataset(col, **kw).band_1.values
    planned_in = []
    real_plan = MosaicArray.plan

    def plan(self, *args, **kwargs):
        planned_in.append(threading.current_thread())
        return real_plan(self, *args, **kwargs)

    monkeypatch.setattr(MosaicArray, "plan", plan)
    var = xr.open_dataset(col, **kw).band_1
    windows = [(slice(0, 40), slice(10, 70)), (slice(30, 90), slice(0, 25)), (slice(5, 9), None)]

    async def load_all():
        loop_thread = threading.current_thread()
        subs = [var.isel(y=y, x=x if x is not None else slice(None)) for y, x in windows]
        loaded = await asyncio.gather(*(s.load_async() for s in subs))
        return loop_thread, loaded

    loop_thread, loaded = asyncio.run(load_all())
    for (y, x), got in zip(windows, loaded, strict=True):
        np.testing.assert_array_equal(got.values, full[:, y, x if x is not None else slice(None)])
    assert len(planned_in) == len(windows)
    assert loop_thread not in planned_in


def test_reads_only_the_tiles_of_the_key(two_zones):
    col, _ = two_zones
    ds = xr.open_dataset(col, engine="rasteret", crs="EPSG:32633", resolution=10)
    with xrr.track() as small:
        ds.band_1.isel(time=1, x=slice(200, 210), y=slice(100, 110)).values
    with xrr.track() as whole:
        ds.band_1.isel(time=1).values
    assert 0 < small.requests and small.bytes < whole.bytes / 4


# --------------------------------------------------------------------------- overviews


class RecordingStore:
    """A local-file store that records every byte range asked of it."""

    def __init__(self):
        self.ranges = []

    async def get_range_async(self, path, *, start, end=None, length=None):
        end = start + length if end is None else end
        self.ranges.append((path, start, end))
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(end - start)

    async def get_ranges_async(self, path, *, starts, ends=None, lengths=None):
        ends = ends or [s + n for s, n in zip(starts, lengths, strict=True)]
        pairs = zip(starts, ends, strict=True)
        return [await self.get_range_async(path, start=s, end=e) for s, e in pairs]


@pytest.fixture(scope="module")
def with_overviews(tmp_path_factory):
    d = tmp_path_factory.mktemp("ovr")
    path = write_scene(d / "o.tif", 32633, 0, 0, dtype="uint16", seed=5, width=512, height=512,
                       overviews=(2, 4, 8))
    return collection([path], ["2024-05-03T09:40"]), path


def _tile_ranges(layout):
    return [
        (int(o), int(o) + int(n))
        for o, n in zip(layout.tile_offsets, layout.tile_byte_counts, strict=True)
        if n
    ]


def test_coarse_read_fetches_only_overview_tiles(with_overviews):
    col, path = with_overviews
    src = col.sources("band_1")[0]
    assert len(src.levels) == 4
    store = RecordingStore()
    origin = (src.transform.c, src.transform.f)
    ds = xr.open_dataset(col, engine="rasteret", crs="EPSG:32633", resolution=80,
                         align=origin, backend=store)
    assert ds.sizes["x"] == 64 and ds.sizes["y"] == 64
    with xrr.track() as stats:
        got = ds.band_1.isel(time=0).values
    wanted = _tile_ranges(src.levels[3])
    others = [r for lv in src.levels[:3] for r in _tile_ranges(lv)]
    assert stats.bytes == sum(e - s for s, e in wanted)
    for _, s, e in store.ranges:
        assert any(ws <= s < we for ws, we in wanted)
        assert not any(s < oe and os_ < e for os_, oe in others)
    with rasterio.open(path) as r:
        exp = r.read(1, out_shape=(64, 64))
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("method", ["nearest", "bilinear", "average"])
def test_coarse_cross_crs_read_matches_gdal_on_the_same_overview(with_overviews, method):
    col, path = with_overviews
    ds = xr.open_dataset(col, engine="rasteret", crs="EPSG:32634", resolution=80,
                         resampling=method)
    transform, h, w = grid_of(ds)
    got = ds.band_1.isel(time=0).values
    # 8x coarser: GDAL's AUTO rule picks the 8x overview (rasterio overview_level=2).
    exp = rio_reproject(path, transform, (h, w), "EPSG:32634", method, overview_level=2)
    values, masks = agreement(got, exp, method)
    assert values >= THRESHOLD[method] and masks >= 0.99
    forced = xr.open_dataset(col, engine="rasteret", crs="EPSG:32634", resolution=80,
                             resampling=method, overview_level=1).band_1.isel(time=0).values
    exp1 = rio_reproject(path, transform, (h, w), "EPSG:32634", method, overview_level=0)
    assert agreement(forced, exp1, method)[0] >= THRESHOLD[method]
