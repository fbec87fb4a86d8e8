"""Reprojection without GDAL, checked against rasterio.warp.reproject (GDAL)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from affine import Affine

rasterio = pytest.importorskip("rasterio")
from rasterio.warp import Resampling as RioResampling  # noqa: E402
from rasterio.warp import reproject as rio_reproject  # noqa: E402
from rasterio.warp import transform_bounds  # noqa: E402

from xarray_rasteret.geo._positions import PositionCache, positions  # noqa: E402
from xarray_rasteret.geo.reproject import (  # noqa: E402
    kernel_scales,
    reproject,
    source_coords,
    source_window,
)

N = 600
SRC_CRS = "EPSG:32632"
# ~10.0 E, 27.1 N: UTM 33N is rotated by ~2.7 degrees against UTM 32N here.
SRC_T = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 3000000.0)
METHODS = ["nearest", "bilinear", "cubic", "average", "mode"]


@functools.cache
def make_data(kind: str) -> tuple[np.ndarray, float]:
    """Smooth field + noise with nodata rectangles, blobs and speckles."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:N, 0:N] / N
    field = 1500 + 800 * np.sin(6 * xx + 1) * np.cos(4 * yy) + 300 * np.sin(15 * (xx + yy))
    data = field + rng.normal(0, 40, (N, N))
    mask = np.zeros((N, N), bool)
    mask[100:160, 200:330] = True
    mask[400:, :40] = True
    mask |= np.kron(rng.random((N // 20, N // 20)) < 0.05, np.ones((20, 20), bool))
    mask |= rng.random((N, N)) < 0.002
    if kind == "uint16":
        out = np.round(data).astype("uint16")
        out[mask] = 0
        return out, 0.0
    if kind == "categorical":
        out = np.floor(data / 250).astype("uint8")
        out[mask] = 255
        return out, 255.0
    out = data.astype("float32")
    out[mask] = np.nan
    return out, float("nan")


@functools.cache
def grids() -> dict[str, tuple[str, Affine, tuple[int, int]]]:
    out = {}
    left, top = SRC_T.c, SRC_T.f
    right, bottom = left + 10 * N, top - 10 * N
    for name, crs, res in [("utm33", "EPSG:32633", 10.0), ("4326", "EPSG:4326", 1e-4)]:
        w_, s_, e_, n_ = transform_bounds(SRC_CRS, crs, left, bottom, right, top)
        w_ -= 3 * res
        n_ += 3 * res
        width = int(np.ceil((e_ - w_) / res)) + 3
        height = int(np.ceil((n_ - s_) / res)) + 3
        out[name] = (crs, Affine(res, 0, w_, 0, -res, n_), (height, width))
    for f in (2, 3, 8):
        out[f"same{f}x"] = (SRC_CRS, Affine(10.0 * f, 0, left, 0, -10.0 * f, top), (N // f, N // f))
    return out


def gdal(src, nodata, grid, method):
    crs, transform, shape = grid
    ref = np.zeros(shape, src.dtype)
    rio_reproject(
        src,
        ref,
        src_transform=SRC_T,
        src_crs=SRC_CRS,
        src_nodata=nodata,
        dst_transform=transform,
        dst_crs=crs,
        dst_nodata=nodata,
        resampling=getattr(RioResampling, method),
    )
    return ref


def ours(src, nodata, grid, method, **kw):
    crs, transform, shape = grid
    return reproject(
        src,
        src_transform=SRC_T,
        src_crs=SRC_CRS,
        src_nodata=nodata,
        dst_shape=shape,
        dst_transform=transform,
        dst_crs=crs,
        dst_nodata=nodata,
        resampling=method,
        **kw,
    )


def nodata_mask(a, nodata):
    return np.isnan(a) if np.isnan(nodata) else a == nodata


def agreement(ref, mine, nodata):
    mref, mmine = nodata_mask(ref, nodata), nodata_mask(mine, nodata)
    both = ~mref & ~mmine
    a, b = ref[both].astype(np.float64), mine[both].astype(np.float64)
    if ref.dtype.kind == "f":
        close = np.abs(a - b) <= 1e-4 * np.maximum(np.abs(a), 1.0)
    else:
        close = np.abs(a - b) <= 1
    return {
        "valid": int(both.sum()),
        "equal_pct": 100.0 * float((a == b).mean()) if a.size else 100.0,
        "close_pct": 100.0 * float(close.mean()) if a.size else 100.0,
        "mask_diff": int((mref != mmine).sum()),
    }


CASES = [
    (kind, grid, method)
    for kind in ("uint16", "float32")
    for grid in ("utm33", "4326", "same2x", "same3x", "same8x")
    for method in METHODS
] + [("categorical", grid, "mode") for grid in ("utm33", "4326", "same3x")]


@pytest.mark.parametrize(("kind", "grid_name", "method"), CASES)
def test_matches_gdal(kind, grid_name, method, record_property):
    src, nodata = make_data(kind)
    grid = grids()[grid_name]
    ref = gdal(src, nodata, grid, method)
    mine = ours(src, nodata, grid, method)
    assert mine.dtype == src.dtype and mine.shape == grid[2]
    stats = agreement(ref, mine, nodata)
    record_property("agreement", stats)
    print(kind, grid_name, method, stats)
    assert stats["valid"] > 0.3 * mine.size
    if method == "nearest":
        assert stats["equal_pct"] >= 99.5
    else:
        assert stats["close_pct"] >= 95.0
    # Measured: identical masks everywhere; allow a thin band at the edges.
    assert stats["mask_diff"] <= 0.001 * mine.size


@pytest.mark.parametrize("method", ["nearest", "bilinear"])
def test_records_on_one_grid_share_positions(method):
    """A second record on the same grids reuses the first's positions, with GDAL's pixels."""
    first, nodata = make_data("uint16")
    second = np.ascontiguousarray(first[::-1, ::-1])  # other pixels, same grid
    grid = grids()["utm33"]
    positions.clear()
    ours(first, nodata, grid, method)
    kept = len(positions)
    assert kept > 0
    reused = ours(second, nodata, grid, method)
    assert len(positions) == kept  # every block was found
    positions.clear()
    assert np.array_equal(reused, ours(second, nodata, grid, method))
    stats = agreement(gdal(second, nodata, grid, method), reused, nodata)
    assert stats[("equal_pct" if method == "nearest" else "close_pct")] >= 99.5
    assert stats["mask_diff"] <= 0.001 * reused.size


@pytest.mark.parametrize("method", ["nearest", "bilinear", "average"])
def test_positions_prepared_before_the_pixels_are_the_ones_reproject_uses(method):
    """prepare_positions fills the cache that the matching reproject call then only reads."""
    from xarray_rasteret.geo.reproject import position_bytes, prepare_positions

    src, nodata = make_data("uint16")
    crs, transform, shape = grids()["utm33"]
    window = (5, shape[0] - 7, 3, shape[1] - 2)
    part = src[10:, 20:]  # a source window, as the engine reads it
    positions.clear()
    prepare_positions(
        src_transform=SRC_T, src_crs=SRC_CRS, src_window=(10, N, 20, N), src_shape=(N, N),
        dst_shape=shape, dst_transform=transform, dst_crs=crs, dst_window=window,
        resampling=method,
    )
    kept = len(positions)
    assert positions.nbytes == position_bytes(window, method)
    assert (kept > 0) == (method != "average")  # average computes footprints as it goes
    got = ours(part, nodata, grids()["utm33"], method, src_window_offset=(10, 20),
               src_shape=(N, N), dst_window=window)
    assert len(positions) == kept  # every block was found, none computed again
    positions.clear()
    fresh = ours(part, nodata, grids()["utm33"], method, src_window_offset=(10, 20),
                 src_shape=(N, N), dst_window=window)
    assert np.array_equal(got, fresh)


def test_position_cache_computes_a_key_once_while_threads_wait():
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    cache = PositionCache(max_bytes=10_000)
    calls = []
    started = threading.Event()

    def slow():
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return (np.arange(10),)

    def failing():
        started.set()
        time.sleep(0.2)
        raise RuntimeError("positions failed")

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(cache.get, "k", slow)
        assert started.wait(5)
        waiters = [pool.submit(cache.get, "k", slow) for _ in range(3)]
        values = [f.result(5)[0] for f in [first, *waiters]]
    assert len(calls) == 1 and all(v is values[0] for v in values)
    # An exception reaches the threads that waited for it, and nothing is kept.
    started.clear()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.get, "bad", failing)
        assert started.wait(5)
        waiter = pool.submit(cache.get, "bad", slow)
        for f in (first, waiter):
            with pytest.raises(RuntimeError, match="positions failed"):
                f.result(5)
    assert len(cache) == 1
    assert cache.get("bad", lambda: (np.zeros(3),))[0].size == 3  # computed anew


def test_position_cache_is_bounded_and_read_only():
    cache = PositionCache(max_bytes=3000)
    computed = []

    def compute(n):
        computed.append(n)
        return (np.zeros(n, np.uint8),)

    for key in ("a", "b", "c"):
        (value,) = cache.get(key, lambda k=key: compute(1000))
        assert not value.flags.writeable
    assert cache.nbytes == 3000 and len(cache) == 3
    cache.get("a", lambda: compute(1000))  # a hit: "a" becomes the most recent
    cache.get("d", lambda: compute(1000))  # evicts "b", the least recently used
    assert len(computed) == 4 and cache.nbytes == 3000
    cache.get("b", lambda: compute(1000))
    cache.get("a", lambda: compute(1000))
    assert len(computed) == 5  # "b" was computed again, "a" was still there
    (big,) = cache.get("e", lambda: compute(5000))  # larger than the cache: not kept
    assert big.size == 5000 and len(cache) == 3 and cache.nbytes == 3000


def test_approximation_is_what_gdal_does():
    """Exact transformation of every point disagrees with GDAL; the approximation does not."""
    src, nodata = make_data("uint16")
    grid = grids()["4326"]
    ref = gdal(src, nodata, grid, "nearest")
    approx = ours(src, nodata, grid, "nearest")
    exact = ours(src, nodata, grid, "nearest", max_error=0.0)
    n_approx = int((approx != ref).sum())
    n_exact = int((exact != ref).sum())
    print("nearest pixels differing from GDAL: approx", n_approx, "exact", n_exact)
    assert n_approx <= 0.005 * ref.size
    assert n_exact > n_approx


def test_source_coords_conventions():
    # Same CRS, 2x coarser: destination centre (0.5, 0.5) -> source (1, 1).
    cols, rows = source_coords(
        (3, 4), Affine(20, 0, SRC_T.c, 0, -20, SRC_T.f), SRC_CRS, SRC_T, SRC_CRS
    )
    assert cols.shape == (3, 4)
    np.testing.assert_allclose(cols[0], [1, 3, 5, 7])
    np.testing.assert_allclose(rows[:, 0], [1, 3, 5])
    # A window of the grid returns exactly that part of the whole result.
    crs, transform, shape = grids()["4326"]
    full = source_coords(shape, transform, crs, SRC_T, SRC_CRS)
    part = source_coords(shape, transform, crs, SRC_T, SRC_CRS, dst_window=(10, 50, 123, 400))
    np.testing.assert_array_equal(part[0], full[0][10:50, 123:400])
    np.testing.assert_array_equal(part[1], full[1][10:50, 123:400])


def test_kernel_scales():
    for f in (2, 3, 8):
        crs, transform, shape = grids()[f"same{f}x"]
        sx, sy = kernel_scales(shape, transform, crs, SRC_T, SRC_CRS, (N, N))
        assert sx == pytest.approx(1 / f) and sy == pytest.approx(1 / f)
    crs, transform, shape = grids()["utm33"]
    # The destination covers more than the source: the 4-sample kernels apply.
    assert min(kernel_scales(shape, transform, crs, SRC_T, SRC_CRS, (N, N))) >= 0.95


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("grid_name", ["utm33", "same3x"])
def test_source_window_suffices(grid_name, method):
    src, nodata = make_data("float32")
    crs, transform, shape = grids()[grid_name]
    full = ours(src, nodata, grids()[grid_name], method)
    # A destination sub-window whose source window is strictly inside the image.
    dwin = (shape[0] // 4, shape[0] // 2, shape[1] // 3, 2 * shape[1] // 3)
    win = source_window(
        shape, transform, crs, SRC_T, SRC_CRS, (N, N), resampling=method, dst_window=dwin
    )
    assert win is not None
    r0, r1, c0, c1 = win
    assert 0 < r0 < r1 < N and 0 < c0 < c1 < N
    part = ours(
        src[r0:r1, c0:c1],
        nodata,
        grids()[grid_name],
        method,
        src_window_offset=(r0, c0),
        src_shape=(N, N),
        dst_window=dwin,
    )
    np.testing.assert_array_equal(part, full[dwin[0] : dwin[1], dwin[2] : dwin[3]])
    # The whole grid from the window of the whole grid.
    win = source_window(shape, transform, crs, SRC_T, SRC_CRS, (N, N), resampling=method)
    r0, r1, c0, c1 = win
    whole = ours(
        src[r0:r1, c0:c1],
        nodata,
        grids()[grid_name],
        method,
        src_window_offset=(r0, c0),
        src_shape=(N, N),
    )
    np.testing.assert_array_equal(whole, full)


def test_source_window_disjoint():
    far = Affine(10, 0, 900000, 0, -10, 3000000)
    assert source_window((50, 50), far, SRC_CRS, SRC_T, SRC_CRS, (N, N)) is None
    src, nodata = make_data("uint16")
    out = reproject(
        src,
        src_transform=SRC_T,
        src_crs=SRC_CRS,
        src_nodata=nodata,
        dst_shape=(50, 50),
        dst_transform=far,
        dst_crs=SRC_CRS,
        dst_nodata=7,
    )
    assert (out == 7).all()


@pytest.mark.parametrize("method", METHODS)
def test_chunk_invariance(method):
    src, nodata = make_data("uint16")
    crs, transform, shape = grids()["4326"]
    full = ours(src, nodata, grids()["4326"], method)
    mosaic = np.empty_like(full)
    rows = np.linspace(0, shape[0], 5).astype(int)
    cols = np.linspace(0, shape[1], 5).astype(int)
    for i in range(4):
        for j in range(4):
            dwin = (rows[i], rows[i + 1], cols[j], cols[j + 1])
            win = source_window(
                shape, transform, crs, SRC_T, SRC_CRS, (N, N), resampling=method, dst_window=dwin
            )
            tile = mosaic[dwin[0] : dwin[1], dwin[2] : dwin[3]]
            if win is None:
                tile[...] = nodata
                continue
            r0, r1, c0, c1 = win
            ours(
                src[r0:r1, c0:c1],
                nodata,
                grids()["4326"],
                method,
                src_window_offset=(r0, c0),
                src_shape=(N, N),
                dst_window=dwin,
                out=tile,
            )
    np.testing.assert_array_equal(mosaic, full)


def test_integer_rounding_and_nodata_avoidance():
    src = np.full((10, 10), 5, np.uint16)
    src[0, 0] = 0
    t = Affine(10, 0, 500000, 0, -10, 5000000)
    shifted = Affine(10, 0, 500003, 0, -10, 4999997)
    for method in ("nearest", "bilinear", "average", "mode"):
        ref = np.zeros((10, 10), np.uint16)
        rio_reproject(
            src,
            ref,
            src_transform=t,
            src_crs=SRC_CRS,
            src_nodata=0,
            dst_transform=shifted,
            dst_crs=SRC_CRS,
            dst_nodata=5,
            resampling=getattr(RioResampling, method),
        )
        mine = reproject(
            src,
            src_transform=t,
            src_crs=SRC_CRS,
            src_nodata=0,
            dst_shape=(10, 10),
            dst_transform=shifted,
            dst_crs=SRC_CRS,
            dst_nodata=5,
            resampling=method,
        )
        np.testing.assert_array_equal(mine, ref)


def test_bad_arguments():
    src = np.zeros((4, 4), np.uint8)
    kw = dict(
        src_transform=SRC_T,
        src_crs=SRC_CRS,
        src_nodata=None,
        dst_shape=(2, 2),
        dst_transform=SRC_T,
        dst_crs=SRC_CRS,
    )
    with pytest.raises(ValueError, match="resampling"):
        reproject(src, resampling="lanczos", **kw)
    with pytest.raises(ValueError, match="2-D"):
        reproject(np.zeros((2, 4, 4)), **kw)
    with pytest.raises(ValueError, match="dst_window"):
        reproject(src, dst_window=(0, 3, 0, 1), **kw)


# --------------------------------------------------------------------------
# Overview choice (GDAL OVERVIEW_LEVEL=AUTO), oracle: rasterio reads
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ovr_file(tmp_path_factory):
    from rasterio.enums import Resampling as R

    width, height = 1000, 800
    data = (np.arange(width * height, dtype="uint32") % 65521).reshape(height, width)
    path = tmp_path_factory.mktemp("ovr") / "ovr.tif"
    profile = dict(
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="uint16",
        tiled=True,
        blockxsize=256,
        blockysize=256,
        crs=SRC_CRS,
        transform=SRC_T,
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype("uint16"), 1)
        ds.build_overviews([2, 4, 8, 16], R.average)
    sizes = [(width, height)]
    for k in range(4):
        with rasterio.open(path, OVERVIEW_LEVEL=k) as o:
            sizes.append((o.width, o.height))
    return path, sizes


def _levels_matching(path, n_levels, out_shape, resampling):
    with rasterio.open(path) as ds:
        got = ds.read(1, out_shape=out_shape, resampling=resampling)
    matches = []
    for level in range(n_levels):
        opt = "NONE" if level == 0 else f"{level - 1} only"
        with rasterio.open(path, OVERVIEW_LEVEL=opt) as ds:
            cand = ds.read(1, out_shape=out_shape, resampling=resampling)
        if np.array_equal(cand, got):
            matches.append(level)
    return matches


@pytest.mark.parametrize("method", ["nearest", "bilinear"])
@pytest.mark.parametrize(
    "out_shape",
    [
        (720, 900),
        (430, 520),
        (400, 500),
        (330, 420),
        (300, 370),
        (230, 270),
        (200, 250),
        (170, 210),
        (100, 125),
        (84, 105),
        (40, 50),
        (200, 400),
    ],
)
def test_choose_overview_matches_gdal(ovr_file, out_shape, method):
    from xarray_rasteret.geo.overviews import choose_overview, raster_io_factor

    path, sizes = ovr_file
    matches = _levels_matching(path, len(sizes), out_shape, getattr(RioResampling, method))
    factor = raster_io_factor(sizes[0], (out_shape[1], out_shape[0]))
    chosen = choose_overview(sizes, factor, resampling=method)
    assert chosen in matches, (factor, chosen, matches)


def test_choose_overview_rules():
    from xarray_rasteret.geo.overviews import choose_overview

    sizes = [(1000, 800), (500, 400), (250, 200), (125, 100), (63, 50)]
    assert choose_overview(sizes, 1.9) == 1  # 2 < 1.9 * 1.2
    assert choose_overview(sizes, 1.9, resampling="average") == 0
    assert choose_overview(sizes, 3.0) == 1
    assert choose_overview(sizes, 3.5) == 2
    assert choose_overview(sizes, 20.0) == 4
    assert choose_overview(sizes, 20.0, rule="AUTO-1") == 3
    assert choose_overview(sizes, 20.0, rule="NONE") == 0
    assert choose_overview(sizes, 20.0, rule=1) == 2
    assert choose_overview(sizes, (2.5, 5.0)) == 1  # the less reduced axis
    with pytest.raises(ValueError):
        choose_overview(sizes, 2.0, rule="BEST")


def test_reprojection_factor():
    from xarray_rasteret.geo.overviews import choose_overview, reprojection_factor

    crs, transform, shape = grids()["same8x"]
    fx, fy = reprojection_factor(SRC_T, SRC_CRS, shape, transform, crs)
    assert fx == pytest.approx(8.0) and fy == pytest.approx(8.0)
    sizes = [(600, 600), (300, 300), (150, 150), (75, 75)]
    assert choose_overview(sizes, (fx, fy), resampling="average") == 3
    crs, transform, shape = grids()["utm33"]
    fx, fy = reprojection_factor(SRC_T, SRC_CRS, shape, transform, crs)
    assert 0.9 < fx < 1.1 and 0.9 < fy < 1.1


def test_bisected_rows_stay_within_the_error_threshold():
    """Rows too curved for one linear piece are bisected; every piece stays within max_error."""
    from xarray_rasteret.geo._approx import PixelTransformer as _PixelTransformer
    from xarray_rasteret.geo._approx import approx_rows as _approx_rows

    # A wide lon/lat grid onto UTM: rows curve, so many are split into several pieces.
    dst_t = Affine(0.01, 0, 10.0, 0, -0.01, 60.0)
    tr = _PixelTransformer.create(dst_t, "EPSG:4326", Affine(10, 0, 0, 0, -10, 7e6), 32633)
    xs = np.arange(1000, dtype=np.float64) + 0.5
    ys = np.arange(0, 600, 37, dtype=np.float64) + 0.5
    ax, ay = _approx_rows(tr, xs, ys, 0.125, 0, 1000)
    ex, ey = tr(np.tile(xs, ys.size), np.repeat(ys, xs.size))
    err = np.abs(ax.ravel() - ex) + np.abs(ay.ravel() - ey)
    assert err.max() <= 0.125 * 1.001
    # One linear piece per row would be far off: the bisection was exercised.
    mid = (xs.size - 1) // 2
    frac = (xs[mid] - xs[0]) / (xs[-1] - xs[0])
    ex, ey = ex.reshape(ax.shape), ey.reshape(ax.shape)
    chord_x = ex[:, 0] + (ex[:, -1] - ex[:, 0]) * frac
    chord_y = ey[:, 0] + (ey[:, -1] - ey[:, 0]) * frac
    assert (np.abs(chord_x - ex[:, mid]) + np.abs(chord_y - ey[:, mid])).min() > 1.0
    # A window of columns gives exactly those columns of the whole rows.
    wx, wy = _approx_rows(tr, xs, ys, 0.125, 300, 700)
    np.testing.assert_array_equal(wx, ax[:, 300:700])
    np.testing.assert_array_equal(wy, ay[:, 300:700])
